"""SIGTERM and SIGINT (a cancelled job, a time limit, Ctrl-C): no temporary file left, no half-replaced set of
outputs, an exit code that says so, and a batch that leaves only outputs a status document supports."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from brainmets.interrupts import Terminated, raise_if_terminated, signals_deferred, terminating_on_signals
from brainmets.io.writers import TEMPORARY_GLOB, atomic_outputs, sweep_temporary_files, write_json

from .conftest import TEST_DATA


def test_a_signal_while_writing_leaves_neither_temporary_files_nor_outputs(tmp_path):
    with pytest.raises(Terminated) as caught, terminating_on_signals():
        with atomic_outputs(tmp_path / "a.json", tmp_path / "b.nii.gz") as (a, b):
            write_json(a, {"x": 1})
            os.kill(os.getpid(), signal.SIGTERM)
            b.write_bytes(b"never reached")
    assert caught.value.exit_code == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is the caller's again


def test_a_signal_is_held_back_until_a_block_ends():
    done = []
    with pytest.raises(Terminated) as caught, terminating_on_signals():
        with signals_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            done.append("renamed all")  # not cut short
    assert done == ["renamed all"] and caught.value.exit_code == 130


def test_a_signal_is_held_back_even_with_other_threads_running():
    """The kernel may hand the signal to any thread; Python still runs its handler in the main thread."""
    release = threading.Event()
    worker = threading.Thread(target=release.wait)
    worker.start()
    done = []
    try:
        with pytest.raises(Terminated), terminating_on_signals():
            with signals_deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.1)  # the handler has every chance to run here
                done.append("renamed all")
    finally:
        release.set()
        worker.join()
    assert done == ["renamed all"]


class _SignalsInItsDestructor:
    """Python runs a signal handler wherever the main thread is; inside a destructor its exception is only
    printed ("Exception ignored in ...") and lost. Some library's object may be collected just then."""

    def __init__(self, signum: int) -> None:
        self.signum = signum

    def __del__(self) -> None:
        os.kill(os.getpid(), self.signum)
        sum(range(100))  # a few bytecodes, where the handler runs


def _swallow_a_signal(signum: int = signal.SIGTERM) -> None:
    swallowed, hook = [], sys.unraisablehook
    sys.unraisablehook = swallowed.append
    try:
        _SignalsInItsDestructor(signum)  # collected at once: the handler's Terminated is swallowed
    finally:
        sys.unraisablehook = hook
    assert [type(u.exc_value) for u in swallowed] == [Terminated]


def test_a_signal_whose_exception_was_swallowed_still_abandons_the_outputs(tmp_path):
    with pytest.raises(Terminated) as caught, terminating_on_signals():
        with atomic_outputs(tmp_path / "a.json") as (a,):
            write_json(a, {"x": 1})
            _swallow_a_signal()
            done = "wrote everything"  # the swallowed exception did not stop the block ...
    assert done and caught.value.exit_code == 143
    assert list(tmp_path.iterdir()) == []  # ... but nothing was committed


def test_a_batch_stops_after_the_study_during_which_a_swallowed_signal_arrived(tmp_path, monkeypatch):
    from brainmets.cli import batch, build_parser

    ran = []

    def run(args):
        ran.append(args.subject)
        if args.subject == "01":
            _swallow_a_signal(signal.SIGINT)
        return 0

    monkeypatch.setattr(batch, "run", run)
    jobs = {"command": "features", "studies": [_study(tmp_path, i) for i in range(4)]}
    with pytest.raises(Terminated) as caught, terminating_on_signals():
        batch.run_batch(build_parser(), json.dumps(jobs))
    assert ran == ["00", "01"] and caught.value.exit_code == 130


def test_an_inner_block_keeps_a_swallowed_signal_of_the_enclosing_one():
    with pytest.raises(Terminated), terminating_on_signals():
        _swallow_a_signal()
        with terminating_on_signals():  # e.g. main() called by a harness that handles signals itself
            pass
        raise_if_terminated()
    raise_if_terminated()  # and after the outer block nothing is left over


def test_a_command_whose_signal_was_swallowed_after_its_outputs_exits_as_terminated(tmp_path, monkeypatch, capsys):
    from brainmets import cli

    def command(argv):
        write_json(tmp_path / "done.json", {"x": 1})
        _swallow_a_signal()
        return 0

    monkeypatch.setattr(cli, "_main", command)
    assert cli.main([]) == 143
    assert (tmp_path / "done.json").is_file() and "its outputs are complete" in capsys.readouterr().err


def test_sweeping_removes_only_temporary_outputs_nobody_is_writing(tmp_path):
    (tmp_path / "sub-01").mkdir()
    kept = [tmp_path / "sub-01" / "sub-01_desc-brainmets_status.json", tmp_path / "notes.tmp"]
    left = [tmp_path / ".brainmets-abc123.tmp.json", tmp_path / "sub-01" / ".brainmets-x_y.tmp.nii.gz"]
    being_written = tmp_path / ".brainmets-live.tmp.png"  # another run's, modified just now
    for path in kept + left + [being_written]:
        path.write_text("x")
    an_hour_ago = time.time() - 3600
    for path in kept + left:
        os.utime(path, (an_hour_ago, an_hour_ago))
    assert sorted(sweep_temporary_files(tmp_path)) == sorted(left)
    assert all(p.exists() for p in kept) and list(tmp_path.rglob(TEMPORARY_GLOB)) == [being_written]


def _study(tmp_path, index: int) -> dict:
    out = tmp_path / f"sub-{index:02d}"
    args = [str(TEST_DATA / "cohort" / "sub-03_ses-01_dseg.nii.gz"), "--subject", f"{index:02d}", "--out-dir", str(out),
            "--out-figure", str(out / "overlay.png"), "--status-json", str(out / "status.json")]  # fmt: skip
    return {"args": args, "log": str(tmp_path / "logs" / f"{index:02d}.log")}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_terminated_batch_removes_what_it_started_and_exits_with_the_signal(tmp_path, signum):
    """A features batch of 20 BraTS-size studies, signalled after its second study: exit 128 + signal, no
    temporary file, nothing left of the studies it started, and of those it did not reach only the ones a
    status document still supports (an earlier run's kept; an orphan whose status Snakemake removed, gone)."""
    jobs = {"command": "features", "common": ["--threads", "1"], "studies": [_study(tmp_path, i) for i in range(20)]}
    earlier = tmp_path / "sub-19"  # an earlier complete run of the last study: its status supports it
    earlier.mkdir()
    (earlier / "status.json").write_text('{"status": "ok"}')
    (earlier / "sub-19_desc-brainmets_features.json").write_text("{}")
    orphan = tmp_path / "sub-18" / "sub-18_desc-brainmets_features.json"  # features without a status document
    orphan.parent.mkdir()
    orphan.write_text("{}")
    batch = subprocess.Popen([sys.executable, "-m", "brainmets", "batch", "--jobs-json", json.dumps(jobs)],
                             stderr=subprocess.PIPE, text=True)  # fmt: skip
    second = tmp_path / "sub-01" / "status.json"
    deadline = time.monotonic() + 120
    while not second.exists() and batch.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    batch.send_signal(signum)
    _, err = batch.communicate(timeout=60)

    assert batch.returncode == 128 + signum, err
    assert f"terminated by {signal.Signals(signum).name}" in err and "of 20 studies" in err
    assert not list(tmp_path.rglob(TEMPORARY_GLOB))
    assert not list((tmp_path / "sub-00").glob("*")) and not list((tmp_path / "sub-01").glob("*"))
    assert not orphan.exists()
    assert sorted(p.name for p in earlier.iterdir()) == ["status.json", "sub-19_desc-brainmets_features.json"]
    for index in range(20):  # whatever remains is backed by its status document
        folder = tmp_path / f"sub-{index:02d}"
        assert not folder.exists() or not list(folder.glob("*")) or (folder / "status.json").is_file(), index
