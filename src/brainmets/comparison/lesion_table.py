"""The comparison's lesion table: one row per reference and per predicted lesion of each BraTS region (the
metrics' 26-connected components, numbered as ``--out-tsv`` numbers them), with its physical size and place
(from the reference's full affine), how it overlaps the other side's lesions, panoptica's one-to-one match and
the parser's detection verdict.

Overlap groups are the connected parts of the graph linking every reference lesion to every predicted lesion it
shares a voxel with: ``matched`` (one and one), ``missed``, ``invented``, ``merged`` (one predicted lesion over
several reference ones), ``split`` (the reverse), ``merged and split``. Detection is ``brats-parse-metrics
mets``'s: a reference lesion is detected (``tp``) when panoptica matched it with Dice >= ``overlap_threshold``,
else ``fn``; an unmatched predicted lesion is ``fp``; a predicted lesion matched below the threshold is counted
neither way (n/a), as the parser does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import cc3d
import numpy as np
from scipy.ndimage import find_objects
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from brainmets.comparison.agreement import AGREEMENT
from brainmets.comparison.brats_metrics import REGIONS, overlap_counts
from brainmets.comparison.detection import DEFAULT_BINS_MM3, check_bins, size_bin
from brainmets.fields import Field
from brainmets.measurement.geometry import (
    AxialGrid,
    apply_affine,
    axial_diameters,
    bounding_box,
    max_pairwise_distance,
    surface_mesh,
    voxel_volume_mm3,
)

SIDES = {"reference": "a lesion of the reference", "prediction": "a lesion of the prediction"}
DETECTION = {
    "tp": "detected: a reference lesion matched with Dice >= the overlap threshold (0.1), or its predicted match",
    "fn": "a reference lesion not detected (unmatched, or matched with Dice below the threshold)",
    "fp": "a predicted lesion panoptica did not match",
}
#: Columns of the lesion table (``brainmets compare --out-lesions-tsv``, ``Comparison.lesion_table``).
COMPARISON_LESION_TABLE_FIELDS = [
    Field("region", None, "the BraTS region: et {3}, tc {1, 3}, wt {1, 2, 3}, rc {4}"),
    Field("side", None, "which segmentation the lesion belongs to", SIDES),
    Field(
        "lesion_id",
        None,
        "the lesion's 26-connected component number in the region, in scan order (the --out-tsv "
        "reference_instance / prediction_instance in brats2025)",
    ),
    Field(
        "match",
        None,
        "how the lesion's overlap group (lesions linked by shared voxels, either side) corresponds; merged and "
        "split apply to every lesion of the group",
        AGREEMENT,
    ),
    Field("overlapping_lesion_ids", None, "the other side's lesions sharing a voxel with it; n/a when none"),
    Field(
        "panoptica_match",
        None,
        "the other side's lesion panoptica's one-to-one matching paired it with; n/a when unmatched and in brats2023",
    ),
    Field(
        "dice",
        None,
        "Dice with the panoptica_match (the evaluator's sq_dsc); 0 when unmatched; n/a in brats2023",
    ),
    Field("group_dice", None, "Dice of the overlap group's reference lesions against its predicted ones; 0 alone"),
    Field(
        "detection",
        None,
        "the parser's verdict (overlap threshold 0.1); n/a for a predicted lesion matched below the threshold "
        "(the parser counts it neither way) and in brats2023",
        DETECTION,
    ),
    Field(
        "size_bin",
        None,
        "the detection-by-size bin of the lesion's evaluator volume (voxels x the product of the voxel sizes, "
        "as metrics.detection_by_size bins it); n/a below the first edge",
    ),
    Field("voxel_count", "voxel", "number of the lesion's voxels (on the reference's grid)"),
    Field("volume_mm3", "mm3", "voxel count x the voxel volume (|det| of the affine)"),
    Field("max_diameter_3d_mm", "mm", "largest distance between two points of the lesion's surface"),
    Field("axial_longest_diameter_mm", "mm", "longest diameter in a patient-axial plane (RANO-BM)"),
    Field("axial_perpendicular_diameter_mm", "mm", "longest chord perpendicular to it in that plane (RANO-BM)"),
    *[Field(f"centroid_{c}_mm", "mm", f"{c} of the lesion's centre, world (RAS) coordinates") for c in "xyz"],
]
COLUMNS = [f.name for f in COMPARISON_LESION_TABLE_FIELDS]


def components(reference: np.ndarray, prediction: np.ndarray) -> dict[str, dict[str, Any]]:
    """Per region (et, tc, wt, rc) the 26-connected lesions of two label arrays on one grid, cut to their
    labelled box (``origin``: its first voxel): what :func:`~brainmets.comparison.brats_metrics.evaluate`
    hands over, for ``brats2023``, which labels its regions otherwise."""
    from brainmets.schemes import value_mask

    box = bounding_box((reference != 0) | (prediction != 0))
    if box is not None:
        reference, prediction = reference[box], prediction[box]
    origin = (0, 0, 0) if box is None else tuple(s.start for s in box)
    out = {}
    for name, values in REGIONS.items():
        ref_cc, pred_cc = (
            cc3d.connected_components(value_mask(a, set(values)).astype(np.uint8), connectivity=26)
            for a in (reference, prediction)
        )
        out[name] = {"origin": origin, "ref_cc": ref_cc, "pred_cc": pred_cc}
    return out


def overlap_groups(n_ref: int, n_pred: int, pairs: Iterable[tuple[int, int]]) -> list[tuple[list[int], list[int]]]:
    """The overlap graph's connected parts as (reference ids, predicted ids), lesions numbered from 1."""
    pairs = list(pairs)
    rows = [i - 1 for i, _ in pairs]
    cols = [n_ref + j - 1 for _, j in pairs]
    size = n_ref + n_pred
    graph = coo_matrix((np.ones(len(pairs)), (rows, cols)), shape=(size, size))
    _count, labels = connected_components(graph, directed=False)
    out: dict[int, tuple[list[int], list[int]]] = {}
    for node, group in enumerate(labels):
        refs, preds = out.setdefault(int(group), ([], []))
        (refs if node < n_ref else preds).append(node + 1 if node < n_ref else node - n_ref + 1)
    return list(out.values())


def match_kind(n_refs: int, n_preds: int) -> str:
    """An overlap group's correspondence, in :data:`~brainmets.comparison.agreement.AGREEMENT`'s words."""
    if n_refs == n_preds == 1:
        return "matched"
    if not n_preds:
        return "missed"
    if not n_refs:
        return "invented"
    return "merged" if n_preds == 1 else "split" if n_refs == 1 else "merged and split"


def lesion_geometry(mask: np.ndarray, affine: np.ndarray, offset: Sequence[int], grid: AxialGrid) -> dict[str, Any]:
    """Voxel count, volume, diameters and world centroid of one lesion cut to its box (first voxel ``offset``
    of the grid of ``affine``)."""
    voxels = int(np.count_nonzero(mask))
    mesh = surface_mesh(mask, affine, tuple(int(o) for o in offset))
    axial = axial_diameters(mesh, grid)
    centroid = apply_affine(affine, np.argwhere(mask).mean(axis=0) + np.asarray(offset, float))
    return {
        "voxel_count": voxels,
        "volume_mm3": voxels * voxel_volume_mm3(affine),
        "max_diameter_3d_mm": max_pairwise_distance(mesh.vertices),
        "axial_longest_diameter_mm": axial.longest_mm,
        "axial_perpendicular_diameter_mm": axial.perpendicular_mm,
        **{f"centroid_{c}_mm": float(v) for c, v in zip("xyz", centroid)},
    }


def _side_geometry(
    labelled: np.ndarray, origin: Sequence[int], affine: np.ndarray, grid: AxialGrid, cache: dict
) -> dict[int, dict[str, Any]]:
    """Every lesion's :func:`lesion_geometry`, by id; a lesion already measured (the same voxels in another
    region) is read from ``cache``."""
    out = {}
    for k, box in enumerate(find_objects(labelled), start=1):
        if box is None:
            continue
        mask = labelled[box] == k
        offset = tuple(o + s.start for o, s in zip(origin, box))
        key = (offset, mask.shape, np.packbits(mask).tobytes())
        if key not in cache:
            cache[key] = lesion_geometry(mask, affine, offset, grid)
        out[k] = cache[key]
    return out


def region_rows(
    region: str,
    parts: Mapping[str, Any],
    affine: np.ndarray,
    grid: AxialGrid,
    zooms: Sequence[float],
    edges: Sequence[float],
    result: Mapping[str, Any] | None = None,
    overlap_threshold: float = 0.1,
    cache: dict | None = None,
) -> list[dict[str, Any]]:
    """One region's rows: its reference lesions, then its predicted ones, each by id. ``result``: the region's
    ``brats2025`` result (panoptica's matches and Dice); None for ``brats2023`` (those columns n/a)."""
    ref_cc, pred_cc, origin = parts["ref_cc"], parts["pred_cc"], parts["origin"]
    cache = {} if cache is None else cache
    geometry = {
        side: _side_geometry(labelled, origin, affine, grid, cache.setdefault(side, {}))
        for side, labelled in (("reference", ref_cc), ("prediction", pred_cc))
    }
    n_ref, n_pred = len(geometry["reference"]), len(geometry["prediction"])
    shared = overlap_counts(ref_cc, pred_cc)
    evaluator_voxel_mm3 = float(np.prod(tuple(float(z) for z in zooms)[::-1]))  # the evaluator's volumes
    partners: dict[str, dict[int, list[int]]] = {"reference": {}, "prediction": {}}
    for i, j in sorted(shared):
        partners["reference"].setdefault(i, []).append(j)
        partners["prediction"].setdefault(j, []).append(i)
    group_of: dict[tuple[str, int], tuple[str, float]] = {}
    for refs, preds in overlap_groups(n_ref, n_pred, shared):
        together = sum(shared.get((i, j), 0) for i in refs for j in preds)
        total = sum(geometry["reference"][i]["voxel_count"] for i in refs)
        total += sum(geometry["prediction"][j]["voxel_count"] for j in preds)
        value = (match_kind(len(refs), len(preds)), 2.0 * together / total if total else 0.0)
        group_of.update({("reference", i): value for i in refs} | {("prediction", j): value for j in preds})
    counterpart: dict[tuple[str, int], tuple[int, float]] = {}
    if result is not None:
        for i, lesion in enumerate(result["reference_instances"], start=1):
            if lesion["is_matched"]:
                j, dice = lesion["prediction_instance"], lesion["sq_dsc"]
                counterpart[("reference", i)], counterpart[("prediction", j)] = (j, dice), (i, dice)
    rows = []
    for side in ("reference", "prediction"):
        for k, measured in geometry[side].items():
            kind, group_dice = group_of[(side, k)]
            match, dice = counterpart.get((side, k), (None, 0.0))
            detected = match is not None and dice >= overlap_threshold
            if result is None:
                detection, dice = None, None
            elif side == "reference":
                detection = "tp" if detected else "fn"
            else:
                detection = "fp" if match is None else "tp" if detected else None
            rows.append({
                "region": region, "side": side, "lesion_id": k, "match": kind,
                "overlapping_lesion_ids": partners[side].get(k), "panoptica_match": match, "dice": dice,
                "group_dice": group_dice, "detection": detection,
                "size_bin": size_bin(float(measured["voxel_count"]) * evaluator_voxel_mm3, edges), **measured,
            })  # fmt: skip
    return rows


def lesion_table(
    parts: Mapping[str, Mapping[str, Any]],
    affine: np.ndarray,
    shape: Sequence[int],
    zooms: Sequence[float],
    regions: Mapping[str, Mapping[str, Any]] | None = None,
    edges_mm3: Iterable[Any] = DEFAULT_BINS_MM3,
    overlap_threshold: float = 0.1,
) -> list[dict[str, Any]]:
    """Every region's :func:`region_rows` from its components (``parts``: :func:`components` or what
    ``evaluate`` hands over) on the grid of ``affine`` and ``shape``; ``regions``: the ``brats2025`` results
    (None for ``brats2023``); ``zooms`` as the evaluator was given them (for the size bins' volumes)."""
    edges = check_bins(edges_mm3)
    grid = AxialGrid.from_affine(np.asarray(affine, float), tuple(shape))
    cache: dict = {}
    rows = []
    for region, region_parts in parts.items():
        result = None if regions is None else regions[region]
        rows += region_rows(region, region_parts, affine, grid, zooms, edges, result, overlap_threshold, cache)
    return rows
