"""``brainmets batch``: one command (features, indicate, followup or compare) for many studies in one process,
each study's messages in its own log."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from pathlib import Path

from brainmets.cli.common import EXIT_DATA_ERROR, EXIT_USAGE, LOG_FORMAT, command_inputs, flat
from brainmets.cli.runner import remove_outputs, run
from brainmets.errors import ConfigError
from brainmets.interrupts import Terminated, raise_if_terminated, signals_deferred


def add_parser(sub) -> None:
    batch = sub.add_parser(
        "batch",
        help="run one command for many studies in one process (what the workflow's jobs do)",
        description="Run `features`, `indicate`, `followup` or `compare` for many studies (or subjects) in one process, so the cost of starting "
        "Python and importing the scientific stack is paid once per batch, not once per study. Each study's "
        "messages go to its own log; a study that fails does not stop the others.",
    )
    jobs = batch.add_mutually_exclusive_group(required=True)
    jobs.add_argument(
        "--jobs-json",
        metavar="JSON",
        help='{"command": "features"|"indicate"|"followup"|"compare", "common": [options of every study], '
        '"studies": [{"args": [options of one study], "log": path}, ...]}',
    )
    jobs.add_argument(
        "--jobs-file",
        metavar="PATH",
        help="the same document in a file (what the workflow passes: the command line it shows stays short)",
    )
    batch.set_defaults(func=None)


def jobs_text(args: argparse.Namespace) -> str:
    """The jobs document of --jobs-json, or of --jobs-file read as UTF-8."""
    if args.jobs_file is None:
        return args.jobs_json
    from brainmets.config import read_text

    return read_text(args.jobs_file)  # ConfigError naming the file when it cannot be read


def jobs_file(text: str, name: str, folder: str | Path = ".snakemake/brainmets-jobs") -> str:
    """Write a jobs document once, named by its content (``<folder>/<name>-<sha256 prefix>.json``), and return
    its path. The workflow's rules pass this path, not the document: Snakemake shows a job's command line (and
    repeats it when the job fails), and a batch's document runs to many kilobytes. The name changes with the
    content, so a changed document re-runs its job (Snakemake compares params) and never replaces the file a
    job of another run is about to read; any process evaluating the rule (the main one, a cluster job's) makes
    the file when it is missing."""
    import hashlib

    from brainmets.io.writers import atomic_path

    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    path = Path(folder) / f"{name}-{digest}.json"
    if not path.is_file():
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
    return str(path)


BATCH_COMMANDS = ("features", "indicate", "followup", "compare", "export")


@contextlib.contextmanager
def _logging_to(stream, verbose: bool):
    """Send every log record to `stream` (one study's log) for the duration, then restore the handlers."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.handlers = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    try:
        yield
    finally:
        root.handlers, level = saved
        root.setLevel(level)


def _parse_jobs(text: str, source: str = "--jobs-json") -> tuple[str, list[str], list[dict]]:
    """The jobs document of `batch` (--jobs-json, or the --jobs-file named `source`): (command, common options,
    studies)."""

    def strings(value) -> bool:
        return isinstance(value, list) and all(isinstance(a, str) for a in value)

    try:
        jobs = json.loads(text)
        command, common, studies = jobs["command"], jobs.get("common", []), jobs["studies"]
        if command not in BATCH_COMMANDS:
            raise ValueError(f"command must be one of {', '.join(BATCH_COMMANDS)}, not {command!r}")
        if not strings(common):
            raise ValueError("'common' must be a list of strings")
        if not isinstance(studies, list):
            raise ValueError("'studies' must be a list")
        for study in studies:
            if not strings(study.get("args")):
                raise ValueError("each study needs 'args', a list of strings")
            if not isinstance(study.get("log", ""), str):
                raise ValueError("a study's 'log' must be a path")
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise ConfigError(f"{source}: {flat(exc) or type(exc).__name__}") from None
    return command, common, studies


def run_batch(parser: argparse.ArgumentParser, jobs_json: str, source: str = "--jobs-json") -> int:
    """Run one command per study in this process, each study's stderr and log records in its own log file.
    Returns 1 when a study's command did not complete (its log says why), else 0."""
    command, common, studies = _parse_jobs(jobs_json, source)
    start = time.perf_counter()
    incomplete, started = [], 0
    try:
        for study in studies:
            started += 1
            code = _run_study(parser, [command, *study["args"], *common], study.get("log"))
            if code:
                incomplete.append(study.get("log") or " ".join(study["args"]))
            raise_if_terminated()
    except Terminated:
        with signals_deferred():  # a second signal must not cut the clean-up short
            removed = _roll_back(parser, command, common, studies, started)
        print(f"brainmets batch: {command}: terminated after {max(started - 1, 0)} of {len(studies)} studies; removed "
              f"{len(removed)} outputs of this batch's studies, which a rerun of the batch makes again",
              file=sys.stderr)  # fmt: skip
        raise
    for where in incomplete:
        print(f"brainmets: error: a study did not complete (see {where})", file=sys.stderr)
    print(
        f"brainmets batch: {command}: {len(studies) - len(incomplete)} of {len(studies)} studies completed "
        f"in {time.perf_counter() - start:.1f} s (each study's outcome is in its status document and log)",
        file=sys.stderr,
    )
    return 1 if incomplete else 0


def _parse_study(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[argparse.Namespace | None, int | None, str]:
    """One study's options parsed: (args, None, "") or (None, exit code, argparse's complaint)."""
    import io

    usage = io.StringIO()
    try:
        with contextlib.redirect_stderr(usage):
            return parser.parse_args(argv), None, ""
    except SystemExit as exc:
        return None, exc.code if isinstance(exc.code, int) else EXIT_USAGE, usage.getvalue()


def _run_study(parser: argparse.ArgumentParser, argv: list[str], log_path: str | None) -> int:
    """Run one study's command with its stderr, warnings and log records in its own log; its exit code."""
    import warnings

    from brainmets.io.writers import check_outputs

    args, code, usage = _parse_study(parser, argv)
    try:
        if log_path and args is not None:
            check_outputs([log_path], command_inputs(args))
        with contextlib.ExitStack() as stack:
            if log_path:
                Path(log_path).parent.mkdir(parents=True, exist_ok=True)
                stream = stack.enter_context(open(log_path, "w", encoding="utf-8"))
                stack.enter_context(contextlib.redirect_stderr(stream))
            print(usage, end="", file=sys.stderr)
            stack.enter_context(warnings.catch_warnings())  # every study shows its own warnings
            warnings.simplefilter("default")
            if args is not None:
                with _logging_to(sys.stderr, args.verbose):
                    code = run(args)
    except (ConfigError, OSError) as exc:  # the log itself cannot be written
        where = getattr(exc, "filename", None) or log_path
        print(f"brainmets: error: {where}: cannot write this study's log ({flat(exc)})", file=sys.stderr)
        code = EXIT_DATA_ERROR
    return code


def _roll_back(parser: argparse.ArgumentParser, command: str, common: list[str], studies: list[dict], started: int):
    """After a termination signal: remove every output of the studies this run started (the batch is one
    workflow job; Snakemake discards its status documents, so their features must go too), and the outputs
    of the studies not reached whose status document is already gone. Returns the paths removed."""
    removed = []
    for index, study in enumerate(studies):
        args = _parse_study(parser, [command, *study["args"], *common])[0]
        if args is None:
            continue
        status = Path(args.status_json) if getattr(args, "status_json", None) else None
        if index < started:
            removed += remove_outputs(args)
            if status is not None and status.is_file():
                status.unlink()
                removed.append(str(status))
        elif status is not None and not status.exists():
            removed += remove_outputs(args)
    return removed
