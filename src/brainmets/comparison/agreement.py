"""Two segmentations of one study compared: the prediction brought onto the reference's grid, and whether the
prediction changes the features that decide Table 1 (lesion by lesion, study by study, rule by rule)."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from brainmets.comparison.brats_metrics import overlap_counts
from brainmets.fields import Field
from brainmets.longitudinal.tracking import SessionLesions, TrackingParameters, groups, link
from brainmets.measurement.geometry import apply_affine

#: Per matched lesion, the features whose difference (prediction - reference) is reported.
LESION_FEATURES = (
    "volume_ml",
    "max_diameter_3d_mm",
    "axial_longest_diameter_mm",
    "edema_volume_ml",
    "posterior_fossa_fraction",
)
#: Per study, the summary values whose difference is reported.
STUDY_FEATURES = (
    "lesion_count",
    "cumulative_tumor_volume_ml",
    "total_edema_volume_ml",
    "largest_max_diameter_3d_mm",
    "largest_axial_diameter_mm",
    "measurable_lesion_count",
    "target_lesion_count",
    "sum_longest_diameters_mm",
    "infratentorial_lesion_count",
)


def onto_grid(
    labels: np.ndarray, affine: np.ndarray, grid_affine: np.ndarray, grid_shape
) -> tuple[np.ndarray, str | None]:
    """``labels`` (on ``affine``) resampled by world coordinates, nearest neighbour, onto another grid; and a
    warning when the grids' fields of view differ (the part of the grid the labels do not cover reads 0)."""
    if labels.shape == tuple(grid_shape) and np.allclose(affine, grid_affine, atol=1e-4):
        return labels, None
    index = np.linalg.inv(affine) @ grid_affine  # grid voxel -> labels voxel
    out = ndimage.affine_transform(
        labels, index[:3, :3], offset=index[:3, 3], output_shape=tuple(grid_shape), order=0, mode="constant", cval=0
    )
    corners = np.array(
        [[i, j, k] for i in (0, grid_shape[0] - 1) for j in (0, grid_shape[1] - 1) for k in (0, grid_shape[2] - 1)],
        float,
    )
    inside = apply_affine(index, corners)
    covered = np.all((inside >= -0.5) & (inside <= np.asarray(labels.shape) - 0.5), axis=1)
    lost = int(np.count_nonzero(labels)) - int(np.count_nonzero(out))
    warning = None
    if not covered.all() or lost > 0.01 * max(int(np.count_nonzero(labels)), 1):
        warning = (
            "the prediction's field of view differs from the reference's: it was resampled onto the reference's "
            f"grid by world coordinates (nearest neighbour), {'part of the reference grid lies outside it' if not covered.all() else 'its labelled voxels partly fall outside the reference grid'}"
        )
    return out, warning


def lesion_agreement(reference: dict[str, Any], prediction: dict[str, Any], ref_data: SessionLesions,
                     pred_data: SessionLesions, params: TrackingParameters) -> list[dict[str, Any]]:  # fmt: skip
    """The lesions of both features documents matched in world space (as the follow-up matches sessions):
    ``matched`` (1:1, with each feature's difference), ``merged`` / ``split`` (n:1 / 1:n), ``missed`` (a
    reference lesion with no prediction) and ``invented`` (a prediction with no reference lesion)."""
    ref_rows = {r["lesion_id"]: r for r in reference["lesions"]}
    pred_rows = {r["lesion_id"]: r for r in prediction["lesions"]}
    out = []
    for refs, preds in groups(link(ref_data, pred_data, params), ref_data.ids, pred_data.ids):
        kind = (
            "matched" if len(refs) == len(preds) == 1
            else "missed" if not preds
            else "invented" if not refs
            else "merged" if len(preds) == 1
            else "split" if len(refs) == 1
            else "merged and split"
        )  # fmt: skip
        entry: dict[str, Any] = {"agreement": kind, "reference_lesion_ids": refs, "prediction_lesion_ids": preds}
        for name in LESION_FEATURES:
            ref_value = _total([ref_rows[i].get(name) for i in refs], name)
            pred_value = _total([pred_rows[j].get(name) for j in preds], name)
            entry[f"reference_{name}"] = ref_value
            entry[f"prediction_{name}"] = pred_value
            entry[f"difference_{name}"] = None if ref_value is None or pred_value is None else pred_value - ref_value
        entry["reference_location"] = [ref_rows[i].get("location") for i in refs]
        entry["prediction_location"] = [pred_rows[j].get("location") for j in preds]
        entry["location_differs"] = len(set(entry["reference_location"]) | set(entry["prediction_location"])) > 1
        entry["reference_rano_bm_target"] = any(ref_rows[i]["rano_bm_target"] for i in refs)
        entry["prediction_rano_bm_target"] = any(pred_rows[j]["rano_bm_target"] for j in preds)
        out.append(entry)
    return out


def _total(values: list[Any], name: str) -> float | None:
    """Several lesions' value: volumes add up, a fraction or diameter is the largest; None when any is None
    or there is none."""
    if not values or any(v is None for v in values):
        return None
    return float(sum(values)) if name.endswith("_ml") else float(max(values))


def study_agreement(reference: dict[str, Any], prediction: dict[str, Any]) -> dict[str, Any]:
    """Each study summary value of both documents and its difference (prediction - reference)."""
    out: dict[str, Any] = {}
    for name in STUDY_FEATURES:
        a, b = reference["study"].get(name), prediction["study"].get(name)
        out[name] = {"reference": a, "prediction": b, "difference": None if a is None or b is None else b - a}
    return out


def verdict_changes(reference: dict[str, Any], prediction: dict[str, Any]) -> list[dict[str, Any]]:
    """Every Table 1 rule, text rule and modality status whose verdict differs between two indication documents."""
    changes = []
    for modality, entry in reference["modalities"].items():
        other = prediction["modalities"][modality]
        if entry["status"] != other["status"]:
            changes.append({"what": f"{modality} status", "reference": entry["status"], "prediction": other["status"]})
        theirs = {c["id"]: c for c in other["criteria"]}
        for criterion in entry["criteria"]:
            if criterion["met"] != theirs[criterion["id"]]["met"]:
                changes.append({"what": criterion["id"], "text": criterion["text"], "reference": criterion["met"],
                                "prediction": theirs[criterion["id"]]["met"]})  # fmt: skip
    theirs = {c["id"]: c for c in prediction.get("text_rules", [])}
    for rule in reference.get("text_rules", []):
        if rule["id"] in theirs and rule["met"] != theirs[rule["id"]]["met"]:
            changes.append({"what": rule["id"], "text": rule["text"], "reference": rule["met"],
                            "prediction": theirs[rule["id"]]["met"]})  # fmt: skip
    return changes


def add_dice(entries: list[dict[str, Any]], ref_instances: np.ndarray, pred_on_ref: np.ndarray) -> None:
    """Each entry's core Dice: its reference lesions' voxels against its prediction lesions' (on the
    reference's grid), from one pass over both grids (voxel counts per lesion and per overlapping pair)."""
    ref_counts, pred_counts = _counts(ref_instances), _counts(pred_on_ref)
    overlap = overlap_counts(ref_instances, pred_on_ref)
    for entry in entries:
        refs, preds = entry["reference_lesion_ids"], entry["prediction_lesion_ids"]
        if not refs or not preds:
            entry["dice"] = 0.0
            continue
        total = sum(ref_counts.get(i, 0) for i in refs) + sum(pred_counts.get(j, 0) for j in preds)
        common = sum(overlap.get((i, j), 0) for i in refs for j in preds)
        entry["dice"] = 2.0 * common / total if total else None


def _counts(instances: np.ndarray) -> dict[int, int]:
    """Voxels per lesion id of an instance map."""
    ids, counts = np.unique(instances[instances > 0], return_counts=True)
    return dict(zip(ids.tolist(), counts.tolist()))


AGREEMENT = {
    "matched": "one reference lesion, one predicted lesion",
    "missed": "a reference lesion the prediction lacks",
    "invented": "a predicted lesion with no reference lesion",
    "merged": "several reference lesions predicted as one",
    "split": "one reference lesion predicted as several",
    "merged and split": "several reference lesions linked to several predicted ones",
}
#: Columns of the cohort's comparison_lesions table (one row per lesion group of each compared study).
COMPARISON_LESION_FIELDS = [
    Field("agreement", None, "how the reference's and the prediction's lesions correspond", AGREEMENT),
    Field("reference_lesion_ids", None, "the reference's lesion ids in the group (its features)"),
    Field("prediction_lesion_ids", None, "the prediction's lesion ids in the group"),
    Field("dice", None, "Dice of the group's cores (0 for a missed or invented lesion)"),
    *[
        Field(
            f"{side}_{name}",
            "mL" if name.endswith("_ml") else "mm" if name.endswith("_mm") else None,
            f"{name} of the group's {side} lesions (volumes summed, others the largest)",
        )  # fmt: skip
        for name in LESION_FEATURES
        for side in ("reference", "prediction")
    ],
    *[
        Field(
            f"difference_{name}",
            "mL" if name.endswith("_ml") else "mm" if name.endswith("_mm") else None,
            f"prediction - reference {name}",
        )  # fmt: skip
        for name in LESION_FEATURES
    ],
    Field(
        "location_differs", None, "the two sides' lesions lie in different locations", {"true": "yes", "false": "no"}
    ),
]
#: Columns of the cohort's comparison_studies table (one row per compared study).
COMPARISON_STUDY_FIELDS = [
    Field("metrics", None, "which BraTS-METS metrics: brats2025 or brats2023"),
    *[
        Field(f"{region}_lesionwise_dice", None, f"{region}: lesion-wise Dice (the mode's lesion-wise score)")
        for region in ("et", "tc", "wt")
    ],
    *[
        Field(f"{region}_f1", None, f"{region}: lesion detection F1 (brats2025; n/a for brats2023)")
        for region in ("et", "tc", "wt")
    ],
    *[
        Field(f"{region}_pq", None, f"{region}: panoptic quality, Dice (pq_dsc; brats2025; n/a for brats2023)")
        for region in ("et", "tc", "wt")
    ],
    *[Field(f"{region}_global_dice", None, f"{region}: Dice of the whole region") for region in ("et", "tc", "wt")],
    *[Field(f"{name}_difference", None, f"prediction - reference {name}") for name in STUDY_FEATURES],
    Field("missed_lesion_count", None, "reference lesions the prediction lacks"),
    Field("invented_lesion_count", None, "predicted lesions with no reference lesion"),
    Field(
        "verdict_changes",
        None,
        "Table 1 rules and statuses whose verdict the prediction changes; n/a without a clinical row",
    ),
]


def table_rows(document: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A comparison document's cohort rows: one per lesion group, and the study's."""
    regions, mode = document["metrics"]["regions"], document["metrics"]["mode"]
    study: dict[str, Any] = {"metrics": mode}
    for region in ("et", "tc", "wt"):
        if mode == "brats2025":
            result = regions[region]
            study[f"{region}_lesionwise_dice"] = result["summary"]["lesionwise_dsc_mean"]
            study[f"{region}_f1"] = result["rq"]
            study[f"{region}_pq"] = result["pq_dsc"]
            study[f"{region}_global_dice"] = result["global_bin_dsc"]
        else:
            result = regions[region.upper()]
            study[f"{region}_lesionwise_dice"] = result["LesionWise_Score_Dice"]
            study[f"{region}_f1"] = None
            study[f"{region}_pq"] = None
            study[f"{region}_global_dice"] = result["Legacy_Dice"]
    for name, values in document["study"].items():
        study[f"{name}_difference"] = values["difference"]
    study["missed_lesion_count"] = sum(e["agreement"] == "missed" for e in document["lesions"])
    study["invented_lesion_count"] = sum(e["agreement"] == "invented" for e in document["lesions"])
    study["verdict_changes"] = None if document["indications"] is None else len(document["indications"]["changes"])
    return document["lesions"], study
