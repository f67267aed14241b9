"""``brainmets followup``: one subject's timeline (through :func:`brainmets.api.follow_up`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from brainmets.cli.common import (
    command_config,
    command_inputs,
    config_options,
    identity_options,
    parent_parser,
    status_options,
    summarize,
    threads_options,
)
from brainmets.display import count


def add_parser(sub, parents: list[argparse.ArgumentParser]) -> None:
    timeline = parent_parser()
    timeline.add_argument(
        "--timeline",
        required=True,
        metavar="TSV",
        help="one row per session: subject, session, date, segmentation; optionally label_scheme, transform, "
        "treatment, treated_lesions, steroids, clinical_status (and the studies sheet's reference columns)",
    )
    outputs = parent_parser()
    outputs.add_argument("--out-json", required=True, metavar="PATH", help="the follow-up document")
    outputs.add_argument(
        "--out-figure", metavar="PNG", help="spider plot: each target's and the sum's change from baseline over time"
    )
    tables = parent_parser()
    tables.add_argument(
        "--out-dir",
        metavar="DIR",
        help="also write sub-<S>_desc-lesiontracks_followup.tsv and sub-<S>_desc-responses_followup.tsv "
        "(with their data dictionaries) under DIR",
    )
    register = parent_parser()
    register.add_argument(
        "--register",
        action="store_true",
        help="estimate each follow-up session's transform to the baseline from the sessions' subject_image "
        "columns (SimpleITK, linear), where the timeline gives none; its quality is recorded",
    )
    fol = sub.add_parser(
        "followup",
        parents=[
            *parents,
            timeline,
            identity_options(
                "take this subject's rows of --timeline (which may then be the workflow's studies sheet, with a date "
                "column)",
                session_help=None,
            ),
            outputs,
            status_options("always write a status document; exit 0 on a bad subject"),
            tables,
            config_options("config file: its features, anatomy and followup sections"),
            register,
            threads_options("threads per session"),
        ],
        help="follow one subject's lesions over its dated sessions: tracks, growth, RANO-BM (research use only)",
        description="Track every lesion of one subject's sessions in world space, measure its growth, and give "
        "the RANO-BM and volumetric response at each follow-up and the Table 1 facts that need time.",
    )
    fol.set_defaults(func=run, outputs=planned_outputs)


def planned_outputs(args: argparse.Namespace, sessions: list | None = None) -> dict[str, Path]:
    """The files a successful run writes; refuses duplicates, folders, and any output that is an input.
    Without `sessions` the timeline is read; one that cannot be read names the tables from --subject."""
    from brainmets.errors import BrainmetsError
    from brainmets.identifiers import check_label, inside
    from brainmets.io import bids
    from brainmets.io.writers import check_outputs
    from brainmets.longitudinal.timeline import read_timeline

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
        for name, suffix in (("lesiontracks", bids.LESION_TRACKS_TSV), ("responses", bids.RESPONSES_TSV)):
            tsv = inside(base / bids.file_name(bids.subject_entities(subject), suffix), base)
            outputs[name], outputs[f"{name}_dictionary"] = tsv, tsv.with_suffix(".json")
    inputs = command_inputs(args) + [s.segmentation for s in sessions]
    check_outputs([*outputs.values(), *([args.status_json] if args.status_json else [])], inputs)
    return outputs


def run(args: argparse.Namespace) -> dict:
    from brainmets.fields import data_dictionary
    from brainmets.io.writers import atomic_outputs, write_json, write_tsv
    from brainmets.longitudinal.followup import LESION_TRACK_FIELDS, RESPONSE_FIELDS, table_rows
    from brainmets.longitudinal.subject import follow_up_timeline
    from brainmets.longitudinal.timeline import read_timeline

    outputs = planned_outputs(args, read_timeline(args.timeline, args.subject))
    document = follow_up_timeline(
        args.timeline, subject=args.subject, config=command_config(args), register=args.register, threads=args.threads
    )
    tracks, responses = table_rows(document)
    with atomic_outputs(*outputs.values()) as tmp_paths:
        tmp = dict(zip(outputs, tmp_paths))
        write_json(tmp["json"], document)
        if "figure" in tmp:
            from brainmets.figures.pictures import spider_plot

            spider_plot(tmp["figure"], document)
        for name, rows, fields in (
            ("lesiontracks", tracks, LESION_TRACK_FIELDS),
            ("responses", responses, RESPONSE_FIELDS),
        ):
            if name in tmp:
                write_tsv(tmp[name], [f.name for f in fields], rows)
                write_json(tmp[f"{name}_dictionary"], data_dictionary(fields))
    responses = ", ".join(r["response"] for r in document["rano_bm"]) or "none"
    summarize(args, f"sub-{document['subject']}: {count(len(document['sessions']), 'session')}, RANO-BM {responses}",
              outputs)  # fmt: skip
    return outputs
