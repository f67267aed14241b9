"""The report's "detection rate by size" figure: per region, the cohort's recall per lesion size bin (pooled over
the brats2025 comparisons: detected / reference lesions, with the counts and a 95 % Wilson interval) above its
false positives per bin. Its own module: :mod:`brainmets.figures.pictures` is near the size limit."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from brainmets.comparison.detection import REGIONS, pooled_detection
from brainmets.figures.pictures import _figure, _save

#: Regions always drawn; others (rc) only when they have a reference lesion or a false positive.
SHOWN_REGIONS = ("et", "tc", "wt")
RECALL_COLOUR, FALSE_POSITIVE_COLOUR = "#4a7ab5", "#c62828"
NO_COMPARISON = (
    "no brats2025 comparison in this cohort:\ndetection by size needs `brainmets compare --metrics brats2025`"
)


def detection_by_size_plot(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Draw the figure from comparison_detection rows (the cohort table's, as numbers or TSV text) and return
    the pooled numbers it shows (:func:`brainmets.comparison.detection.pooled_detection`: one entry per region
    and bin), so that what is drawn can be checked. Without rows the figure says there is nothing to show."""
    rows = list(rows)
    pooled = pooled_detection(rows)
    studies = len({(r.get("participant_id"), r.get("session_id")) for r in rows})
    present = list(dict.fromkeys(e["region"] for e in pooled if e["reference_lesions"] or e["false_positives"]))
    regions = [*SHOWN_REGIONS, *(r for r in present if r not in SHOWN_REGIONS)]
    if not pooled:
        figure = _figure(7, 2.6)
        axis = figure.add_subplot(1, 1, 1)
        axis.text(0.5, 0.5, NO_COMPARISON, transform=axis.transAxes, ha="center", va="center", fontsize=10)
        axis.set_axis_off()
        axis.set_title("detection rate by lesion size")
        figure.tight_layout()
        _save(figure, path)
        return pooled
    figure = _figure(3.3 * len(regions), 6.4)
    for column, region in enumerate(regions, start=1):
        entries = [e for e in pooled if e["region"] == region]
        top = figure.add_subplot(2, len(regions), column)
        bottom = figure.add_subplot(2, len(regions), len(regions) + column)
        _recall_panel(top, entries, region)
        _false_positive_panel(bottom, entries)
        if column == 1:
            top.set_ylabel("recall (detected / reference lesions)")
            bottom.set_ylabel("false positives (count)")
    figure.suptitle(
        f"detection rate by lesion size: {studies} brats2025 {'comparison' if studies == 1 else 'comparisons'}, "
        "pooled\nerror bars: 95 % Wilson intervals; detected = matched with Dice >= 0.1",
        fontsize=10,
    )
    figure.tight_layout()
    _save(figure, path)
    return pooled


def _recall_panel(axis, entries: list[dict[str, Any]], region: str) -> None:
    """Recall per bin with its Wilson interval and "detected/reference" written above; "n = 0" for an empty bin."""
    axis.set_title(f"{region.upper()}: {REGIONS.get(region, region)}", fontsize=9)
    axis.set_ylim(0, 1.18)
    if not entries:
        axis.text(0.5, 0.5, "no bins", transform=axis.transAxes, ha="center", color="#666666")
        return
    for x, entry in enumerate(entries):
        n = entry["reference_lesions"]
        if not n:
            axis.text(x, 0.03, "n = 0", ha="center", va="bottom", fontsize=8, color="#666666")
            continue
        recall, low, high = entry["recall"], entry["recall_ci_low"], entry["recall_ci_high"]
        axis.bar(x, recall, color=RECALL_COLOUR, width=0.7)
        axis.errorbar(x, recall, yerr=[[recall - low], [high - recall]], color="#222222", capsize=3, linewidth=1)
        axis.text(x, high + 0.02, f"{entry['detected']}/{n}", ha="center", va="bottom", fontsize=8)
    _bin_axis(axis, entries)
    axis.set_xlabel("reference lesion volume (mm³)", fontsize=8)


def _false_positive_panel(axis, entries: list[dict[str, Any]]) -> None:
    """False positives per bin (binned by the predicted lesion's volume), the count written above each bar."""
    from matplotlib.ticker import MaxNLocator  # matplotlib only when drawing (the CLI starts faster)

    counts = [e["false_positives"] for e in entries]
    axis.bar(range(len(entries)), counts, color=FALSE_POSITIVE_COLOUR, width=0.7)
    for x, value in enumerate(counts):
        axis.text(x, value, str(value), ha="center", va="bottom", fontsize=8)
    axis.set_ylim(0, max([*counts, 1]) * 1.2)
    axis.yaxis.set_major_locator(MaxNLocator(integer=True))
    _bin_axis(axis, entries)
    axis.set_xlabel("predicted lesion volume (mm³)", fontsize=8)


def _bin_axis(axis, entries: list[dict[str, Any]]) -> None:
    """The bins in ascending order, labelled as in the table."""
    axis.set_xticks(range(len(entries)), [e["bin"] for e in entries], fontsize=7, rotation=20)
    axis.set_xlim(-0.6, len(entries) - 0.4)
