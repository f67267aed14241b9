"""``brainmets followup``: one subject's timeline (through :func:`brainmets.api.follow_up`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..api import default_threads
from .common import command_config, command_inputs, plural, summarize


def add_parser(sub, parents: list[argparse.ArgumentParser]) -> None:
    fol = sub.add_parser(
        "followup",
        parents=parents,
        help="follow one subject's lesions over its dated sessions: tracks, growth, RANO-BM (research use only)",
        description="Track every lesion of one subject's sessions in world space, measure its growth, and give "
        "the RANO-BM and volumetric response at each follow-up and the Table 1 facts that need time.",
    )
    fol.add_argument(
        "--timeline",
        required=True,
        metavar="TSV",
        help="one row per session: subject, session, date, segmentation; optionally label_scheme, transform, "
        "treatment, treated_lesions, steroids, clinical_status (and the studies sheet's reference columns)",
    )
    fol.add_argument(
        "--subject",
        help="take this subject's rows of --timeline (which may then be the workflow's studies sheet, with a date column)",
    )
    fol.add_argument("--out-json", required=True, metavar="PATH", help="the follow-up document")
    fol.add_argument(
        "--out-figure", metavar="PNG", help="spider plot: each target's and the sum's change from baseline over time"
    )
    fol.add_argument("--status-json", metavar="PATH", help="always write a status document; exit 0 on a bad subject")
    fol.add_argument(
        "--out-dir",
        metavar="DIR",
        help="also write sub-<S>_desc-lesiontracks_followup.tsv and sub-<S>_desc-responses_followup.tsv "
        "(with their data dictionaries) under DIR",
    )
    fol.add_argument("--config", metavar="YAML", help="config file: its features, anatomy and followup sections")
    fol.add_argument("--config-json", metavar="JSON", help="the same as a JSON string (after --config)")
    fol.add_argument(
        "--register",
        action="store_true",
        help="estimate each follow-up session's transform to the baseline from the sessions' subject_image "
        "columns (SimpleITK, linear), where the timeline gives none; its quality is recorded",
    )
    fol.add_argument("--threads", type=int, default=default_threads(), metavar="N", help="threads per session")
    fol.set_defaults(func=run, outputs=planned_outputs)


def planned_outputs(args: argparse.Namespace, sessions: list | None = None) -> dict[str, Path]:
    """The files a successful run writes; refuses duplicates, folders, and any output that is an input.
    Without `sessions` the timeline is read; one that cannot be read names the tables from --subject."""
    from ..errors import BrainmetsError
    from ..identifiers import check_label, inside
    from ..io.writers import check_outputs
    from ..timeline import read_timeline

    if sessions is None:
        try:
            sessions = read_timeline(args.timeline, args.subject)
        except (BrainmetsError, OSError):
            sessions = []
    outputs = {"json": Path(args.out_json)}
    if args.out_figure:
        outputs["figure"] = Path(args.out_figure)
    subject = sessions[0].subject if sessions else args.subject
    if args.out_dir and subject:
        base, subject = Path(args.out_dir), check_label(subject, "subject")
        for name in ("lesiontracks", "responses"):
            tsv = inside(base / f"sub-{subject}_desc-{name}_followup.tsv", base)
            outputs[name], outputs[f"{name}_dictionary"] = tsv, tsv.with_suffix(".json")
    inputs = command_inputs(args) + [s.segmentation for s in sessions]
    check_outputs([*outputs.values(), *([args.status_json] if args.status_json else [])], inputs)
    return outputs


def run(args: argparse.Namespace) -> dict:
    from .. import api
    from ..fields import data_dictionary
    from ..followup import LESION_TRACK_FIELDS, RESPONSE_FIELDS, table_rows
    from ..io.writers import atomic_outputs, write_json, write_tsv
    from ..timeline import read_timeline

    outputs = planned_outputs(args, read_timeline(args.timeline, args.subject))
    document = api.follow_up(
        args.timeline, subject=args.subject, config=command_config(args), register=args.register, threads=args.threads
    )
    tracks, responses = table_rows(document)
    with atomic_outputs(*outputs.values()) as tmp_paths:
        tmp = dict(zip(outputs, tmp_paths))
        write_json(tmp["json"], document)
        if "figure" in tmp:
            from ..report.figures import spider_plot

            spider_plot(tmp["figure"], document)
        for name, rows, fields in (
            ("lesiontracks", tracks, LESION_TRACK_FIELDS),
            ("responses", responses, RESPONSE_FIELDS),
        ):
            if name in tmp:
                write_tsv(tmp[name], [f.name for f in fields], rows)
                write_json(tmp[f"{name}_dictionary"], data_dictionary(fields))
    responses = ", ".join(r["response"] for r in document["rano_bm"]) or "none"
    summarize(args, f"sub-{document['subject']}: {plural(len(document['sessions']), 'session')}, RANO-BM {responses}",
              outputs)  # fmt: skip
    return outputs
