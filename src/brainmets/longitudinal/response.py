"""RANO-BM response over a timeline (Lin et al., Lancet Oncol 2015;16:e270-8), and a volumetric response
beside it.

Targets are fixed at baseline: up to ``max_target_lesions`` measurable lesions (longest axial diameter
>= 10 mm, perpendicular >= 5 mm), largest first; every other lesion present then is a non-target. At each
follow-up the sum of the targets' longest axial diameters is taken (a resolved target counts 0, the fragments
of a split target add up, a lesion that two targets merged into counts once) and compared with the baseline
and with the nadir (the smallest sum before this scan). PD: the sum >= 20 % above the nadir and one target
>= 5 mm longer than at the nadir scan; or unequivocal progression of a non-target lesion (its longest
diameter >= 5 mm and >= 50 % above its own nadir: an assumption, RANO-BM gives no number); or an unequivocal
new lesion (whatever the baseline held); or a worse clinical status; or any lesion after a CR. CR: every
lesion gone, no new one, no corticosteroids beyond a physiological dose. PR: the sum >= 30 % below baseline,
steroids not increased. CR and PR are confirmed by a scan >= 4 weeks later. Slices thicker than 5 mm leave
the measurements not evaluable (NE), as does a baseline without measurable disease, unless a new lesion or a
non-target's progression shows PD, or every lesion is gone. A session after a resection (``rebaseline_after``)
is a new baseline: the resection is never scored as a response.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from brainmets.longitudinal.tracking import Track, represented

#: Steroid entries that allow a complete response (RANO-BM: no corticosteroids; a replacement dose is not
#: treatment of the tumour).
CR_STEROIDS = ("none", "physiological")


@dataclass(frozen=True)
class ResponseParameters:
    """The config's ``followup.rano_bm`` and ``followup.volumetric`` settings."""

    pr_decrease_percent: float = 30.0
    pd_increase_percent: float = 20.0
    pd_min_target_increase_mm: float = 5.0
    confirmation_min_days: float = 28.0
    max_slice_thickness_mm: float = 5.0
    new_lesion_min_diameter_mm: float = 5.0
    non_target_pd_increase_mm: float = 5.0
    non_target_pd_increase_percent: float = 50.0
    rebaseline_after: tuple[str, ...] = ("surgery",)
    volumetric_pr_decrease_percent: float = 65.0
    volumetric_pd_increase_percent: float = 73.0

    @classmethod
    def from_config(cls, rano: dict[str, Any], volumetric: dict[str, Any]) -> ResponseParameters:
        values: dict[str, Any] = {
            k: tuple(v) if k == "rebaseline_after" else float(v)
            for k, v in rano.items()
            if k in cls.__dataclass_fields__
        }
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
    treatment: tuple[str, ...] = ()  # given after this scan
    session: str = ""
    irradiated: dict[int, list[str]] = field(default_factory=dict)  # tracks irradiated before this scan: by what


def percent_change(value: float, reference: float) -> float | None:
    return None if reference == 0 else 100.0 * (value - reference) / reference


def target_measures(scan: Scan, index: int, tracks: dict[int, Track], chosen: set[int], key: str):
    """(sum over the chosen tracks, per chosen track) of a lesion measure at one scan."""
    total, per_track = 0.0, dict.fromkeys(chosen, 0.0)
    for e in scan.entries:
        if e["lesion_id"] is None:
            continue
        stands_for = represented(tracks, e["track_id"], index)
        value = float(scan.lesions[e["lesion_id"]][key] or 0.0)
        if stands_for & chosen:
            total += value
        for t in stands_for & chosen:
            per_track[t] += value
    return total, per_track


def baselines(scans: list[Scan], params: ResponseParameters) -> list[int]:
    """The index of each scan's baseline: the first scan, or the first scan after a treatment of
    ``rebaseline_after`` (a resection starts a new baseline)."""
    out, start = [], 0
    for k in range(len(scans)):
        if k and set(scans[k - 1].treatment) & set(params.rebaseline_after):
            start = k
        out.append(start)
    return out


def unequivocal_new_lesions(scans: list[Scan], params: ResponseParameters, starts: list[int]) -> list[list[int]]:
    """Per scan, the tracks that become unequivocal new lesions there: a lesion that appeared (new, or
    reappeared) after its baseline counts once, at the first scan where its axial longest diameter reaches
    new_lesion_min_diameter_mm (a new lesion first seen small counts when it has grown)."""
    pending: set[int] = set()
    out: list[list[int]] = []
    for k, scan in enumerate(scans):
        if starts[k] == k:
            pending = set()
            out.append([])
            continue
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
    return out


def is_present(scan: Scan) -> bool:
    return any(e["lesion_id"] is not None for e in scan.entries)


def steroid_rule(response: str, scan: Scan, has_targets: bool, reasons: list[str]) -> str:
    """RANO-BM's corticosteroid conditions: CR needs none (or a physiological dose), so CR on steroids is PR at
    best; increased steroids rule CR and PR out. Without a steroid entry CR stands, radiographic only."""
    if response == "CR" and scan.steroids in ("stable", "decreased"):
        reasons.append(f"steroids {scan.steroids}: not CR (RANO-BM's CR needs no corticosteroids), PR at best")
        response = "PR" if has_targets else "NE"
    if response in ("CR", "PR") and scan.steroids == "increased":
        reasons.append(f"steroids increased: not {response}")
        response = "SD" if has_targets else "NE"
    if response == "CR" and scan.steroids is None:
        reasons.append("CR on imaging: steroids not given (RANO-BM's CR needs none, or a physiological dose)")
    return response


@dataclass
class _Segment:
    """One baseline and what is measured against it."""

    start: int
    targets: set[int]
    non_targets: set[int]
    base_sum: float
    had_lesions: bool
    nadir_index: int
    groups: list[dict[frozenset[int], float]]  # non-target lesion lengths at each evaluable scan, by group
    last_evaluable: str = "baseline"
    awaiting_irano: list[int] = field(default_factory=list)  # new-lesion PDs after immunotherapy to confirm


def _non_target_groups(scan: Scan, k: int, tracks: dict[int, Track], segment: _Segment) -> dict[frozenset, float]:
    """The longest diameters of the non-target lesions at a scan, by the baseline non-targets each lesion holds
    (lesions that merged are one group, measured against the sum of their parts; fragments add up)."""
    out: dict[frozenset, float] = {}
    for e in scan.entries:
        if e["lesion_id"] is None:
            continue
        stands_for = represented(tracks, e["track_id"], k)
        group = frozenset(stands_for & segment.non_targets)
        if group and not stands_for & segment.targets:
            out[group] = out.get(group, 0.0) + float(scan.lesions[e["lesion_id"]]["axial_longest_diameter_mm"] or 0.0)
    return out


class _RanoBm:
    """RANO-BM over one timeline: every scan's entry, baseline by baseline."""

    def __init__(self, scans: list[Scan], tracks: dict[int, Track], params: ResponseParameters):
        self.scans, self.tracks, self.params = scans, tracks, params
        self.starts = baselines(scans, params)
        self.new_by_scan = unequivocal_new_lesions(scans, params, self.starts)
        self.sums: dict[int, tuple[float, dict[int, float]]] = {}
        self.out: list[dict[str, Any]] = []
        self.growth: dict[int, set[int]] = {}  # PD scans resting on irradiated growth: the tracks that grew

    def run(self) -> list[dict[str, Any]]:
        segment = None
        for k in range(len(self.scans)):
            if self.starts[k] == k:
                segment = self._start(k)
                self.out.append(self._baseline_entry(k, segment))
            else:
                self.out.append(self._follow_entry(k, segment))
        _confirm(self.out, self.scans, self.starts, self.params, self)
        return self.out

    def _start(self, k: int) -> _Segment:
        scan = self.scans[k]
        present = {e["track_id"] for e in scan.entries if e["lesion_id"] is not None}
        targets = {e["track_id"] for e in scan.entries
                   if e["lesion_id"] is not None and scan.lesions[e["lesion_id"]]["rano_bm_target"]}  # fmt: skip
        self.sums[k] = target_measures(scan, k, self.tracks, targets, "axial_longest_diameter_mm")
        segment = _Segment(k, targets, present - targets, self.sums[k][0], bool(present), k, [])
        segment.groups.append(_non_target_groups(scan, k, self.tracks, segment))
        return segment

    def _entry(self, segment: _Segment, k: int, total: float) -> dict[str, Any]:
        scan = self.scans[k]
        return {
            "baseline_session": self.scans[segment.start].session,
            "target_track_ids": sorted(segment.targets),
            "non_target_track_ids": sorted(segment.non_targets),
            "sum_longest_diameters_mm": total,
            "nadir_sum_mm": None,
            "percent_change_from_baseline": None,
            "percent_change_from_nadir": None,
            "new_lesion_count": 0,
            "new_lesion_track_ids": [],
            "non_target_progression_track_ids": [],
            "progression_by": [],
            "treatment_effect_possible": False,
            "confirmed": None,
            "steroids": scan.steroids,
            "clinical_status": scan.clinical_status,
            "radiographic_only": scan.steroids is None and scan.clinical_status is None,
            "reasons": [],
        }

    def _baseline_entry(self, k: int, segment: _Segment) -> dict[str, Any]:
        entry = self._entry(segment, k, self.sums[k][0])
        entry["response"] = "baseline"
        reasons = entry["reasons"]
        if k:
            given = ", ".join(t for t in self.scans[k - 1].treatment if t in self.params.rebaseline_after)
            reasons.append(
                f"new baseline: the first scan after {given} following session {self.scans[k - 1].session} "
                f"(a {given} is not scored as a response)"
            )
            self._progression_before(k, entry)
        reasons.append(
            f"{len(segment.targets)} target lesion(s), sum {entry['sum_longest_diameters_mm']:.1f} mm; "
            f"{len(segment.non_targets)} non-target lesion(s)"
        )
        if not segment.targets:
            reasons.append("no measurable lesion at baseline (longest >= 10 mm, perpendicular >= 5 mm)")
        return entry

    def _progression_before(self, k: int, entry: dict[str, Any]) -> None:
        """At a new baseline: lesions new since the scan before the treatment, and lesions that grew across it
        (by the non-target rule), are progression, even though the scan starts a new baseline."""
        before, now, params = self.scans[k - 1], self.scans[k], self.params
        measurable = max(before.slice_thickness_mm, now.slice_thickness_mm) <= params.max_slice_thickness_mm
        length = lambda scan, e: float(scan.lesions[e["lesion_id"]]["axial_longest_diameter_mm"] or 0.0)  # noqa: E731
        earlier = {e["track_id"]: length(before, e) for e in before.entries if e["lesion_id"] is not None}
        new, grown = [], []
        for e in now.entries:
            if e["lesion_id"] is None:
                continue
            value = length(now, e)
            if e["event"] in ("new", "reappeared") and value >= params.new_lesion_min_diameter_mm:
                new.append(e["track_id"])
            old = earlier.get(e["track_id"])
            if (
                measurable
                and e["event"] == "persisting"
                and old
                and value - old >= params.non_target_pd_increase_mm
                and (100 * (value - old) / old >= params.non_target_pd_increase_percent)
            ):
                grown.append(f"track {e['track_id']} {old:.1f} -> {value:.1f} mm")
                entry["non_target_progression_track_ids"].append(e["track_id"])
        if new:
            entry.update(new_lesion_count=len(new), new_lesion_track_ids=new)
            entry["progression_by"].append("new_lesion")
            entry["reasons"].append(
                f"progression before this new baseline: new lesion(s) since session {before.session} (tracks "
                f"{', '.join(map(str, new))}, >= {params.new_lesion_min_diameter_mm:g} mm)"
            )
        if grown:
            entry["progression_by"].append("non_target")
            entry["reasons"].append(
                f"progression before this new baseline: lesion(s) grew since session {before.session}: "
                f"{'; '.join(grown)} (>= {params.non_target_pd_increase_mm:g} mm and "
                f">= {params.non_target_pd_increase_percent:g} %)"
            )
        behind = {"new_lesion": set(new), "non_target": set(entry["non_target_progression_track_ids"])}
        self._treatment_effect(k, entry, behind)

    def _follow_entry(self, k: int, segment: _Segment) -> dict[str, Any]:
        scan, params, scans = self.scans[k], self.params, self.scans
        baseline = scans[segment.start]
        self.sums[k] = target_measures(scan, k, self.tracks, segment.targets, "axial_longest_diameter_mm")
        total, per_target = self.sums[k]
        nadir_sum, nadir_targets = self.sums[segment.nadir_index]
        entry = self._entry(segment, k, total)
        new = self.new_by_scan[k]
        entry.update(
            nadir_sum_mm=nadir_sum,
            percent_change_from_baseline=percent_change(total, segment.base_sum),
            percent_change_from_nadir=percent_change(total, nadir_sum),
            new_lesion_count=len(new),
            new_lesion_track_ids=new,
        )
        reasons = entry["reasons"]
        thick = max(baseline.slice_thickness_mm, scan.slice_thickness_mm)
        measurable = thick <= params.max_slice_thickness_mm
        groups = _non_target_groups(scan, k, self.tracks, segment)

        progression: list[tuple[str, str]] = []
        grown = [
            t for t in sorted(segment.targets) if per_target[t] - nadir_targets[t] >= params.pd_min_target_increase_mm
        ]
        above = total >= nadir_sum * (1 + params.pd_increase_percent / 100) and total > nadir_sum
        if segment.targets and measurable and above and grown:
            change = (
                f"{entry['percent_change_from_nadir']:.0f} % above the nadir {nadir_sum:.1f} mm "
                f"(>= {params.pd_increase_percent:g} %)"
                if nadir_sum
                else "up from a nadir of 0 mm (every target gone)"
            )
            progression.append((
                "target_sum",
                f"sum {total:.1f} mm is {change} and target track(s) {', '.join(map(str, grown))} grew "
                f">= {params.pd_min_target_increase_mm:g} mm from the nadir",
            ))  # fmt: skip
        progressed, behind = [], {"target_sum": set(grown) if progression else set(), "non_target": set()}
        for group, now in sorted(groups.items(), key=lambda g: sorted(g[0])):
            nadir = min(sum(v for h, v in past.items() if h <= group) for past in segment.groups)
            if (
                measurable
                and nadir > 0
                and now - nadir >= params.non_target_pd_increase_mm
                and 100 * (now - nadir) / nadir >= params.non_target_pd_increase_percent
            ):
                names = " + ".join(map(str, sorted(group)))
                progressed.append(f"track {names} {nadir:.1f} -> {now:.1f} mm")
                entry["non_target_progression_track_ids"] += sorted(group)
                behind["non_target"] |= group
        if progressed:
            progression.append((
                "non_target",
                f"unequivocal progression of non-target lesion(s): {'; '.join(progressed)} (>= "
                f"{params.non_target_pd_increase_mm:g} mm and >= {params.non_target_pd_increase_percent:g} % above "
                "their own nadir)",
            ))  # fmt: skip
        if new:
            why = f"new lesion(s) (tracks {', '.join(map(str, new))}, >= {params.new_lesion_min_diameter_mm:g} mm)"
            if scan.immunotherapy_before:
                why += "; after immunotherapy: confirm the new lesion on a later scan (iRANO)"
                segment.awaiting_irano.append(k)
            progression.append(("new_lesion", why))
            behind["new_lesion"] = set(new)
        for j in list(segment.awaiting_irano):
            if j != k and scan.date_days - scans[j].date_days >= params.confirmation_min_days:
                segment.awaiting_irano.remove(j)
                if _new_lesions_grew(scans[j], scan, self.out[j]["new_lesion_track_ids"], params):
                    progression.append((
                        "irano_confirmation",
                        f"the new lesion(s) of session {scans[j].session} grew >= "
                        f"{params.pd_min_target_increase_mm:g} mm: the PD of session {scans[j].session} is confirmed "
                        "(iRANO)",
                    ))  # fmt: skip
        if scan.clinical_status == "worse":
            progression.append(("clinical", "clinical status worse"))
        if segment.last_evaluable == "CR" and is_present(scan) and not progression:
            progression.append(("after_cr", "a lesion reappeared after a complete response"))
            behind["after_cr"] = {e["track_id"] for e in scan.entries if e["lesion_id"] is not None}

        if progression:
            entry["response"] = "PD"
            entry["progression_by"] = [kind for kind, _ in progression]
            reasons += [why for _, why in progression]
            self._treatment_effect(k, entry, behind)
        elif not measurable:
            entry["response"] = "NE"
            reasons.append(f"not evaluable: slices {thick:.1f} mm thick (over {params.max_slice_thickness_mm:g} mm)")
        elif not is_present(scan) and segment.had_lesions:
            entry["response"] = "CR"
            reasons.append("every lesion gone, no new lesion")
        elif not is_present(scan):
            entry["response"] = "NE"
            reasons.append("not evaluable: no lesion at baseline and no new lesion since")
        elif not segment.targets:
            entry["response"] = "NE"
            reasons.append(
                "not evaluable: no measurable disease at baseline (no unequivocal new lesion or non-target "
                "progression, so not PD; lesions remain, so not CR)"
            )
        elif total <= segment.base_sum * (1 - params.pr_decrease_percent / 100):
            entry["response"] = "PR"
            reasons.append(
                f"sum {total:.1f} mm is {-(entry['percent_change_from_baseline'] or 0):.0f} % below baseline "
                f"(>= {params.pr_decrease_percent:g} %)"
            )
        else:
            entry["response"] = "SD"
            reasons.append("neither PR nor PD")
        if entry["response"] == "SD" and above and not grown:
            reasons.append(
                f"sum {entry['percent_change_from_nadir'] or 0:.0f} % above the nadir, but no target grew "
                f">= {params.pd_min_target_increase_mm:g} mm"
            )
        entry["response"] = steroid_rule(entry["response"], scan, bool(segment.targets), reasons)
        if entry["response"] == "CR" and scan.steroids is None:
            entry["radiographic_only"] = True  # RANO-BM's CR needs no steroids: without the entry it is imaging alone
        elif entry["radiographic_only"]:
            reasons.append("radiographic only: steroids and clinical status not given")
        if entry["response"] != "NE":
            segment.last_evaluable = entry["response"]
            if total < nadir_sum:
                segment.nadir_index = k
            segment.groups.append(groups)
        return entry

    def _treatment_effect(self, k: int, entry: dict[str, Any], behind: dict[str, set[int]]) -> None:
        """A PD (or progression at a new baseline) that rests only on irradiated lesions, growing or coming back
        where they were, may be treatment effect (transient enlargement, radiation necrosis): RANO-BM calls it
        equivocal, to confirm by later growth or otherwise. ``behind``: the tracks behind each kind of progression."""
        scan, kinds = self.scans[k], set(entry["progression_by"])
        tracks = {t for kind in kinds for t in behind.get(kind, set())}
        if not kinds or kinds - set(behind) or not tracks or not tracks <= set(scan.irradiated):
            return
        entry["treatment_effect_possible"] = True
        self.growth[k] = tracks
        entry["reasons"].append(
            "the lesion(s) behind it (track(s) "
            + ", ".join(f"{t}: {', '.join(scan.irradiated[t])}" for t in sorted(tracks))
            + ") were irradiated: the growth may be treatment effect (transient enlargement, radiation necrosis); "
            "equivocal progression, to confirm by further growth on a scan >= "
            f"{self.params.confirmation_min_days:g} days later, perfusion/PET or tissue"
        )

    def grown_length(self, k: int, j: int) -> float:
        """The summed longest diameter, at scan ``j``, of the lesions whose growth made scan ``k`` PD."""
        return target_measures(self.scans[j], j, self.tracks, self.growth[k], "axial_longest_diameter_mm")[0]


def rano_bm(scans: list[Scan], tracks: dict[int, Track], params: ResponseParameters) -> list[dict[str, Any]]:
    """The RANO-BM entry of every session (the first, and every scan after a resection, is a baseline)."""
    return _RanoBm(scans, tracks, params).run()


def _confirm(out, scans: list[Scan], starts: list[int], params: ResponseParameters, rano: _RanoBm) -> None:
    """CR (by CR) and PR (by PR or CR) are confirmed when they last until a scan >= confirmation_min_days on: an
    earlier scan that breaks them (e.g. PD in between) means not confirmed; that later scan is itself confirmed
    (the response has lasted), whatever follows it. A new-lesion PD after immunotherapy is confirmed by
    progression at a scan >= confirmation_min_days on (PD, or the new lesions grown by the 5 mm rule's amount);
    a PD resting on irradiated growth by further growth of those lesions (the 5 mm rule's amount) at such a scan,
    and not when a later scan is no longer PD. Null until such a scan exists (within the same baseline), and for
    responses that need none."""
    needs_of = {"CR": ("CR",), "PR": ("PR", "CR")}
    confirming: dict[int, int] = {}  # a scan -> the earlier equivocal PD it confirms
    for k, entry in enumerate(out):
        response = entry["response"]
        immune = response == "PD" and scans[k].immunotherapy_before and entry["new_lesion_count"]
        equivocal = entry["treatment_effect_possible"]
        needs = needs_of.get(response)
        if needs is None and not immune and not equivocal:
            continue
        later = [j for j in range(k + 1, len(out)) if starts[j] == starts[k] and out[j]["response"] != "NE"]
        verdict = None
        for j in later:
            days = scans[j].date_days - scans[k].date_days
            if immune:
                if days >= params.confirmation_min_days:
                    grew = _new_lesions_grew(scans[k], scans[j], entry["new_lesion_track_ids"], params)
                    verdict = out[j]["response"] == "PD" or grew
                    break
                continue
            if equivocal:
                if out[j]["response"] != "PD":
                    verdict = False
                    break
                further = rano.grown_length(k, j) - rano.grown_length(k, k)
                if days >= params.confirmation_min_days and further >= params.pd_min_target_increase_mm:
                    verdict, confirming[j] = True, k
                    break
                continue
            if out[j]["response"] not in needs:
                verdict = False
                break
            if days >= params.confirmation_min_days:
                verdict = True
                break
        lasted = None if needs is None else _confirms(out, scans, starts, k, needs, params)
        if lasted is not None:
            entry["confirmed"] = True
            entry["reasons"].append(
                f"confirmed: {' or '.join(needs)} since session {scans[lasted].session} "
                f"(>= {params.confirmation_min_days:g} days earlier)"
            )
        elif k in confirming:
            entry["confirmed"] = True
            entry["reasons"].append(f"confirmed: it confirms the PD of session {scans[confirming[k]].session}")
        elif verdict is None:
            entry["confirmed"] = None
            entry["reasons"].append(f"awaiting a confirming scan >= {params.confirmation_min_days:g} days later")
        else:
            entry["confirmed"] = verdict
            entry["reasons"].append(
                f"{'confirmed' if verdict else 'not confirmed'} by the scans up to "
                f">= {params.confirmation_min_days:g} days later"
            )


def _confirms(out, scans, starts, k: int, needs: tuple[str, ...], params: ResponseParameters) -> int | None:
    """The earliest scan since which the response of scan ``k`` has lasted, when that is at least
    confirmation_min_days before it (every evaluable scan between them keeping a response of ``needs``)."""
    found = None
    for j in range(k - 1, starts[k], -1):
        response = out[j]["response"]
        if response == "NE":
            continue
        if response not in needs:
            break
        if scans[k].date_days - scans[j].date_days >= params.confirmation_min_days:
            found = j
    return found


def _new_lesions_grew(then: Scan, later: Scan, tracks: list[int], params: ResponseParameters) -> bool:
    def length(scan: Scan, track: int) -> float:
        lesion = next((e["lesion_id"] for e in scan.entries if e["track_id"] == track), None)
        return float(scan.lesions[lesion]["axial_longest_diameter_mm"] or 0) if lesion is not None else 0.0

    return any(length(later, t) - length(then, t) >= params.pd_min_target_increase_mm for t in tracks)
