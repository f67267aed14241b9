"""``brainmets compare``: a prediction against a reference segmentation (through :func:`brainmets.api.compare`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from brainmets.cli.common import (
    REFERENCE_OPTIONS,
    check_identity,
    command_config,
    command_inputs,
    config_options,
    identity_options,
    parent_parser,
    reference_options,
    scheme_options,
    status_options,
    study_label,
    summarize,
    threads_options,
)
from brainmets.display import amount

COLUMNS = ["region", "kind", "reference_instance", "prediction_instance", "reference_volume_mm3", "dice", "hd95_mm",
           "hd95_mm_scored", "nsd", "large"]  # fmt: skip


def add_parser(sub, parents: list[argparse.ArgumentParser]) -> None:
    pair = parent_parser()
    pair.add_argument("--reference", required=True, metavar="REF", help="the reference segmentation (any format)")
    pair.add_argument("--prediction", required=True, metavar="PRED", help="the prediction (any format, any grid)")
    pair.add_argument("--out-json", required=True, metavar="PATH", help="the comparison document")
    pair.add_argument("--out-tsv", metavar="PATH", help="one row per reference lesion and per invented one, per region")
    pair.add_argument(
        "--out-lesions-tsv",
        metavar="PATH",
        help="the lesion table: one row per reference and per predicted lesion, per region (size, match, Dice, "
        "detection)",
    )
    pair.add_argument(
        "--metrics",
        choices=("brats2025", "brats2023"),
        default="brats2025",
        help="brats2025 (default): brats-evaluation 0.0.10, panoptica one-to-one matching; brats2023: the 2023 "
        "lesion-wise script (dilated, pooled matching); each reproduced exactly",
    )
    pair.add_argument(
        "--detection-bins-mm3",
        metavar="EDGES",
        help="lower edges (mm3, ascending) of the brats2025 detection-by-size bins, comma-separated (default: the "
        "config's compare_detection_bins_mm3, 0,20,100,1000); the last bin is open",
    )
    clinical = parent_parser()
    clinical.add_argument("--clinical", metavar="TSV", help="clinical table: report the Table 1 verdicts that change")
    com = sub.add_parser(
        "compare",
        parents=[
            *parents,
            pair,
            scheme_options(
                "label scheme of both (default auto: brats-mets-2023, a map of only 0 and 1 binary; or a custom "
                'mapping, "enhancing=3;necrotic=1;edema=2")'
            ),
            clinical,
            identity_options("subject label (its clinical row)"),
            reference_options(
                {
                    "parcellation": "FreeSurfer/SynthSeg label map of the subject: locate the lesions of both",
                    "posterior_fossa_mask": "binary posterior-fossa mask in the reference's space",
                    "atlas": "atlas definition in the reference's space (with --atlas-dir)",
                    "atlas_dir": "folder of the atlas's images",
                },
                metavars=dict.fromkeys(REFERENCE_OPTIONS, "FILE"),
            ),
            config_options("config file (features, anatomy, indications sections)"),
            status_options("always write a status document; exit 0 on a bad pair"),
            threads_options("threads measuring lesions"),
        ],
        help="compare a prediction with a reference segmentation: BraTS-METS lesion-wise metrics, feature and "
        "Table 1 agreement (research use only)",
        description="Compare two segmentations of one study lesion by lesion: the BraTS-METS metrics of the "
        "official evaluator, the features' differences, and the Table 1 verdicts the prediction changes.",
    )
    com.set_defaults(func=run, outputs=planned_outputs)


def rows(document: dict) -> list[dict]:
    """The metric rows: every reference lesion of every region (matched or missed) and every invented one.
    ``hd95_mm`` is the measured HD95 (n/a for a missed or invented lesion, which has none); ``hd95_mm_scored``
    is what the summary's lesion-wise HD95 scores it: the measured value, or the mode's penalty (373 mm in
    brats2025, 374 mm in brats2023) for a missed or invented lesion."""
    from brainmets.comparison.brats_metrics import HD95_PENALTY_2023_MM, HD95_PENALTY_MM

    out = []
    if document["metrics"]["mode"] == "brats2023":
        for region, result in document["metrics"]["regions"].items():
            for lesion in result["reference_lesions"]:
                found = lesion["predicted_lesion_numbers"]
                out.append({
                    "region": region, "kind": "matched" if found else "missed",
                    "reference_instance": lesion["gt_lesion_number"],
                    "prediction_instance": ",".join(map(str, found)) or None,
                    "reference_volume_mm3": lesion["gt_lesion_vol_mm3"], "dice": lesion["dice"],
                    "hd95_mm": lesion["hd95_raw"] if found else None, "hd95_mm_scored": lesion["hd95"],
                    "large": lesion["gt_lesion_vol_mm3"] > 2,
                })  # fmt: skip
            out += [{"region": region, "kind": "invented", "prediction_instance": c, "dice": 0.0,
                     "hd95_mm_scored": HD95_PENALTY_2023_MM} for c in result["fp_prediction_components"]]  # fmt: skip
        return out
    for region, result in document["metrics"]["regions"].items():
        for index, lesion in enumerate(result["reference_instances"], start=1):
            matched = lesion["is_matched"]
            out.append({
                "region": region, "kind": "matched" if matched else "missed", "reference_instance": index,
                "prediction_instance": lesion.get("prediction_instance"), "reference_volume_mm3": lesion["volume"],
                "dice": lesion.get("sq_dsc", 0.0), "hd95_mm": lesion.get("sq_hd95") if matched else None,
                "hd95_mm_scored": lesion.get("sq_hd95") if matched else HD95_PENALTY_MM,
                "nsd": lesion.get("sq_nsd", 0.0), "large": lesion["volume"] >= 20,
            })  # fmt: skip
        for index in result["prediction_instances_unmatched"]:
            out.append({"region": region, "kind": "invented", "prediction_instance": index, "dice": 0.0,
                        "hd95_mm_scored": HD95_PENALTY_MM, "nsd": 0.0})  # fmt: skip
    return out


def planned_outputs(args: argparse.Namespace) -> dict[str, Path]:
    """The files a successful run writes; refuses duplicates, folders, and any output that is an input."""
    from brainmets.io.writers import check_outputs

    outputs = {"json": Path(args.out_json)} | ({"tsv": Path(args.out_tsv)} if args.out_tsv else {})
    outputs |= {"lesions_tsv": Path(args.out_lesions_tsv)} if args.out_lesions_tsv else {}
    check_outputs(list(outputs.values()), command_inputs(args) + [args.reference, args.prediction])
    return outputs


def run(args: argparse.Namespace) -> dict:
    from brainmets.comparison.detection import parse_bins
    from brainmets.comparison.document import compare_segmentations
    from brainmets.comparison.lesion_table import COLUMNS as LESION_TABLE_COLUMNS
    from brainmets.io.writers import atomic_outputs, write_json, write_tsv
    from brainmets.schemes import scheme_setting

    check_identity(args)
    outputs = planned_outputs(args)
    parameters = {"label_scheme": scheme_setting(args.scheme)} if args.scheme else {}
    bins = parse_bins(args.detection_bins_mm3) if args.detection_bins_mm3 else None
    document = compare_segmentations(
        args.reference, args.prediction, metrics=args.metrics, clinical=args.clinical, subject=args.subject,
        session=args.session, config=command_config(args), threads=args.threads, detection_bins_mm3=bins,
        **parameters,
        reference_options={k: getattr(args, k) for k in REFERENCE_OPTIONS},
    )  # fmt: skip
    with atomic_outputs(*outputs.values()) as tmp_paths:
        tmp = dict(zip(outputs, tmp_paths))
        write_json(tmp["json"], document)
        if "tsv" in tmp:
            write_tsv(tmp["tsv"], COLUMNS, rows(document))
        if "lesions_tsv" in tmp:
            write_tsv(tmp["lesions_tsv"], LESION_TABLE_COLUMNS, document["lesion_table"])
    regions = document["metrics"]["regions"]
    if "et" in regions:
        dice = regions["et"]["summary"]["lesionwise_dsc_mean"]
    else:
        dice = regions["ET"]["LesionWise_Score_Dice"]
    summarize(args, f"{study_label(args)}: enhancing tumour lesion-wise Dice {amount(dice)} ({args.metrics})", outputs)
    return outputs
