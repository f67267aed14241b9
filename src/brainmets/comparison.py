"""Two segmentations of one study compared: the prediction brought onto the reference's grid, and whether the
prediction changes the features that decide Table 1 (lesion by lesion, study by study, rule by rule)."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from .geometry import apply_affine
from .tracking import SessionLesions, TrackingParameters, groups, link

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
