"""Pictures of a cohort (matplotlib's Agg canvas, no display needed): size distribution, volume against count,
locations, indication frequencies, follow-up spider and swimmer plots, model-vs-reference agreement, and the
picture that stands in for a failed study's. The per-study picture is :mod:`brainmets.figures.study_picture`.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from brainmets.fields import cell_number
from brainmets.figures.lesion_panel import font


def failure_figure(path: str | Path, title: str, message: str) -> None:
    """A picture that says a study failed, and why (so the report shows it)."""
    from PIL import Image, ImageDraw

    picture = Image.new("RGB", (640, 140), "white")
    draw = ImageDraw.Draw(picture)
    draw.text((10, 8), title, fill="black", font=font(16))
    draw.multiline_text((10, 40), _wrap(message, 80), fill="#b00020", font=font(12), spacing=4)
    picture.save(path, format="PNG")


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)[:6])


def _save(figure, path: str | Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    figure.savefig(path, format="png")


# ---- cohort plots -------------------------------------------------------------------------------------


def _figure(width: float, height: float, dpi: int = 90):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=dpi)


def _session_key(session: str) -> tuple:
    """Sessions in time order as their labels sort naturally (ses-2 before ses-10); n/a first."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", session) if part)


def chosen_sessions(studies: list[dict[str, Any]], which: str = "latest") -> set[tuple[str, str]]:
    """The (participant_id, session_id) pairs a cohort figure shows: every study (``all``), or one session per
    patient, its ``latest`` or ``baseline`` (so that a patient followed over four sessions counts once)."""
    pairs = [(str(s.get("participant_id")), str(s.get("session_id") or "n/a")) for s in studies]
    if which == "all":
        return set(pairs)
    by_subject: dict[str, list[str]] = {}
    for subject, session in pairs:
        by_subject.setdefault(subject, []).append(session)
    pick = max if which == "latest" else min
    return {(subject, pick(sessions, key=_session_key)) for subject, sessions in by_subject.items()}


def of_sessions(rows: list[dict[str, Any]], chosen: set[tuple[str, str]]) -> list[dict[str, Any]]:
    """The rows (lesions, studies, indications) of the chosen sessions."""
    return [r for r in rows if (str(r.get("participant_id")), str(r.get("session_id") or "n/a")) in chosen]


def size_distribution(path, lesions: list[dict[str, Any]], scope: str = "") -> None:
    """Histogram of the lesions' maximum 3D diameters, with the RANO-BM 10 mm line."""
    diameters = [d for d in (cell_number(r.get("max_diameter_3d_mm")) for r in lesions) if d is not None]
    figure = _figure(6, 3.5)
    axis = figure.add_subplot(1, 1, 1)
    if diameters:
        axis.hist(diameters, bins=np.arange(0, max(60, max(diameters) + 5), 2.5), color="#4a7ab5")
    axis.axvline(10, color="#b00020", linestyle="--", linewidth=1)
    axis.text(10.5, axis.get_ylim()[1] * 0.9, "10 mm", color="#b00020", fontsize=8)
    axis.set_xlabel("maximum 3D diameter (mm)")
    axis.set_ylabel("lesions")
    axis.set_title(f"lesion size ({len(diameters)} lesions{scope})")
    figure.tight_layout()
    _save(figure, path)


def volume_against_count(path, studies: list[dict[str, Any]], scope: str = "") -> None:
    """Cumulative tumour volume against lesion count, one point per study."""
    points = [(cell_number(s.get("lesion_count")), cell_number(s.get("cumulative_tumor_volume_ml"))) for s in studies]
    points = [(c, v) for c, v in points if c is not None and v is not None]
    figure = _figure(6, 3.5)
    axis = figure.add_subplot(1, 1, 1)
    if points:
        axis.scatter(*zip(*points), color="#4a7ab5", s=18)
    axis.set_ylim(0, max(17.0, axis.get_ylim()[1]))  # the 15 mL line and its label always inside the axes
    axis.axhline(15, color="#888888", linestyle=":", linewidth=1)
    axis.text(axis.get_xlim()[0], 15.5, " 15 mL", color="#666666", fontsize=8)
    axis.set_xlabel("lesion count")
    axis.set_ylabel("cumulative tumour volume (mL)")
    axis.set_title(f"tumour burden ({len(points)} studies{scope})")
    figure.tight_layout()
    _save(figure, path)


def locations(path, lesions: list[dict[str, Any]], scope: str = "") -> None:
    """How many lesions are supratentorial, infratentorial, mixed or not located."""
    counts = Counter(r.get("location") if r.get("location") not in (None, "n/a") else "not located" for r in lesions)
    order = ["supratentorial", "infratentorial", "mixed", "not located"]
    figure = _figure(6, 3.2)
    axis = figure.add_subplot(1, 1, 1)
    axis.bar(order, [counts.get(k, 0) for k in order], color=["#4a7ab5", "#d98b2b", "#8e5bb5", "#aaaaaa"])
    axis.set_ylabel("lesions")
    axis.set_title(f"lesion location ({len(lesions)} lesions{scope})")
    figure.tight_layout()
    _save(figure, path)


def indication_frequencies(path, rows: list[dict[str, Any]], modalities: tuple[str, ...], scope: str = "") -> None:
    """Per modality, how many studies Table 1 marks indicated / not / undetermined; per criterion, how often met."""
    figure = _figure(9, 4.2)
    left, right = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    bottom = np.zeros(len(modalities))
    for status, color in (("indicated", "#2e8b57"), ("not_indicated", "#bbbbbb"), ("undetermined", "#e0a030")):
        values = np.array([sum(r.get(f"{m}_status") == status for r in rows) for m in modalities], float)
        left.barh(modalities, values, left=bottom, color=color, label=status.replace("_", " "))
        bottom += values
    left.legend(fontsize=7, loc="lower right")
    left.set_xlabel("studies")
    left.set_title(f"Table 1 status by modality ({len(rows)} studies{scope})", fontsize=9)
    criteria = Counter(c for r in rows for c in _listed(r.get("criteria_met")))
    names = sorted(criteria, key=lambda c: (-criteria[c], c))[:20]
    right.barh(names[::-1], [criteria[n] for n in names[::-1]], color="#2e8b57")
    right.set_xlabel("studies where the criterion holds")
    right.set_title("criteria met")
    right.tick_params(axis="y", labelsize=7)
    figure.tight_layout()
    _save(figure, path)


def _listed(value: Any) -> list[str]:
    if isinstance(value, list):
        return value
    if not value or value in ("none", "n/a"):
        return []
    return str(value).split(",")


RESPONSE_COLOURS = {"baseline": "#888888", "CR": "#2e7d32", "PR": "#7cb342", "SD": "#4a7ab5", "PD": "#c62828",
                    "NE": "#bdbdbd"}  # fmt: skip


def spider_plot(path, document: dict[str, Any]) -> None:
    """One subject's targets over time: the percent change of each target's longest diameter and of their
    sum from its baseline (a new one after a resection, marked), with the RANO-BM -30 % (PR) and +20 % (PD,
    from the nadir) lines."""
    responses = document["rano_bm"]
    days = [r["days_from_baseline"] for r in responses]
    figure = _figure(6, 3.5)
    axis = figure.add_subplot(1, 1, 1)
    first = responses[0]["session"] if responses else None
    segments: dict[str, list[int]] = {}  # baseline session -> the indices of its scans
    for k, r in enumerate(responses):
        segments.setdefault(r.get("baseline_session") or first, []).append(k)
    lengths: dict[tuple[str, int], float] = {}
    for row in document["lesions"]:
        if row["axial_longest_diameter_mm"] is not None:
            lengths[row["session"], row["track_id"]] = row["axial_longest_diameter_mm"]
    any_targets = False
    for n, (baseline, scans) in enumerate(segments.items()):
        targets = responses[scans[0]]["target_track_ids"]
        any_targets |= bool(targets)
        x = [days[k] for k in scans]
        if n:
            axis.axvline(x[0], color="#888888", linestyle="--", linewidth=1)
            axis.text(x[0], 0.98, f" new baseline (session {baseline})", transform=axis.get_xaxis_transform(),
                      fontsize=7, va="top", color="#555555")  # fmt: skip
        for track in targets:
            base = lengths.get((baseline, track))
            if base:
                values = [100 * (lengths.get((responses[k]["session"], track), 0.0) / base - 1) for k in scans]
                axis.plot(
                    x, values, color="#9e9e9e", linewidth=1, marker=".", label=f"target {track}" if not n else None
                )
        if targets:
            sums = [responses[k]["percent_change_from_baseline"] or 0.0 for k in scans]
            axis.plot(x, sums, color="#222222", linewidth=2, marker="o", label="sum" if not n else None)
            for day, y, k in zip(x, sums, scans):
                axis.annotate(responses[k]["response"], (day, y), textcoords="offset points", xytext=(0, 6),
                              ha="center", fontsize=7, color=RESPONSE_COLOURS.get(responses[k]["response"], "#222222"))  # fmt: skip
    if not any_targets:
        axis.text(0.5, 0.5, "no measurable target at baseline", transform=axis.transAxes, ha="center")
    axis.axhline(-30, color="#7cb342", linestyle=":", linewidth=1)
    axis.axhline(20, color="#c62828", linestyle=":", linewidth=1)
    axis.text(days[-1] if days else 0, -29, "-30 %: PR (from baseline)", color="#558b2f", fontsize=7, ha="right")
    axis.text(days[-1] if days else 0, 21, "+20 %: PD (from the nadir)", color="#c62828", fontsize=7, ha="right")
    axis.axhline(0, color="#cccccc", linewidth=0.8)
    axis.set_xlabel("days from the first session")
    axis.set_ylabel("change from baseline (%)")
    axis.set_title(f"sub-{document['subject']}: target lesions (RANO-BM)")
    if any_targets:
        axis.legend(fontsize=7, loc="best")
    figure.tight_layout()
    _save(figure, path)


def swimmer_plot(path, responses: list[dict[str, Any]]) -> None:
    """The cohort's follow-up: one lane per subject, time on follow-up, the response at each scan."""
    lanes: dict[str, list[tuple[float, str]]] = {}
    for row in responses:
        day = cell_number(row.get("days_from_baseline"))
        if day is not None:
            lanes.setdefault(str(row.get("participant_id")), []).append((day, str(row.get("response"))))
    figure = _figure(7, max(2.4, 0.45 * len(lanes) + 1.4))
    axis = figure.add_subplot(1, 1, 1)
    for k, (_, scans) in enumerate(sorted(lanes.items())):
        end = max(d for d, _ in scans)
        axis.barh(k, end, color="#e0e0e0", height=0.5)
        for day, response in scans:
            axis.scatter(day, k, color=RESPONSE_COLOURS.get(response, "#222222"), s=30, zorder=3)
    axis.set_yticks(range(len(lanes)), list(sorted(lanes)) or [])
    for response, colour in RESPONSE_COLOURS.items():
        axis.scatter([], [], color=colour, label=response, s=30)
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    axis.set_xlabel("days from baseline")
    axis.set_title(f"follow-up ({len(lanes)} subjects): RANO-BM response at each scan")
    if not lanes:
        axis.text(0.5, 0.5, "no subject with dated follow-up sessions", transform=axis.transAxes, ha="center")
    figure.tight_layout()
    _save(figure, path)


def comparison_plot(path, rows: list[dict[str, Any]]) -> None:
    """Predictions against references: each lesion group's Dice against its reference volume, and Bland-Altman
    plots of the matched lesions' volumes and maximum 3D diameters (difference against mean, bias, 95 % limits)."""
    figure = _figure(11, 3.5)
    left = figure.add_subplot(1, 3, 1)
    points = [(cell_number(r.get("reference_volume_ml")), cell_number(r.get("dice")), r.get("agreement")) for r in rows]
    for kind, colour in (("matched", "#4a7ab5"), ("missed", "#c62828"), ("merged", "#f9a825"), ("split", "#7cb342")):
        chosen = [(v, d) for v, d, k in points if k == kind and v is not None and d is not None and v > 0]
        if chosen:
            left.scatter(*zip(*chosen), s=14, color=colour, label=kind)
    left.set_xscale("log")
    left.set_xlabel("reference lesion volume (mL)")
    left.set_ylabel("Dice")
    left.set_ylim(-0.05, 1.05)
    left.set_title(f"per lesion ({sum(1 for p in points if p[2] == 'invented')} invented)")
    if any(k != "invented" for _, _, k in points):
        left.legend(fontsize=7)
    for k, (name, unit) in enumerate((("volume_ml", "mL"), ("max_diameter_3d_mm", "mm")), start=2):
        _bland_altman(figure.add_subplot(1, 3, k), rows, name, unit)
    figure.tight_layout()
    _save(figure, path)


def _bland_altman(axis, rows: list[dict[str, Any]], name: str, unit: str) -> None:
    """Prediction minus reference against their mean for the matched lesions, with the bias and 95 % limits."""
    pairs = [(cell_number(r.get(f"reference_{name}")), cell_number(r.get(f"prediction_{name}"))) for r in rows
             if r.get("agreement") == "matched"]  # fmt: skip
    pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
    if pairs:
        means = [(a + b) / 2 for a, b in pairs]
        diffs = [b - a for a, b in pairs]
        bias, sd = float(np.mean(diffs)), float(np.std(diffs, ddof=1)) if len(diffs) > 1 else 0.0
        axis.scatter(means, diffs, s=14, color="#4a7ab5")
        for level, style in ((bias, "-"), (bias + 1.96 * sd, ":"), (bias - 1.96 * sd, ":")):
            axis.axhline(level, color="#666666", linestyle=style, linewidth=1)
    else:
        axis.text(0.5, 0.5, "no matched lesion", transform=axis.transAxes, ha="center")
    label = name.removesuffix("_ml").removesuffix("_mm").replace("_", " ")
    axis.set_xlabel(f"mean {label} ({unit})")
    axis.set_ylabel(f"prediction - reference ({unit})")
    axis.set_title(f"Bland-Altman: {label}")
