"""``brainmets dataset-description``: the results folder's BIDS-Derivatives ``dataset_description.json``."""

from __future__ import annotations

import argparse

from .. import __version__


def add_parser(sub, parents: list[argparse.ArgumentParser]) -> None:
    desc = sub.add_parser(
        "dataset-description",
        parents=parents,
        help="write the BIDS-Derivatives dataset_description.json of a results folder",
    )
    desc.add_argument("--out", required=True, metavar="JSON")
    desc.set_defaults(func=run)


def run(args: argparse.Namespace) -> dict:
    from ..io.writers import atomic_path, write_json

    description = {
        "Name": "brainmets: brain-metastasis lesion features, locations and Table 1 indications",
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [
            {
                "Name": "brainmets",
                "Version": __version__,
                "Description": "per-lesion and per-study features of brain metastases from segmentation label "
                "maps, anatomical location and the review's Table 1 indications (research use only)",
            }
        ],
        "HowToAcknowledge": "Research use only: not a medical device; indications are not treatment recommendations.",
    }
    with atomic_path(args.out) as tmp:
        write_json(tmp, description)
    return {"json": args.out}
