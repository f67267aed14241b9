"""``brainmets cohort``: the cohort tables from many studies' documents."""

from __future__ import annotations

import argparse
import sys

from brainmets.cli.common import command_inputs, log, summarize
from brainmets.display import count
from brainmets.errors import ConfigError


def add_parser(sub, parents: list[argparse.ArgumentParser]) -> None:
    coh = sub.add_parser(
        "cohort",
        parents=parents,
        help="gather per-study documents into cohort tables",
        description="Gather 'brainmets features' and 'indicate' documents into lesion, study, indication and status tables.",
    )
    coh.add_argument("documents", nargs="*", metavar="FEATURES_JSON")
    coh.add_argument(
        "--status",
        nargs="+",
        default=[],
        metavar="STATUS_JSON",
        help="status documents of 'features --status-json' (failed studies are listed, not tabulated)",
    )
    coh.add_argument("--out-status", metavar="TSV", help="one row per study: ok or failed, and why")
    coh.add_argument("--parquet", action="store_true", help="also write each table as Parquet")
    coh.add_argument(
        "--out-lesions", required=True, metavar="TSV", help="one row per lesion (data dictionary beside it)"
    )
    coh.add_argument(
        "--out-studies", required=True, metavar="TSV", help="one row per study (data dictionary beside it)"
    )
    coh.add_argument(
        "--indications", nargs="+", default=[], metavar="INDICATIONS_JSON", help="'brainmets indicate' documents"
    )
    coh.add_argument("--out-indications", metavar="TSV", help="one row per study: statuses, criteria met, scores")
    coh.add_argument(
        "--followup", nargs="+", default=[], metavar="FOLLOWUP_JSON", help="'brainmets followup' documents"
    )
    coh.add_argument("--out-lesion-tracks", metavar="TSV", help="one row per lesion track and session (follow-ups)")
    coh.add_argument("--out-responses", metavar="TSV", help="one row per follow-up session: RANO-BM and volumetric")
    coh.add_argument(
        "--comparison", nargs="+", default=[], metavar="COMPARISON_JSON", help="'brainmets compare' documents"
    )
    coh.add_argument(
        "--comparison-status-list", metavar="FILE", help="a file naming the compare step's status documents"
    )
    coh.add_argument("--out-comparison-lesions", metavar="TSV", help="one row per lesion group of each comparison")
    coh.add_argument("--out-comparison-studies", metavar="TSV", help="one row per comparison: metrics and differences")
    coh.add_argument(
        "--out-comparison-detection",
        metavar="TSV",
        help="one row per brats2025 comparison, region and lesion size bin: recall, false positives, F1",
    )
    coh.add_argument(
        "--out-comparison-lesion-table",
        metavar="TSV",
        help="one row per reference and per predicted lesion of each region of each comparison (its lesion table)",
    )
    coh.add_argument(
        "--followup-status-list",
        metavar="FILE",
        help="a file naming the followup step's status documents, one per line (failed subjects are left out)",
    )
    for option, what in (("status", "--status"), ("indications", "--indications"), ("followup", "--followup")):
        coh.add_argument(
            f"--{option}-list",
            metavar="FILE",
            help=f"a file naming more {what} documents, one path per line (for cohorts whose paths would "
            "overflow a command line; the workflow passes them this way)",
        )
    coh.set_defaults(func=run)


def _path_list(path: str | None) -> list[str]:
    """The non-empty lines of a list file (``-`` or ``/dev/stdin``: standard input)."""
    if not path:
        return []
    from brainmets.config import read_text

    text = sys.stdin.read() if path == "-" else read_text(path)
    return [line.strip() for line in text.splitlines() if line.strip()]


def run(args: argparse.Namespace) -> dict:
    from brainmets.cohort_tables import gather, table_files, write_tables
    from brainmets.io.writers import check_outputs

    args.status = args.status + _path_list(args.status_list)
    args.indications = args.indications + _path_list(args.indications_list)
    args.followup = args.followup + _path_list(args.followup_list)
    followup_statuses = _path_list(args.followup_status_list)
    comparison_statuses = _path_list(args.comparison_status_list)
    if not (args.documents or args.status):
        raise ConfigError("give features documents, or --status documents of the workflow's features step")
    outputs = {"lesions": args.out_lesions, "studies": args.out_studies}
    for name, value in (
        ("indications", args.out_indications),
        ("status", args.out_status),
        ("lesion_tracks", args.out_lesion_tracks),
        ("responses", args.out_responses),
        ("comparison_lesions", args.out_comparison_lesions),
        ("comparison_studies", args.out_comparison_studies),
        ("comparison_detection", args.out_comparison_detection),
        ("comparison_lesion_table", args.out_comparison_lesion_table),
    ):
        if value:
            outputs[name] = value
    if bool(args.indications) != bool(args.out_indications):
        raise ConfigError("give --indications and --out-indications together")
    if bool(args.followup or args.followup_status_list) != bool(args.out_lesion_tracks or args.out_responses):
        raise ConfigError("give follow-up documents with --out-lesion-tracks or --out-responses, and only then")
    files = [path for _, _, path in table_files(outputs, args.parquet)]
    check_outputs(files, command_inputs(args))
    if bool(args.comparison or args.comparison_status_list) != bool(
        args.out_comparison_lesions
        or args.out_comparison_studies
        or args.out_comparison_detection
        or args.out_comparison_lesion_table
    ):
        raise ConfigError(
            "give comparison documents with --out-comparison-lesions, --out-comparison-studies, "
            "--out-comparison-detection or --out-comparison-lesion-table, and only then"
        )
    tables = gather(
        args.documents, args.status, args.indications, args.followup, followup_statuses, args.comparison,
        comparison_statuses,
    )  # fmt: skip
    check_outputs(files, tables.sources)  # the features documents the status documents named, too
    write_tables(tables, outputs, parquet=args.parquet)
    for row in tables.status:
        if row["features_status"] != "ok":
            study = " ".join(filter(None, (row["participant_id"], row["session_id"])))
            log.warning("%s failed: %s", study, row["features_error"])
    studies = len(tables.status) if tables.status else len(tables.studies)
    failed = sum(row["features_status"] != "ok" for row in tables.status)
    what = f"cohort of {count(studies, 'study', 'studies')} ({failed} failed), {count(len(tables.lesions), 'lesion')}"
    summarize(args, what, files)
    return {name: str(path) for name, path in outputs.items()}
