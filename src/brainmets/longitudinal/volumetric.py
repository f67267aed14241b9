"""The volumetric response beside RANO-BM: the same rules (:mod:`brainmets.longitudinal.response`), on the targets'
summed volume."""

from __future__ import annotations

from typing import Any

#: Steroid entries that allow a complete response (RANO-BM: no corticosteroids; a replacement dose is not
#: treatment of the tumour).
from brainmets.longitudinal.response import (
    ResponseParameters,
    Scan,
    baselines,
    is_present,
    percent_change,
    steroid_rule,
    target_measures,
)
from brainmets.longitudinal.tracking import Track


def volumetric(scans: list[Scan], tracks: dict[int, Track], params: ResponseParameters, rano: list[dict[str, Any]]):
    """The volumetric response beside RANO-BM: the same baselines, targets, new lesions, non-target, steroid,
    clinical-status and not-evaluable rules, on the targets' summed volume against baseline and nadir."""
    starts = baselines(scans, params)
    out: list[dict[str, Any]] = []
    base = nadir = 0.0
    last_evaluable = "baseline"
    for k, scan in enumerate(scans):
        chosen = set(rano[k]["target_track_ids"])
        total = target_measures(scan, k, tracks, chosen, "volume_ml")[0]
        if starts[k] == k:
            base = nadir = total
            last_evaluable = "baseline"
            out.append({"sum_volume_ml": total, "nadir_volume_ml": None, "percent_change_from_baseline": None,
                        "percent_change_from_nadir": None, "response": "baseline"})  # fmt: skip
            continue
        entry = {
            "sum_volume_ml": total,
            "nadir_volume_ml": nadir,
            "percent_change_from_baseline": percent_change(total, base),
            "percent_change_from_nadir": percent_change(total, nadir),
        }
        diameter = rano[k]
        thick = max(scans[starts[k]].slice_thickness_mm, scan.slice_thickness_mm) > params.max_slice_thickness_mm
        other = set(diameter["progression_by"]) - {"target_sum", "after_cr"}
        above = (entry["percent_change_from_nadir"] or 0) >= params.volumetric_pd_increase_percent
        if (chosen and not thick and above and total > nadir) or other or (last_evaluable == "CR" and is_present(scan)):
            entry["response"] = "PD"
        elif diameter["response"] == "NE":
            entry["response"] = "NE"
        elif not is_present(scan):
            entry["response"] = "CR"
        elif (entry["percent_change_from_baseline"] or 0) <= -params.volumetric_pr_decrease_percent:
            entry["response"] = "PR"
        else:
            entry["response"] = "SD"
        entry["response"] = steroid_rule(entry["response"], scan, bool(chosen), [])
        if entry["response"] != "NE":
            nadir, last_evaluable = min(nadir, total), entry["response"]
        out.append(entry)
    return out
