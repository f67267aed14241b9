"""Detection by lesion size (``brats2025``): reference lesions binned by their reference volume, false positives
(unmatched predicted lesions) by their predicted volume, with recall, false positives and lesion-wise F1 per bin.

The definitions are ``brats-parse-metrics mets``'s: a reference lesion is detected when it is matched and its
Dice (``sq_dsc``) is ``>= overlap_threshold``; a matched lesion below the threshold is missed and its prediction
is no false positive; F1 = 2 TP / (2 TP + FN + FP). The parser itself does not bin false positives (its
``small`` and ``large`` rows both count every one); here each is counted once, in its own volume's bin.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from brainmets.errors import ConfigError
from brainmets.fields import Field, cell_number

#: The default bin edges, mm3: [0, 20), [20, 100), [100, 1000), >= 1000.
DEFAULT_BINS_MM3 = (0.0, 20.0, 100.0, 1000.0)
#: A bin's keys, in the document's order.
BIN_KEYS = ("min_volume_mm3", "max_volume_mm3", "reference_lesions", "detected", "missed", "recall",
            "false_positives", "f1")  # fmt: skip


def check_bins(edges_mm3: Iterable[Any], source: str = "detection bins") -> tuple[float, ...]:
    """The bins' lower edges as floats: at least one, finite, non-negative and strictly ascending (the last bin
    is open: ``>= edges[-1]``); :class:`ConfigError` naming ``source`` otherwise."""
    try:
        if isinstance(edges_mm3, str | bytes):
            raise TypeError
        values = list(edges_mm3)
        if any(isinstance(e, bool | str | bytes) for e in values):
            raise TypeError
        edges = tuple(float(e) for e in values)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: {edges_mm3!r} is not a list of numbers (lower edges, mm3)") from None
    if not edges:
        raise ConfigError(f"{source}: at least one edge is needed (0: one bin of every lesion)")
    if not all(math.isfinite(e) and e >= 0 for e in edges):
        raise ConfigError(f"{source}: {list(edges)}: every edge must be a finite, non-negative volume (mm3)")
    if any(b <= a for a, b in zip(edges, edges[1:])):
        raise ConfigError(f"{source}: {list(edges)}: the edges must be strictly ascending")
    return edges


def parse_bins(text: str) -> tuple[float, ...]:
    """``--detection-bins-mm3`` (``"0,20,100,1000"``) as checked edges."""
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise ConfigError(f"--detection-bins-mm3: {text!r} is not a comma-separated list of numbers") from None
    return check_bins(values, "--detection-bins-mm3")


def _bin(volume: float, edges: Sequence[float]) -> int | None:
    """The index of the bin ``volume`` falls in, None below the first edge."""
    index = None
    for k, edge in enumerate(edges):
        if volume >= edge:
            index = k
    return index


def detection_by_size(
    result: Mapping[str, Any], edges_mm3: Iterable[Any] = DEFAULT_BINS_MM3, overlap_threshold: float = 0.1
) -> list[dict[str, Any]]:
    """One region's detection per size bin, from its ``brats2025`` result (``reference_instances`` and
    ``prediction_instances_unmatched_volume``). Lesions below the first edge are in no bin."""
    edges = check_bins(edges_mm3)
    bins = [
        {"min_volume_mm3": low, "max_volume_mm3": high, "reference_lesions": 0, "detected": 0, "false_positives": 0}
        for low, high in zip(edges, [*edges[1:], None])
    ]
    for lesion in result["reference_instances"]:
        k = _bin(lesion["volume"], edges)
        if k is not None:
            bins[k]["reference_lesions"] += 1
            bins[k]["detected"] += bool(lesion["is_matched"] and lesion["sq_dsc"] >= overlap_threshold)
    for volume in result["prediction_instances_unmatched_volume"]:
        k = _bin(volume, edges)
        if k is not None:
            bins[k]["false_positives"] += 1
    out = []
    for entry in bins:
        entry |= _rates(entry["detected"], entry["reference_lesions"], entry["false_positives"])
        out.append({name: entry[name] for name in BIN_KEYS})
    return out


def _rates(detected: int, reference_lesions: int, false_positives: int) -> dict[str, int | float | None]:
    """A bin's missed count, recall and lesion-wise F1 = 2 TP / (2 TP + FN + FP) from its counts (None when
    undefined)."""
    missed = reference_lesions - detected
    denominator = 2 * detected + missed + false_positives
    return {"missed": missed, "recall": detected / reference_lesions if reference_lesions else None,
            "f1": 2 * detected / denominator if denominator else None}  # fmt: skip


def detection_document(
    regions: Mapping[str, Mapping[str, Any]], edges_mm3: Iterable[Any] = DEFAULT_BINS_MM3
) -> dict[str, list[dict[str, Any]]]:
    """Every region's :func:`detection_by_size` (the comparison document's ``metrics.detection_by_size``)."""
    edges = check_bins(edges_mm3)
    return {region: detection_by_size(result, edges) for region, result in regions.items()}


def bin_label(entry: Mapping[str, Any]) -> str:
    """``"[20, 100)"`` or ``">= 1000"``: a bin's name in tables."""
    low, high = entry["min_volume_mm3"], entry["max_volume_mm3"]
    low_text = f"{low:g}"
    return f">= {low_text}" if high is None else f"[{low_text}, {high:g})"


def size_bin(volume_mm3: float, edges_mm3: Sequence[float]) -> str | None:
    """The :func:`bin_label` of the bin ``volume_mm3`` falls in (edges as :func:`check_bins` returns them),
    None below the first edge: the bin :func:`detection_by_size` counts the lesion in."""
    k = _bin(volume_mm3, edges_mm3)
    if k is None:
        return None
    high = edges_mm3[k + 1] if k + 1 < len(edges_mm3) else None
    return bin_label({"min_volume_mm3": edges_mm3[k], "max_volume_mm3": high})


#: Regions of the cohort's comparison_detection table, as the comparison document names them.
REGIONS = {"et": "enhancing tumour", "tc": "tumour core", "wt": "whole tumour", "rc": "resection cavity"}
#: Columns of the cohort's comparison_detection table (one row per compared study, region and size bin; only
#: brats2025 comparisons have rows). Pooled over studies they add up: sum the counts, then divide (see
#: :func:`pooled_detection`); averaging the rows' recall or F1 would weigh a study with one lesion as one with 20.
COMPARISON_DETECTION_FIELDS = [
    Field("region", None, "the BraTS-METS region", REGIONS),
    Field(
        "bin",
        None,
        "the size bin: [low, high) or >= low, mm3 (reference volume for recall, predicted for false positives)",
    ),
    Field("min_volume_mm3", "mm3", "the bin's lower edge (included)"),
    Field("max_volume_mm3", "mm3", "the bin's upper edge (excluded); n/a for the open last bin"),
    Field("reference_lesions", "count", "reference lesions whose volume falls in the bin"),
    Field("detected", "count", "of them, matched with Dice >= 0.1"),
    Field("missed", "count", "of them, not detected (reference_lesions - detected)"),
    Field("recall", None, "detected / reference_lesions; n/a without reference lesions"),
    Field("false_positives", "count", "unmatched predicted lesions whose volume falls in the bin"),
    Field("f1", None, "lesion-wise F1 = 2 detected / (2 detected + missed + false_positives); n/a when all are 0"),
]


def detection_rows(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A comparison document's comparison_detection rows (without the study's keys): one per region and bin of
    its ``metrics.detection_by_size`` (regions in REGIONS' order, bins ascending), none for a ``brats2023`` document (it has no such key)."""
    table = document["metrics"].get("detection_by_size") or {}
    regions = sorted(table, key=lambda region: _pooled_order((region, 0.0, None)))  # et, tc, wt, rc
    return [{"region": region, "bin": bin_label(entry), **entry} for region in regions for entry in table[region]]


def pooled_detection(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The cohort's detection per region and bin from comparison_detection rows (numbers, or their TSV text):
    counts summed over the studies, recall and F1 recomputed from the sums (not averaged), with the 95 % Wilson
    interval of the recall; ``studies``: how many rows were pooled. Regions in REGIONS' order, bins ascending."""
    pooled: dict[tuple[str, float, float | None], dict[str, Any]] = {}
    for row in rows:
        low, high = cell_number(row["min_volume_mm3"]), cell_number(row["max_volume_mm3"])
        entry = pooled.setdefault(
            (str(row["region"]), low, high),
            {"region": str(row["region"]), "bin": bin_label({"min_volume_mm3": low, "max_volume_mm3": high}),
             "min_volume_mm3": low, "max_volume_mm3": high, "studies": 0, "reference_lesions": 0, "detected": 0,
             "false_positives": 0},
        )  # fmt: skip
        entry["studies"] += 1
        for name in ("reference_lesions", "detected", "false_positives"):
            entry[name] += int(cell_number(row[name]) or 0)
    out = []
    for key in sorted(pooled, key=_pooled_order):
        entry = pooled[key]
        low_ci, high_ci = wilson_interval(entry["detected"], entry["reference_lesions"])
        rates = _rates(entry["detected"], entry["reference_lesions"], entry["false_positives"])
        out.append({**entry, **rates, "recall_ci_low": low_ci, "recall_ci_high": high_ci})
    return out


def _pooled_order(key: tuple[str, float, float | None]) -> tuple[int, str, float, float]:
    """Regions in REGIONS' order (others after them, by name), then bins by their edges, the open one last."""
    region, low, high = key
    rank = list(REGIONS).index(region) if region in REGIONS else len(REGIONS)
    return rank, region, low, math.inf if high is None else high


def wilson_interval(successes: int, trials: int) -> tuple[float | None, float | None]:
    """The 95 % Wilson score interval of a proportion (scipy's): unlike the normal approximation it stays in
    [0, 1] and is not empty at 0 / n or n / n, which small bins often are. (None, None) without trials."""
    from scipy.stats import binomtest

    if trials <= 0:
        return None, None
    interval = binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="wilson")
    return float(interval.low), float(interval.high)
