"""Command line: ``brainmets features``, ``indicate``, ``followup``, ``compare``, ``export``, ``cohort``,
``figures``, ``dataset-description``, ``batch``. One module per subcommand, each a thin layer over
:mod:`brainmets.api` or the layers below; :mod:`.runner` is the one place that maps errors to exit codes."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from brainmets._version import __version__
from brainmets.cli import (
    batch,
    cohort,
    compare,
    dataset_description,
    export,
    features,
    figures,
    followup,
    indicate,
)
from brainmets.cli.common import EXIT_USAGE, LOG_FORMAT, flat, verbosity_options
from brainmets.cli.runner import run
from brainmets.errors import ConfigError

__all__ = ["build_parser", "main", "run"]


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors on one line (the option and the problem) instead of the usage block."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="brainmets",
        description="Brain-metastasis lesion features from segmentation label maps (research use only).",
    )
    parser.add_argument("--version", action="version", version=f"brainmets {__version__}")
    verbosity = verbosity_options()
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (features, indicate, followup, compare, export, cohort, figures, dataset_description):
        command.add_parser(sub, [verbosity])
    batch.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``brainmets`` console script; returns the exit code. SIGTERM and SIGINT end it
    cleanly: the outputs being written are abandoned, their temporary files removed, and the exit code is 128 +
    the signal's number (143, 130)."""
    from brainmets.interrupts import Terminated, raise_if_terminated, terminating_on_signals

    with terminating_on_signals():
        try:
            code = _main(argv)
        except Terminated as exc:
            print(f"brainmets: terminated by {exc}: the outputs it was writing are not complete and their "
                  "temporary files were removed; run it again", file=sys.stderr)  # fmt: skip
            return exc.exit_code
        try:
            raise_if_terminated()  # a signal whose exception was swallowed after the last output was written
        except Terminated as exc:
            print(f"brainmets: terminated by {exc} as it finished: its outputs are complete, but it exits as a "
                  "terminated command does", file=sys.stderr)  # fmt: skip
            return exc.exit_code
        return code


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING, format=LOG_FORMAT, stream=sys.stderr
    )
    if args.command == "batch":
        try:
            return batch.run_batch(parser, batch.jobs_text(args), args.jobs_file or "--jobs-json")
        except ConfigError as exc:
            print(f"brainmets: error: {flat(exc)}", file=sys.stderr)
            return EXIT_USAGE
    return run(args)
