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


def unequivocal_new_lesions(scans: list[Scan], params: ResponseParameters) -> list[list[int]]:
    """Per scan, the tracks that become unequivocal new lesions there: a lesion that appeared (new, or
    reappeared) after baseline counts once, at the first scan where its axial longest diameter reaches
    new_lesion_min_diameter_mm (a new lesion first seen small counts when it has grown)."""
    pending: set[int] = set()
    out = []
    for scan in scans[1:]:
        counted = []
        for e in scan.entries:
            if e["event"] in ("new", "reappeared"):
                pending.add(e["track_id"])
            if e["lesion_id"] is None:
                pending.discard(e["track_id"])
            elif e["track_id"] in pending:
                length = scan.lesions[e["lesion_id"]]["axial_longest_diameter_mm"] or 0
                if length >= params.new_lesion_min_diameter_mm:
                    counted.append(e["track_id"])
                    pending.discard(e["track_id"])
        out.append(counted)
    return [[], *out]


def _present(scan: Scan) -> bool:
    return any(e["lesion_id"] is not None for e in scan.entries)


def rano_bm(scans: list[Scan], tracks: dict[int, Track], params: ResponseParameters) -> list[dict[str, Any]]:
    """The RANO-BM entry of every session (the first is the baseline)."""
    baseline = scans[0]
    targets = {
        e["track_id"]
        for e in baseline.entries
        if e["lesion_id"] is not None and baseline.lesions[e["lesion_id"]]["rano_bm_target"]
    }
    sums = [_measures(scan, k, tracks, targets, "axial_longest_diameter_mm") for k, scan in enumerate(scans)]
    new_by_scan = unequivocal_new_lesions(scans, params)
    base_sum = sums[0][0]
    out: list[dict[str, Any]] = []
    nadir_index, last_evaluable = 0, "baseline"
    for k, scan in enumerate(scans):
        total, per_target = sums[k]
        entry: dict[str, Any] = {
            "target_track_ids": sorted(targets),
            "sum_longest_diameters_mm": total,
            "nadir_sum_mm": None,
            "percent_change_from_baseline": None,
            "percent_change_from_nadir": None,
            "new_lesion_count": 0,
            "new_lesion_track_ids": [],
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
        new = new_by_scan[k]
        entry.update(
            nadir_sum_mm=nadir_sum,
            percent_change_from_baseline=_percent(total, base_sum),
            percent_change_from_nadir=_percent(total, nadir_sum),
            new_lesion_count=len(new),
            new_lesion_track_ids=new,
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
        elif last_evaluable == "CR" and _present(scan):
            entry["response"] = "PD"
            reasons.append("a lesion reappeared after a complete response")
        elif not _present(scan):
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
        if entry["response"] != "NE":
            last_evaluable = entry["response"]
            if total < nadir_sum:
                nadir_index = k
        out.append(entry)
    _confirm(out, scans, params)
    return out


def _confirm(out: list[dict[str, Any]], scans: list[Scan], params: ResponseParameters) -> None:
    """CR (by CR) and PR (by PR or CR) are confirmed when they last until a scan >= confirmation_min_days on: an
    earlier scan that breaks them (e.g. PD in between) means not confirmed. A new-lesion PD after immunotherapy
    is confirmed by progression at a scan >= confirmation_min_days on (PD, or the new lesions grown by the 5 mm
    rule's amount). Null until such a scan exists, and for responses that need no confirmation."""
    for k, entry in enumerate(out):
        response = entry["response"]
        immune = response == "PD" and scans[k].immunotherapy_before and entry["new_lesion_count"]
        needs = {"CR": ("CR",), "PR": ("PR", "CR")}.get(response)
        if needs is None and not immune:
            continue
        verdict = None
        for j in range(k + 1, len(out)):
            later = out[j]["response"]
            if later == "NE":
                continue
            days = scans[j].date_days - scans[k].date_days
            if immune:
                if days >= params.confirmation_min_days:
                    grew = _new_lesions_grew(scans[k], scans[j], entry["new_lesion_track_ids"], params)
                    verdict = later == "PD" or grew
                    break
                continue
            if later not in needs:
                verdict = False
                break
            if days >= params.confirmation_min_days:
                verdict = True
                break
        entry["confirmed"] = verdict
        if verdict is None:
            entry["reasons"].append(f"awaiting a confirming scan >= {params.confirmation_min_days:g} days later")
        else:
            entry["reasons"].append(
                f"{'confirmed' if verdict else 'not confirmed'} by the scans up to "
                f">= {params.confirmation_min_days:g} days later"
            )


def _new_lesions_grew(then: Scan, later: Scan, tracks: list[int], params: ResponseParameters) -> bool:
    def length(scan: Scan, track: int) -> float:
        lesion = next((e["lesion_id"] for e in scan.entries if e["track_id"] == track), None)
        return float(scan.lesions[lesion]["axial_longest_diameter_mm"] or 0) if lesion is not None else 0.0

    return any(length(later, t) - length(then, t) >= params.pd_min_target_increase_mm for t in tracks)


def volumetric(scans: list[Scan], tracks: dict[int, Track], params: ResponseParameters, rano: list[dict[str, Any]]):
    """The volumetric response beside RANO-BM: the same targets, new lesions, steroid, clinical-status and
    not-evaluable rules, on the targets' summed volume against baseline and nadir."""
    chosen = set(rano[0]["target_track_ids"])
    sums = [_measures(scan, k, tracks, chosen, "volume_ml")[0] for k, scan in enumerate(scans)]
    out, nadir, last_evaluable = [], sums[0], "baseline"
    for k, total in enumerate(sums):
        entry = {"sum_volume_ml": total, "nadir_volume_ml": None if k == 0 else nadir}
        entry["percent_change_from_baseline"] = None if k == 0 else _percent(total, sums[0])
        entry["percent_change_from_nadir"] = None if k == 0 else _percent(total, nadir)
        diameter = rano[k]["response"]
        if k == 0:
            entry["response"] = "baseline"
        elif diameter == "NE":
            entry["response"] = "NE"
        elif (
            (entry["percent_change_from_nadir"] or 0) >= params.volumetric_pd_increase_percent
            or rano[k]["new_lesion_count"]
            or scans[k].clinical_status == "worse"
            or (last_evaluable == "CR" and _present(scans[k]))
        ):
            entry["response"] = "PD"
        elif not _present(scans[k]):
            entry["response"] = "CR"
        elif (entry["percent_change_from_baseline"] or 0) <= -params.volumetric_pr_decrease_percent:
            entry["response"] = "PR"
        else:
            entry["response"] = "SD"
        if entry["response"] in ("CR", "PR") and scans[k].steroids == "increased":
            entry["response"] = "SD"
        if k and entry["response"] != "NE":
            nadir, last_evaluable = min(nadir, total), entry["response"]
        out.append(entry)
    return out
