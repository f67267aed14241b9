"""The BraTS-METS lesion-wise metrics, reproduced exactly: ``brats2025`` = the current official evaluator,
PyPI ``brats-evaluation`` 0.0.10 with its ``mets`` configuration (panoptica 2.1.7) and its ``brats-parse-metrics
mets`` summary (``--vol_threshold 20 --overlap_threshold 0.1``).

Regions: et = {3}, tc = {1, 3}, wt = {1, 2, 3}, rc = {4}. Lesions are 26-connected components; reference and
prediction lesions are matched one to one (maximum bipartite matching on Dice, any overlap); per matched pair
Dice, HD95 (95th percentile of both directions' surface distances pooled, medpy-style 6-connected borders) and
NSD (tolerance: the smallest voxel size). Global metrics on the region masks use unit voxels, as the evaluator
does. The evaluator reads NIfTI through SimpleITK and passes the spacing in reversed axis order; distances here
use that same spacing so that the numbers are the evaluator's (on isotropic grids it makes no difference).
"""

from __future__ import annotations

import math
import sys
import warnings
from typing import Any

import cc3d
import numpy as np
from scipy.ndimage import binary_erosion, find_objects, generate_binary_structure
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree

REGIONS = {"et": (3,), "tc": (1, 3), "wt": (1, 2, 3), "rc": (4,)}
#: The evaluator's HD95 penalty for a missed or invented lesion, mm ("the diameter of the cube in SRI space").
HD95_PENALTY_MM = 373.0
VERSION = "brats-evaluation 0.0.10 (panoptica 2.1.7), config mets; brats-parse-metrics mets --vol_threshold 20 --overlap_threshold 0.1"


def _border_points(mask: np.ndarray) -> np.ndarray:
    """The voxel indices of a mask's border (its voxels the 6-connected erosion removes; medpy / panoptica)."""
    return np.argwhere(mask ^ binary_erosion(mask, structure=generate_binary_structure(3, 1), iterations=1))


def _surface_distances(points: np.ndarray, border: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Distances (mm, voxels scaled by ``scale``) from ``points`` to the nearest voxel of ``border``, found in a
    k-d tree and computed as ``scipy.ndimage.distance_transform_edt`` computes them: a distance map's values
    without building a map of the whole box."""
    nearest = cKDTree(border * scale).query(points * scale)[1]
    offsets = (border[nearest] - points) * scale
    return np.sqrt(np.add.reduce(offsets * offsets, axis=1))


def _box(mask: np.ndarray, margin: int = 2) -> tuple[slice, ...]:
    """The bounding box of a non-empty mask, widened by ``margin`` voxels and clipped to the array."""
    return _widen(find_objects(mask.astype(np.uint8))[0], margin, mask.shape)


def _widen(box: tuple[slice, ...], margin: int, shape) -> tuple[slice, ...]:
    """A box widened by ``margin`` voxels on every side, clipped to an array of ``shape``."""
    return tuple(slice(max(s.start - margin, 0), min(s.stop + margin, n)) for s, n in zip(box, shape))


def _crop(*masks: np.ndarray) -> tuple[np.ndarray, ...]:
    """The masks cut to their joint bounding box plus a margin (distances and borders do not change)."""
    box = _box(np.logical_or.reduce(masks))
    return tuple(m[box] for m in masks)


def overlap_counts(ref_ids: np.ndarray, pred_ids: np.ndarray) -> dict[tuple[int, int], int]:
    """The voxels each (reference id, predicted id) pair of two id maps shares, for the pairs that share any
    (ids > 0), in ascending order; one sort of 64-bit keys (a sort of id pairs as rows is ~100 times slower)."""
    both = (ref_ids > 0) & (pred_ids > 0)
    keys, counts = np.unique(
        (ref_ids[both].astype(np.int64) << 32) | pred_ids[both].astype(np.int64), return_counts=True
    )
    return {(int(k >> 32), int(k & 0xFFFFFFFF)): int(n) for k, n in zip(keys, counts)}


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 2.0 * int(np.logical_and(a, b).sum()) / total if total else math.nan


def distance_scores(reference: np.ndarray, prediction: np.ndarray, spacing, tolerance: float | None = None):
    """(HD95, NSD) of two masks from one pair of surface-distance computations: HD95 the 95th percentile of
    both directions' distances pooled; NSD with ``tolerance`` (default the smallest voxel size, 0.5 voxel
    without spacing), panoptica's formula."""
    scale = np.ones(3) if spacing is None else np.asarray(spacing, np.float64)
    a_border, b_border = _border_points(prediction), _border_points(reference)
    a_to_b, b_to_a = _surface_distances(a_border, b_border, scale), _surface_distances(b_border, a_border, scale)
    hd = float(np.percentile(np.hstack((a_to_b, b_to_a)), 95))
    tolerance = (min(spacing) if spacing is not None else 0.5) if tolerance is None else tolerance
    tp_a, tp_b = np.sum(a_to_b <= tolerance) / len(a_to_b), np.sum(b_to_a <= tolerance) / len(b_to_a)
    fp, fn = np.sum(a_to_b > tolerance) / len(a_to_b), np.sum(b_to_a > tolerance) / len(b_to_a)
    return hd, float((tp_a + tp_b) / (tp_a + tp_b + fp + fn + sys.float_info.min))


def region_metrics(
    reference: np.ndarray, prediction: np.ndarray, spacing, parts: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One region's lesion-wise result (panoptica's fields) from its binary reference and prediction masks;
    ``parts``, when given, receives the lesions it labelled (``ref_cc``, ``pred_cc``; its matches are the result's)."""
    ref_cc, n_ref = cc3d.connected_components(reference.astype(np.uint8), connectivity=26, return_N=True)
    pred_cc, n_pred = cc3d.connected_components(prediction.astype(np.uint8), connectivity=26, return_N=True)
    pairs = list(overlap_counts(ref_cc, pred_cc))
    ref_boxes, pred_boxes = find_objects(ref_cc), find_objects(pred_cc)
    ref_counts = np.bincount(ref_cc.ravel(), minlength=n_ref + 1)

    def pair(i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Reference lesion i and prediction lesion j, cut to their joint box."""
        box = tuple(
            slice(min(a.start, b.start), max(a.stop, b.stop)) for a, b in zip(ref_boxes[i - 1], pred_boxes[j - 1])
        )
        return ref_cc[box] == i, pred_cc[box] == j

    cost = np.full((n_ref, n_pred), 1 + 1e-6)
    for i, j in pairs:
        cost[i - 1, j - 1] = 1 - dice(*pair(i, j))
    matched = []
    if n_ref and n_pred:
        rows, cols = linear_sum_assignment(cost)
        matched = [(r + 1, c + 1) for r, c in zip(rows, cols) if cost[r, c] < 1]
    voxel_mm3 = float(np.prod(spacing))
    instances = {i: {"voxel_count": int(ref_counts[i]), "volume": float(ref_counts[i]) * voxel_mm3, "is_matched": 0}
                 for i in range(1, n_ref + 1)}  # fmt: skip
    scores = []
    for i, j in matched:
        r, p = _crop(*pair(i, j))
        hd, surface = distance_scores(r, p, spacing)
        score = {"sq_dsc": dice(r, p), "sq_hd95": hd, "sq_nsd": surface}
        instances[i].update(score, is_matched=1, prediction_instance=j)
        scores.append(score)
    tp = len(matched)
    fp, fn = n_pred - tp, n_ref - tp
    out: dict[str, Any] = {
        "n_ref_instances": n_ref,
        "n_pred_instances": n_pred,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "prec": tp / n_pred if n_pred else None,
        "rec": tp / n_ref if n_ref else None,
        "rq": tp / (tp + 0.5 * fp + 0.5 * fn) if n_ref or n_pred else math.nan,
    }
    for name in ("sq_dsc", "sq_hd95", "sq_nsd"):
        values = [s[name] for s in scores]
        if values:
            out[name], out[f"{name}_std"] = float(np.mean(values)), float(np.std(values))
        else:  # the evaluator's edge cases: nothing to compare, or no true positive
            empty = not n_ref and not n_pred
            out[name] = math.nan if empty else (math.inf if name == "sq_hd95" else 0.0)
            out[f"{name}_std"] = math.nan
    out["pq_dsc"] = out["sq_dsc"] * out["rq"]  # panoptic quality: NaN when both are empty, 0 without a match
    out.update(_global(reference, prediction))
    counts = [instances[i]["voxel_count"] for i, _ in matched]
    out.update(
        global_bin_volume_ref=int(np.count_nonzero(reference)),
        global_bin_volume_pred=int(np.count_nonzero(prediction)),
        instance_voxel_count_ref=float(np.mean(counts)) if counts else math.nan,
        instance_volume_ref=float(np.mean([instances[i]["volume"] for i, _ in matched])) if counts else math.nan,
    )
    out["reference_instances"] = [instances[i] for i in sorted(instances)]
    out["prediction_instances_unmatched"] = sorted(set(range(1, n_pred + 1)) - {j for _, j in matched})
    pred_counts = np.bincount(pred_cc.ravel(), minlength=n_pred + 1)  # volumes as the reference's: voxels x mm3
    out["prediction_instances_unmatched_volume"] = [
        float(pred_counts[j]) * voxel_mm3 for j in out["prediction_instances_unmatched"]
    ]
    if parts is not None:  # the lesion table's components: labelled once
        parts.update(ref_cc=ref_cc, pred_cc=pred_cc)
    return out


def _global(reference: np.ndarray, prediction: np.ndarray) -> dict[str, float]:
    """Global metrics on the binary masks, in voxel units (the evaluator passes no spacing here)."""
    if not reference.any() and not prediction.any():
        return {"global_bin_dsc": math.nan, "global_bin_hd95": math.nan, "global_bin_nsd": math.nan}
    if not np.logical_and(reference, prediction).any():
        return {"global_bin_dsc": 0.0, "global_bin_hd95": math.inf, "global_bin_nsd": 0.0}
    r, p = _crop(reference, prediction)
    hd, surface = distance_scores(r, p, None)
    return {"global_bin_dsc": dice(r, p), "global_bin_hd95": hd, "global_bin_nsd": surface}


def mets_summary(result: dict[str, Any], vol_threshold: float = 20.0, overlap_threshold: float = 0.1) -> dict[str, Any]:
    """``brats-parse-metrics mets`` for one region: detection over all, large (reference volume >= threshold mm3)
    and small lesions, and the lesion-wise means over large lesions with false positives penalised."""
    dsc, hd, nsd_values = [], [], []
    small_tp = small_fn = large_tp = large_fn = 0
    large_present = small_present = False
    for lesion in result["reference_instances"]:
        large = lesion["volume"] >= vol_threshold
        large_present |= large
        small_present |= not large
        if lesion["is_matched"]:
            detected = lesion["sq_dsc"] >= overlap_threshold
            if large:
                dsc.append(lesion["sq_dsc"])
                hd.append(lesion["sq_hd95"])
                nsd_values.append(lesion["sq_nsd"])
                large_tp, large_fn = large_tp + detected, large_fn + (not detected)
            else:
                small_tp, small_fn = small_tp + detected, small_fn + (not detected)
        elif large:
            large_fn += 1
            dsc.append(0)
            nsd_values.append(0)
            hd.append(HD95_PENALTY_MM)
        else:
            small_fn += 1
    fp = result["fp"]
    dsc += [0] * fp
    nsd_values += [0] * fp
    hd += [HD95_PENALTY_MM] * fp
    out = {
        f"all_instance_{k}": result[v]
        for k, v in (("tp", "tp"), ("fp", "fp"), ("fn", "fn"), ("prec", "prec"), ("rec", "rec"), ("f1", "rq"))
    }
    nan = math.nan

    def detection(prefix: str, tp: int, fn: int, present: bool) -> None:
        if not present:
            out.update({f"{prefix}_{k}": nan for k in ("tp", "fp", "fn", "prec", "rec", "f1")})
            return
        out.update({
            f"{prefix}_tp": tp, f"{prefix}_fp": fp, f"{prefix}_fn": fn,
            f"{prefix}_prec": tp / (tp + fp) if tp + fp else 0, f"{prefix}_rec": tp / (tp + fn) if tp + fn else 0,
            f"{prefix}_f1": 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else 0,
        })  # fmt: skip

    detection("large_instance", large_tp, large_fn, large_present)
    detection("small_instance", small_tp, small_fn, small_present)
    if result["n_ref_instances"] == 0 or not large_present:
        out.update({f"lesionwise_{m}_{s}": nan for m in ("dsc", "hd95", "nsd") for s in ("mean", "std")})
    else:
        finite = [v for v in hd if not math.isinf(v)]
        out.update(
            lesionwise_dsc_mean=float(np.mean(dsc)), lesionwise_dsc_std=float(np.std(dsc)),
            lesionwise_hd95_mean=float(np.mean(finite)) if finite else HD95_PENALTY_MM,
            lesionwise_hd95_std=float(np.std(finite)) if finite else 0.0,
            lesionwise_nsd_mean=float(np.mean(nsd_values)), lesionwise_nsd_std=float(np.std(nsd_values)),
        )  # fmt: skip
    global_hd95 = result["global_bin_hd95"]
    out.update(
        global_dsc=result["global_bin_dsc"],
        global_nsd=result["global_bin_nsd"],
        global_hd95=HD95_PENALTY_MM if math.isinf(global_hd95) else global_hd95,
    )
    return out


def evaluate(
    reference: np.ndarray, prediction: np.ndarray, zooms, components: dict[str, dict[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """Every region's result and summary for two integer label arrays on one grid; ``zooms``: the voxel sizes
    in the arrays' axis order (the evaluator's reversed spacing is applied here). Both arrays are cut once to
    their labelled voxels' box plus a margin, as the evaluator does (no distance or border changes).
    ``components``, when given, receives per region :func:`region_metrics`'s ``parts`` and the cut's first
    voxel (``origin``)."""
    from brainmets.schemes import value_mask

    spacing = tuple(float(z) for z in zooms)[::-1]
    labelled = (reference != 0) | (prediction != 0)
    origin = (0, 0, 0)
    if labelled.any():
        box = _box(labelled)
        reference, prediction = reference[box], prediction[box]
        origin = tuple(s.start for s in box)
    out = {}
    for name, values in REGIONS.items():
        parts = None if components is None else components.setdefault(name, {"origin": origin})
        result = region_metrics(value_mask(reference, set(values)), value_mask(prediction, set(values)), spacing, parts)
        out[name] = {**result, "summary": mets_summary(result)}
    return out


#: ``brats2023``: the BraTS 2023 lesion-wise metrics script for BraTS-METS.
VERSION_2023 = (
    "rachitsaluja/BraTS-2023-Metrics eval.py @ 0e272e697a193474ed75cef99cf2de110cc52d37, challenge BraTS-MET "
    "(dilation_factor 1, lesion_volume_thresh 2 mm3), surface-distance 0.1"
)
REGIONS_2023 = {"WT": (1, 2, 3), "TC": (1, 3), "ET": (3,)}
HD95_PENALTY_2023_MM = 374.0


def _hd95_2023(reference: np.ndarray, prediction: np.ndarray, spacing) -> float:
    """The DeepMind surface-distance library's robust Hausdorff (95 %), as the 2023 script calls it."""
    import surface_distance

    added = not hasattr(np, "Inf")
    if added:  # surface-distance 0.1 still spells NumPy 1's np.Inf; lend it for the call
        np.Inf = np.inf
    try:
        with warnings.catch_warnings():  # it imports correlate from scipy.ndimage.filters (deprecated, same function)
            warnings.simplefilter("ignore", DeprecationWarning)
            distances = surface_distance.compute_surface_distances(
                reference.astype(bool), prediction.astype(bool), spacing
            )
            return float(surface_distance.compute_robust_hausdorff(distances, 95))
    finally:
        if added:
            del np.Inf


def region_metrics_2023(reference: np.ndarray, prediction: np.ndarray, spacing, dilation: int = 1,
                        volume_threshold: float = 2.0) -> dict[str, Any]:  # fmt: skip
    """One region of the 2023 script: reference lesions dilated once (18-neighbourhood) and merged where the
    dilations touch; every prediction component touching a lesion's dilation is pooled with it (one component
    may serve several); lesions of at most ``volume_threshold`` mm3 left out of the means and counts; false
    positives (components touching no dilated lesion) scored Dice 0, HD95 374."""
    voxel = float(np.prod(spacing))
    both_empty = not reference.any() and not prediction.any()
    legacy_dice = 1.0 if both_empty else dice(prediction, reference)
    legacy_hd95 = 0.0 if both_empty else _hd95_2023(reference, prediction, spacing)
    structure = generate_binary_structure(3, 2)
    from scipy.ndimage import binary_dilation

    ref_cc = cc3d.connected_components(reference.astype(np.uint8), connectivity=26)
    pred_cc = cc3d.connected_components(prediction.astype(np.uint8), connectivity=26)
    grown = cc3d.connected_components(
        binary_dilation(reference, structure=structure, iterations=dilation).astype(np.uint8), connectivity=26
    )
    merged = np.where(ref_cc > 0, grown, 0)
    lesions, pooled = [], set()
    pred_boxes = find_objects(pred_cc)
    for number, found in enumerate(find_objects(merged), start=1):  # each lesion's work on its own box
        if found is None:
            continue
        near = _widen(found, dilation + 1, merged.shape)  # room for the dilation: the same voxels as on the grid
        reach = binary_dilation(merged[near] == number, structure=structure, iterations=dilation)
        touching = sorted(int(c) for c in np.unique(pred_cc[near][reach]) if c)
        pooled.update(touching)
        spans = [found, *(pred_boxes[c - 1] for c in touching)]  # the box _crop would cut: distances unchanged
        box = _widen(tuple(slice(min(s.start for s in axis), max(s.stop for s in axis)) for axis in zip(*spans)),
                     2, merged.shape)  # fmt: skip
        cut_lesion = merged[box] == number
        cut_predicted = np.isin(pred_cc[box], touching) if touching else np.zeros_like(cut_lesion)
        hd = _hd95_2023(cut_lesion, cut_predicted, spacing)
        lesions.append({"gt_lesion_number": number, "gt_lesion_vol_mm3": float(cut_lesion.sum()) * voxel,
                        "predicted_lesion_numbers": touching, "dice": dice(cut_predicted, cut_lesion),
                        "hd95_raw": hd, "hd95": HD95_PENALTY_2023_MM if math.isinf(hd) else hd})  # fmt: skip
    false_positives = sorted(set(int(c) for c in np.unique(pred_cc) if c) - pooled)
    kept = [x for x in lesions if x["gt_lesion_vol_mm3"] > volume_threshold]
    count = len(kept) + len(false_positives)
    dice_score = sum(x["dice"] for x in kept) / count if count else 1.0
    hd_score = (sum(x["hd95"] for x in kept) + HD95_PENALTY_2023_MM * len(false_positives)) / count if count else 0.0
    target, result = reference.astype(bool), prediction.astype(bool)
    true_pos = int(np.logical_and(target, result).sum())
    false_pos, false_neg = int(result.sum()) - true_pos, int(target.sum()) - true_pos
    true_neg = int(np.count_nonzero(~target & ~result))
    sensitivity = 1.0 if both_empty else true_pos / (true_pos + false_neg + sys.float_info.min)
    return {
        "Num_TP": sum(1 for x in kept if x["predicted_lesion_numbers"]),
        "Num_FP": len(false_positives),
        "Num_FN": sum(1 for x in kept if not x["predicted_lesion_numbers"]),
        "Sensitivity": sensitivity,
        "Specificity": true_neg / (true_neg + false_pos + sys.float_info.min),
        "true_negatives": true_neg,
        "false_positive_voxels": false_pos,
        "Legacy_Dice": legacy_dice,
        "Legacy_HD95": HD95_PENALTY_2023_MM if math.isinf(legacy_hd95) else legacy_hd95,
        "GT_Complete_Volume": float(target.sum()) * voxel,
        "LesionWise_Score_Dice": dice_score,
        "LesionWise_Score_HD95": hd_score,
        "reference_lesions": lesions,
        "fp_prediction_components": false_positives,
    }


def evaluate_2023(reference: np.ndarray, prediction: np.ndarray, zooms) -> dict[str, dict[str, Any]]:
    """The 2023 script's WT, TC and ET results for two label arrays on one grid (``zooms`` in their axis
    order, as the script reads them from the header)."""
    from brainmets.schemes import value_mask

    spacing = tuple(float(z) for z in zooms)
    labelled = (reference != 0) | (prediction != 0)
    if labelled.any():  # the script works on the whole grid; its labelled box (with room to dilate) is the same
        box = _box(labelled, margin=4)
        outside = reference.size - reference[box].size  # the voxels cut away: true negatives for the specificity
        reference, prediction = reference[box], prediction[box]
    else:
        outside = 0
    out = {
        name: region_metrics_2023(value_mask(reference, set(values)), value_mask(prediction, set(values)), spacing)
        for name, values in REGIONS_2023.items()
    }
    for result in out.values():
        negatives, false_pos = result.pop("true_negatives") + outside, result.pop("false_positive_voxels")
        result["Specificity"] = negatives / (negatives + false_pos + sys.float_info.min)
    return out
