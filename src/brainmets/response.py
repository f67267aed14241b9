"""RANO-BM response over a timeline (Lin et al., Lancet Oncol 2015;16:e270-8), and a volumetric response
beside it.

Targets are fixed at baseline: up to ``max_target_lesions`` measurable lesions (longest axial diameter
>= 10 mm, perpendicular >= 5 mm), largest first. At each follow-up the sum of their longest axial diameters
is taken (a resolved target counts 0, the fragments of a split target add up, a lesion that two targets
merged into counts once) and compared with the baseline and with the nadir (the smallest sum before this
scan). PD: the sum >= 20 % above the nadir and at least one target >= 5 mm larger than at the nadir, or an
unequivocal new lesion, or a worse clinical status. CR: every lesion gone, no new one. PR: the sum >= 30 %
below baseline. SD otherwise. CR and PR need a confirming scan >= 4 weeks later; increased steroids rule
CR and PR out. Slices thicker than 5 mm, or no measurable disease at baseline, make the response NE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .tracking import Track, represented


@dataclass(frozen=True)
class ResponseParameters:
    """The config's ``followup.rano_bm`` and ``followup.volumetric`` settings."""

    pr_decrease_percent: float = 30.0
    pd_increase_percent: float = 20.0
    pd_min_target_increase_mm: float = 5.0
    confirmation_min_days: float = 28.0
    max_slice_thickness_mm: float = 5.0
    new_lesion_min_diameter_mm: float = 5.0
    volumetric_pr_decrease_percent: float = 65.0
    volumetric_pd_increase_percent: float = 73.0

    @classmethod
    def from_config(cls, rano: dict[str, Any], volumetric: dict[str, Any]) -> ResponseParameters:
        values = {k: float(v) for k, v in rano.items() if k in cls.__dataclass_fields__}
        values.update({f"volumetric_{k}": float(v) for k, v in volumetric.items()})
        return cls(**values)


@dataclass
class Scan:
    """What the response reads of one session."""

    date_days: float  # days from baseline
    slice_thickness_mm: float
    lesions: dict[int, dict[str, Any]]  # lesion id -> its features row
    entries: list[dict[str, Any]]  # the tracking entries of the session
    steroids: str | None
    clinical_status: str | None
    immunotherapy_before: bool  # immunotherapy given after an earlier scan


def _percent(value: float, reference: float) -> float | None:
    return None if reference == 0 else 100.0 * (value - reference) / reference


def _measures(scan: Scan, index: int, tracks: dict[int, Track], targets: set[int], key: str):
    """(sum over the targets, per-target values) of a lesion measure at one scan."""
    total, per_target = 0.0, dict.fromkeys(targets, 0.0)
    for e in scan.entries:
        if e["lesion_id"] is None:
            continue
        value = float(scan.lesions[e["lesion_id"]][key] or 0.0)
        stands_for = represented(tracks, e["track_id"], index) & targets
        if stands_for:
            total += value
        for t in stands_for:
            per_target[t] += value
    return total, per_target


def _new_lesions(scan: Scan, params: ResponseParameters) -> list[int]:
    return [
        e["track_id"]
        for e in scan.entries
        if e["event"] in ("new", "reappeared")
        and (scan.lesions[e["lesion_id"]]["axial_longest_diameter_mm"] or 0) >= params.new_lesion_min_diameter_mm
    ]


def rano_bm(scans: list[Scan], tracks: dict[int, Track], params: ResponseParameters) -> list[dict[str, Any]]:
    """The RANO-BM entry of every session (the first is the baseline)."""
    baseline = scans[0]
    targets = {
        e["track_id"]
        for e in baseline.entries
        if e["lesion_id"] is not None and baseline.lesions[e["lesion_id"]]["rano_bm_target"]
    }
    sums = [_measures(scan, k, tracks, targets, "axial_longest_diameter_mm") for k, scan in enumerate(scans)]
    base_sum = sums[0][0]
    out: list[dict[str, Any]] = []
    nadir_index = 0
    for k, scan in enumerate(scans):
        total, per_target = sums[k]
        entry: dict[str, Any] = {
            "target_track_ids": sorted(targets),
            "sum_longest_diameters_mm": total,
            "nadir_sum_mm": None,
            "percent_change_from_baseline": None,
            "percent_change_from_nadir": None,
            "new_lesion_count": 0,
            "confirmed": None,
            "radiographic_only": scan.steroids is None and scan.clinical_status is None,
            "reasons": [],
        }
        reasons = entry["reasons"]
        thick = max(baseline.slice_thickness_mm, scan.slice_thickness_mm)
        if k == 0:
            entry["response"] = "baseline"
            reasons.append(f"{len(targets)} target lesion(s) at baseline, sum {total:.1f} mm")
            if not targets:
                reasons.append("no measurable lesion at baseline (longest >= 10 mm, perpendicular >= 5 mm)")
            out.append(entry)
            continue
        nadir_sum, nadir_targets = sums[nadir_index]
        new = _new_lesions(scan, params)
        entry.update(
            nadir_sum_mm=nadir_sum,
            percent_change_from_baseline=_percent(total, base_sum),
            percent_change_from_nadir=_percent(total, nadir_sum),
            new_lesion_count=len(new),
        )
        grown = [t for t in sorted(targets) if per_target[t] - nadir_targets[t] >= params.pd_min_target_increase_mm]
        if not targets:
            entry["response"] = "NE"
            reasons.append("not evaluable: no measurable disease at baseline")
        elif thick > params.max_slice_thickness_mm:
            entry["response"] = "NE"
            reasons.append(f"not evaluable: slices {thick:.1f} mm thick (over {params.max_slice_thickness_mm:g} mm)")
        elif total >= nadir_sum * (1 + params.pd_increase_percent / 100) and grown and total > nadir_sum:
            entry["response"] = "PD"
            reasons.append(
                f"sum {total:.1f} mm is {entry['percent_change_from_nadir'] or 0:.0f} % above the nadir "
                f"{nadir_sum:.1f} mm (>= {params.pd_increase_percent:g} %) and target track(s) "
                f"{', '.join(map(str, grown))} grew >= {params.pd_min_target_increase_mm:g} mm from the nadir"
            )
        elif new:
            entry["response"] = "PD"
            reasons.append(
                f"new lesion(s) (tracks {', '.join(map(str, new))}, >= {params.new_lesion_min_diameter_mm:g} mm)"
            )
            if scan.immunotherapy_before:
                reasons.append("after immunotherapy: confirm the new lesion on a later scan (iRANO)")
        elif scan.clinical_status == "worse":
            entry["response"] = "PD"
            reasons.append("clinical status worse")
        elif not any(e["lesion_id"] is not None for e in scan.entries):
            entry["response"] = "CR"
            reasons.append("every lesion gone, no new lesion")
        elif total <= base_sum * (1 - params.pr_decrease_percent / 100):
            entry["response"] = "PR"
            reasons.append(
                f"sum {total:.1f} mm is {-(entry['percent_change_from_baseline'] or 0):.0f} % below baseline "
                f"(>= {params.pr_decrease_percent:g} %)"
            )
        else:
            entry["response"] = "SD"
            reasons.append("neither PR nor PD")
        if entry["response"] == "SD" and total >= nadir_sum * (1 + params.pd_increase_percent / 100) and not grown:
            reasons.append(
                f"sum {entry['percent_change_from_nadir'] or 0:.0f} % above the nadir, but no target grew "
                f">= {params.pd_min_target_increase_mm:g} mm"
            )
        if entry["response"] in ("CR", "PR") and scan.steroids == "increased":
            reasons.append(f"steroids increased: not {entry['response']}")
            entry["response"] = "SD"
        if entry["radiographic_only"]:
            reasons.append("radiographic only: steroids and clinical status not given")
        if entry["response"] not in ("NE",) and total < nadir_sum:
            nadir_index = k
        out.append(entry)
    _confirm(out, scans, params)
    return out


def _confirm(out: list[dict[str, Any]], scans: list[Scan], params: ResponseParameters) -> None:
    """CR / PR confirmed by a later scan >= confirmation_min_days on (CR by CR, PR by PR or CR); a new-lesion PD
    after immunotherapy confirmed by a later PD; null until such a scan exists."""
    for k, entry in enumerate(out):
        response = entry["response"]
        needs = {"CR": ("CR",), "PR": ("PR", "CR")}.get(response)
        if response == "PD" and not scans[k].immunotherapy_before:
            entry["confirmed"] = True
            continue
        if response == "PD":
            needs = ("PD",)
        if needs is None:
            continue
        later = [
            out[j]["response"]
            for j in range(k + 1, len(out))
            if scans[j].date_days - scans[k].date_days >= params.confirmation_min_days and out[j]["response"] != "NE"
        ]
        if later:
            entry["confirmed"] = later[0] in needs
            entry["reasons"].append(
                f"{'confirmed' if entry['confirmed'] else 'not confirmed'} by the next scan "
                f">= {params.confirmation_min_days:g} days later ({later[0]})"
            )
        else:
            entry["reasons"].append(f"awaiting a confirming scan >= {params.confirmation_min_days:g} days later")


def volumetric(scans: list[Scan], tracks: dict[int, Track], params: ResponseParameters, targets: list[int]):
    """The volumetric response beside RANO-BM: the targets' summed volume against baseline and nadir."""
    chosen = set(targets)
    sums = [_measures(scan, k, tracks, chosen, "volume_ml")[0] for k, scan in enumerate(scans)]
    out, nadir = [], sums[0]
    for k, total in enumerate(sums):
        entry = {"sum_volume_ml": total, "nadir_volume_ml": None if k == 0 else nadir}
        entry["percent_change_from_baseline"] = None if k == 0 else _percent(total, sums[0])
        entry["percent_change_from_nadir"] = None if k == 0 else _percent(total, nadir)
        if k == 0:
            entry["response"] = "baseline"
        elif not chosen:
            entry["response"] = "NE"
        elif (entry["percent_change_from_nadir"] or 0) >= params.volumetric_pd_increase_percent or _new_lesions(
            scans[k], params
        ):
            entry["response"] = "PD"
        elif not any(e["lesion_id"] is not None for e in scans[k].entries):
            entry["response"] = "CR"
        elif (entry["percent_change_from_baseline"] or 0) <= -params.volumetric_pr_decrease_percent:
            entry["response"] = "PR"
        else:
            entry["response"] = "SD"
        if k:
            nadir = min(nadir, total)
        out.append(entry)
    return out
