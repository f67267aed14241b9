"""Hostile and careless inputs (tests/hostile.py): each gets its exit code and a one-line message naming the
right file and problem; nothing is written after a failure, nothing outside the output folder, inputs are
never changed; oversized headers are refused fast and small; a killed run leaves no target file."""

import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import nibabel as nib
import numpy as np
import pytest

from brainmets.cli import main

from .hostile import cases, label_nifti, nifti_bytes, small_labels

CASES = cases()


def _files(root):
    """Every file under ``root`` with its SHA-256 (links as links: a link is not followed)."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            out[path] = f"link to {os.readlink(path)}"
        elif path.is_file():
            out[path] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input(case, tmp_path, capsys):
    folder = tmp_path / "run"
    folder.mkdir()
    argv = case.make(folder)
    capsys.readouterr()
    before = _files(tmp_path)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse refuses bad option values itself (exit 2, naming the option)
        code = exc.code
    err = capsys.readouterr().err
    after = _files(tmp_path)
    assert code == case.code, err
    assert "internal error" not in err and "Traceback" not in err
    assert "Hostile" not in err and "HH-0042" not in err  # no DICOM identifier in any message
    if code:
        message = (
            err.strip().splitlines()[-1] if argv[0] != "batch" else err
        )  # batch: a line per study, then its summary
        assert message.startswith("brainmets"), err
        for part in case.says:
            assert part in message, (part, message)
        assert after == before, "a failed run wrote, changed or removed a file"
    else:
        assert all(after[p] == digest for p, digest in before.items()), "an input changed"
        for output in case.succeeds_with:
            assert (folder / output).is_file(), output
    escaped = [p for p in tmp_path.parent.glob("**/*escaped*")]
    assert escaped == [], escaped


@pytest.mark.parametrize("name", ["bomb.nii.gz", "huge.nii.gz"])
def test_an_oversized_header_is_refused_within_200_mb_before_its_data_are_read(tmp_path, name):
    """Asserted by memory and by the data never being read, not by wall-clock time: the voxel data after the
    header's gzip member are a corrupt member, so reading them would fail with "corrupt compressed data"."""
    side = 2048 if name == "bomb.nii.gz" else 32767
    seg = tmp_path / name
    header_member = gzip.compress(nifti_bytes((side,) * 3, data=bytes(1000)), mtime=0)
    seg.write_bytes(header_member + b"\x1f\x8b\x08\x00" + bytes(range(256)) * 4)
    probe = (  # the peak resident memory of this process since its exec (getrusage would count the parent's)
        "import re\n"
        "from brainmets.cli import main\n"
        f"code = main(['features', {str(seg)!r}, '--out-json', {str(tmp_path / 'f.json')!r}])\n"
        "peak = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)\n"
        "print(code, peak)\n"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    code, max_rss_kb = run.stdout.split()
    assert int(code) == 1 and "over the limit" in run.stderr and "corrupt" not in run.stderr, run.stderr
    assert int(max_rss_kb) < 200 * 1024, max_rss_kb  # the interpreter and its libraries included
    assert not (tmp_path / "f.json").exists()


def _complete(outputs) -> bool:
    """Every target that exists is whole (a JSON that parses, a TSV with its rows, a NIfTI that loads)."""
    json_path, tsv_path, nifti_path = outputs
    if json_path.exists():
        json.loads(json_path.read_text())
    if tsv_path.exists():
        assert len(tsv_path.read_text().splitlines()) > 100
    if nifti_path.exists():
        np.asanyarray(nib.load(nifti_path).dataobj)
    return True


@pytest.mark.slow
def test_a_killed_run_leaves_no_target_file(tmp_path):
    """SIGKILL at several moments of a run (importing, reading, measuring): no target file; a kill that
    lands after the outputs were renamed into place (while the process exits) finds them whole."""
    rng = np.random.default_rng(3)
    labels = np.zeros((220, 220, 160), np.uint8)
    for centre in rng.integers(10, 150, size=(300, 3)):
        i, j, k = centre
        labels[i : i + 4, j : j + 5, k : k + 4] = 3
    seg = tmp_path / "many.nii.gz"
    nib.save(nib.Nifti1Image(labels, np.eye(4)), seg)
    outputs = [tmp_path / "out" / name for name in ("f.json", "l.tsv", "i.nii.gz")]
    argv = [sys.executable, "-m", "brainmets", "features", str(seg), "--threads", "1"]
    argv += ["--out-json", str(outputs[0]), "--out-tsv", str(outputs[1]), "--out-instances", str(outputs[2])]
    part_way = 0
    for delay in (0.3, 0.6, 0.9, 1.2, 1.5):
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert _complete(outputs), delay
        part_way += process.returncode == -signal.SIGKILL and not any(p.exists() for p in outputs)
        for path in outputs:
            path.unlink(missing_ok=True)
    assert part_way >= 2, "the run finished too fast to be killed part-way"
    run = subprocess.run(argv, capture_output=True, text=True)  # and a run left alone completes
    assert run.returncode == 0, run.stderr
    assert all(p.exists() for p in outputs) and json.loads(outputs[0].read_text())["study"]["lesion_count"] > 100


def test_a_header_fix_is_reported_once_as_a_warning(tmp_path, capsys, caplog):
    """A negative pixdim beside a valid sform (which gives the geometry): one warning, brainmets' own, not
    nibabel's raw print plus a 'Level 35' copy."""
    seg = label_nifti(tmp_path / "s.nii.gz", small_labels(), sform_code=1, pixdim=[1, -1, 1, 1, 1, 1, 1, 1])
    assert main(["features", str(seg), "-q", "--out-json", str(tmp_path / "f.json")]) == 0  # -q: no summary line
    records = [r for r in caplog.records if "pixdim" in r.getMessage()]
    assert [(r.name, r.levelname) for r in records] == [("brainmets.io.readers", "WARNING")]
    assert str(seg) in records[0].getMessage() and capsys.readouterr().err == ""  # nothing printed raw


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_is_named(tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    seg = label_nifti(tmp_path / "s.nii.gz", small_labels(), sform_code=1)
    try:
        assert main(["features", str(seg), "--out-json", str(folder / "f.json")]) == 1
    finally:
        folder.chmod(0o755)
    message = capsys.readouterr().err.strip()
    assert str(folder / "f.json") in message and "Permission denied" in message and ".tmp" not in message
    assert list(folder.iterdir()) == []
