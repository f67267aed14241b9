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

#: The default bin edges, mm3: [0, 20), [20, 100), [100, 1000), >= 1000.
DEFAULT_BINS_MM3 = (0.0, 20.0, 100.0, 1000.0)


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
        tp, n, fp = entry["detected"], entry["reference_lesions"], entry["false_positives"]
        fn = n - tp
        out.append({
            "min_volume_mm3": entry["min_volume_mm3"], "max_volume_mm3": entry["max_volume_mm3"],
            "reference_lesions": n, "detected": tp, "missed": fn, "recall": tp / n if n else None,
            "false_positives": fp, "f1": 2 * tp / (2 * tp + fn + fp) if 2 * tp + fn + fp else None,
        })  # fmt: skip
    return out


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
