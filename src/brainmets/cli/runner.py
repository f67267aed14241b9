"""Running one parsed command: its errors mapped to an exit code and a one-line message, and the status
document of ``--status-json`` (one bad study does not stop a cohort)."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from brainmets._version import __version__
from brainmets.cli.common import EXIT_DATA_ERROR, EXIT_USAGE, command_inputs, flat
from brainmets.errors import BrainmetsError, ConfigError
from brainmets.interrupts import signals_deferred


def run(args: argparse.Namespace) -> int:
    """Run one parsed command; map its errors to an exit code and a one-line message."""
    if getattr(args, "status_json", None):
        return _run_with_status(args)
    try:
        args.func(args)  # returns the outputs it wrote (recorded by --status-json)
        return 0
    except ConfigError as exc:
        print(f"brainmets: error: {flat(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except BrainmetsError as exc:
        print(f"brainmets: error: {flat(exc)}", file=sys.stderr)
        return EXIT_DATA_ERROR
    except OSError as exc:
        where = exc.filename or getattr(args, "segmentation", "")
        print(f"brainmets: error: {where}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_DATA_ERROR
    except Exception as exc:  # a bug: say so in one line, show the traceback with --verbose
        target = getattr(args, "segmentation", None) or ""
        print(
            f"brainmets: internal error while processing {target}: {type(exc).__name__}: {exc} "
            "(rerun with --verbose for the traceback; please report it)",
            file=sys.stderr,
        )
        if args.verbose:
            import traceback

            traceback.print_exc(file=sys.stderr)
        return EXIT_DATA_ERROR


def remove_outputs(args: argparse.Namespace, keep: tuple[str, ...] = ()) -> list[str]:
    """Remove the files a successful run of this command would have written (an earlier run's features,
    tables, instance map, ...) except those in `keep`; returns the paths removed. Where the outputs cannot even
    be named safely (an output that is an input, a bad name), nothing is removed."""
    planned = getattr(args, "outputs", None)
    if planned is None:
        return []
    try:
        paths = planned(args)
    except Exception:  # noqa: BLE001 - whatever stops naming them, nothing is removed
        return []
    removed = []
    with signals_deferred():
        for key, path in paths.items():
            if key not in keep and (path.is_file() or path.is_symlink()):
                path.unlink()
                removed.append(str(path))
    return removed


def _one_line(exc: BaseException, args: argparse.Namespace) -> str:
    if isinstance(exc, BrainmetsError):
        return flat(exc)
    if isinstance(exc, OSError):
        return f"{exc.filename or getattr(args, 'segmentation', '')}: {exc.strerror or exc}"
    target = getattr(args, "segmentation", None) or getattr(args, "features", None) or getattr(args, "timeline", "")
    return f"internal error while processing {target}: {type(exc).__name__}: {exc}"


@contextlib.contextmanager
def _warnings_kept(into: list[str]) -> Iterator[None]:
    """Keep what brainmets logs at WARNING level or above (e.g. a map read as binary) for the status document,
    from which the workflow's run summary counts them; the messages are printed as before."""
    import logging

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            into.append(" ".join(record.getMessage().split()))

    logger, handler = logging.getLogger("brainmets"), Keep(logging.WARNING)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def _run_with_status(args: argparse.Namespace) -> int:
    """Run a per-study command; record ok or failed (and why) in --status-json, so one bad study does not
    stop a cohort. The message also goes to stderr (the job's log), with the traceback for internal errors."""
    from brainmets.io.writers import atomic_path, check_outputs, write_json

    try:  # a status document that would overwrite an input, or is a folder: nothing is run or written
        check_outputs([args.status_json], command_inputs(args))
    except ConfigError as exc:
        print(f"brainmets: error: {flat(exc)}", file=sys.stderr)
        return EXIT_USAGE
    start = time.perf_counter()
    error, removed, warnings = None, [], []
    try:
        with _warnings_kept(warnings):
            outputs = args.func(args)
    except Exception as exc:
        outputs = None
        error = _one_line(exc, args)
        print(f"brainmets: error: {error}", file=sys.stderr)
        if not isinstance(exc, BrainmetsError | OSError):
            import traceback

            traceback.print_exc(file=sys.stderr)
        with signals_deferred():  # and no stale "ok" status document while the failure is recorded
            removed = remove_outputs(args, keep=("figure", "viewer"))
            Path(args.status_json).unlink(missing_ok=True)
        if removed:
            print(f"brainmets: removed the earlier outputs this failure no longer supports: {', '.join(removed)}",
                  file=sys.stderr)  # fmt: skip
        if getattr(args, "out_figure", None):
            from brainmets.figures.pictures import failure_figure

            with atomic_path(args.out_figure) as tmp:
                failure_figure(tmp, f"sub-{args.subject}" if args.subject else "study", f"failed: {error}")
        if getattr(args, "out_viewer", None):
            from brainmets.figures.viewer import failure_page

            with atomic_path(args.out_viewer) as tmp:
                failure_page(tmp, f"sub-{args.subject}" if args.subject else "study", f"failed: {error}")
    status = {
        "subject": args.subject,
        "session": getattr(args, "session", None),
        "step": args.command,
        "status": "failed" if error else "ok",
        "error": error,
        "outputs": {k: str(v) for k, v in outputs.items()} if isinstance(outputs, dict) else {},
        "removed_outputs": removed,
        "warnings": list(dict.fromkeys(warnings)),
        "seconds": round(time.perf_counter() - start, 3),
        "brainmets_version": __version__,
    }
    try:
        with atomic_path(args.status_json) as tmp:
            write_json(tmp, status)
    except OSError as exc:
        print(f"brainmets: error: {exc.filename}: cannot write the status document ({exc.strerror})", file=sys.stderr)
        return EXIT_DATA_ERROR
    return 0
