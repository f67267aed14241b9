"""``brainmets indicate``: one study's indication document (through :func:`brainmets.api.indications_document`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from brainmets.cli.common import (
    check_identity,
    command_config,
    command_inputs,
    config_options,
    identity_options,
    indication_summary,
    log,
    parent_parser,
    status_options,
    summarize,
)


def add_parser(sub, parents: list[argparse.ArgumentParser]) -> None:
    inputs = parent_parser()
    inputs.add_argument("--features", required=True, metavar="JSON", help="the study's 'brainmets features' document")
    inputs.add_argument(
        "--features-status",
        metavar="JSON",
        help="the features step's status document: when it failed, write a 'not evaluated' document instead",
    )
    inputs.add_argument(
        "--clinical",
        metavar="TSV",
        help="clinical table (one row per subject/session); without it every clinical input is unknown",
    )
    more = parent_parser()
    more.add_argument(
        "--followup",
        metavar="JSON",
        help="the subject's 'brainmets followup' document: rapid growth, CNS progression and recurrences where the "
        "clinical table leaves them empty",
    )
    more.add_argument(
        "--followup-status",
        metavar="JSON",
        help="the followup step's status document: its follow-up document is used as --followup; when the step "
        "failed, the time facts stay unknown and the document says why",
    )
    more.add_argument("--out-json", required=True, metavar="PATH", help="the indication document")
    more.add_argument("--rules", metavar="YAML", help="an edited copy of the rule table (default: the built-in one)")
    ind = sub.add_parser(
        "indicate",
        parents=[
            *parents,
            inputs,
            identity_options(
                "subject label (default: the one in the features document)",
                "session label (default: the one in the features document)",
            ),
            more,
            config_options("config file; its 'indications' section sets thresholds"),
            status_options("always write a status document; exit 0 on a bad study"),
        ],
        help="which treatments the review's Table 1 supports for one study (research use only)",
        description="Evaluate the review's Table 1 for one study, from its features and clinical data. "
        "Research use only: not a treatment recommendation.",
    )
    ind.set_defaults(func=run, outputs=planned_outputs)


def _not_evaluated(args: argparse.Namespace, reason: str, subject=None, session=None) -> dict:
    from brainmets.indications import DISCLAIMER

    return {
        "research_use_only": True,
        "disclaimer": DISCLAIMER,
        "subject": args.subject or subject,
        "session": args.session or session,
        "status": "not_evaluated",
        "reason": reason,
    }


def planned_outputs(args: argparse.Namespace) -> dict[str, Path]:
    """The file a successful run writes; refuses one that is an input or a folder."""
    from brainmets.io.writers import check_outputs

    check_outputs([args.out_json, *([args.status_json] if args.status_json else [])], command_inputs(args))
    return {"json": Path(args.out_json)}


def run(args: argparse.Namespace) -> dict:
    from brainmets.config import read_features_document, read_json
    from brainmets.errors import InputDataError
    from brainmets.indications.document import indications_document
    from brainmets.io.writers import atomic_path, write_json

    check_identity(args)
    planned_outputs(args)
    if args.features_status:
        upstream = read_json(args.features_status, "brainmets status document", InputDataError)
        if upstream.get("status") != "ok":
            document = _not_evaluated(
                args,
                f"the features step failed: {upstream.get('error')}",
                upstream.get("subject"),
                upstream.get("session"),
            )
            with atomic_path(args.out_json) as tmp:
                write_json(tmp, document)
            summarize(args, indication_summary(args, document), [args.out_json])
            return {"json": args.out_json}
    document = read_features_document(args.features, InputDataError)
    followup, followup_failed = None, None
    if args.followup:
        followup = read_json(args.followup, "brainmets follow-up document", InputDataError)
    elif args.followup_status:
        status = read_json(args.followup_status, "brainmets status document", InputDataError)
        if status.get("status") == "ok" and status.get("outputs", {}).get("json"):
            followup = read_json(status["outputs"]["json"], "brainmets follow-up document", InputDataError)
        else:
            followup_failed = f"the followup step failed: {status.get('error')}; the facts that need time stay unknown"
    config = command_config(args)
    section = config["indications"]
    result = indications_document(
        document,
        args.clinical or config["clinical"],
        rules=args.rules or section["rules"],
        thresholds=section["thresholds"],
        subject=args.subject,
        session=args.session,
        features_path=args.features,
        followup=followup,
    )
    if followup_failed:
        result["followup"] = {"status": "failed", "reason": followup_failed}
        result["warnings"].append(followup_failed)
    log.info("%s: %s", result["subject"], ", ".join(f"{m} {e['status']}" for m, e in result["modalities"].items()))
    with atomic_path(args.out_json) as tmp:
        write_json(tmp, result)
    summarize(args, indication_summary(args, result), [args.out_json])
    return {"json": args.out_json}
