"""The Table 1 facts that need time, as of a timeline's last session, aware of what was treated and of
measurement noise.

Who was treated: after a session whose ``treatment`` is ``srs`` or ``surgery``, the lesions its
``treated_lesions`` lists (else every lesion present); after ``wbrt``, every lesion present; the fragments of a
treated lesion and the lesions merged with one count as treated. Growth counts only beyond measurement noise
(:mod:`.growth`). A treated lesion that grew makes "recurrence after" its treatment undetermined, never true:
imaging cannot tell recurrence from treatment effect (radiation necrosis, transient enlargement, post-operative
change); the clinical ``recurrence_confirmed`` (tissue or advanced imaging) decides it when given. Lesions new
after a treatment, or untreated lesions growing, are distant intracranial progression after it, never its
recurrence. Every fact is None (unknown) when the timeline cannot decide it, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from brainmets.longitudinal.growth import DAYS_PER_MONTH, Grid, Size, assess, describe
from brainmets.longitudinal.timeline import Session
from brainmets.longitudinal.tracking import Track, represented

#: The facts a follow-up derives (clinical-table columns of the same name; a value given by hand wins).
FACTS = (
    "rapid_growth",
    "cns_progression",
    "local_recurrence_after_resection",
    "recurrence_after_srs",
    "recurrence_after_wbrt",
    "distant_intracranial_progression_after_srs",
    "distant_intracranial_progression_after_wbrt",
    "solitary_metastasis_at_resection",
)
#: Treatments whose effects on a lesion imaging cannot tell from its regrowth.
RADIATION = ("srs", "wbrt")
LOCAL = ("srs", "wbrt", "surgery")
#: What a treated lesion's growth may be instead of a recurrence, by treatment.
MIMICS = {
    "srs": "radiation necrosis",
    "wbrt": "radiation necrosis",
    "surgery": "post-operative change (or radiation effect, if the cavity was irradiated)",
}
CONFIRM = "confirm by follow-up, perfusion/PET or tissue (clinical column recurrence_confirmed)"


@dataclass(frozen=True)
class Treatment:
    """A local treatment given after session ``session`` to the tracks ``tracks``."""

    session: int
    kind: str
    tracks: frozenset[int]


def _fact(value: bool | None, evidence: str, **extra: Any) -> dict[str, Any]:
    return {"value": value, "evidence": evidence, **extra}


@dataclass
class Timeline:
    """A subject's tracked sessions, with each track's size per session and the local treatments."""

    sessions: list[Session]
    documents: list[dict[str, Any]]
    entries: list[list[dict[str, Any]]]
    tracks: dict[int, Track]
    days: list[float]
    params: Any  # FollowupParameters
    grids: list[Grid]
    sizes: list[dict[int, Size]]  # per session: track -> size (zero when resolved; absent when merged away)
    treatments: list[Treatment]
    _covered: dict[tuple[Treatment, int], set[int]] = field(default_factory=dict)
    _held: dict[tuple[int, int], set[int]] = field(default_factory=dict)

    @classmethod
    def build(cls, sessions, documents, entries, tracks, days, grids: list[Grid], params) -> Timeline:
        rows = [{row["lesion_id"]: row for row in doc["lesions"]} for doc in documents]
        sizes = [
            {
                e["track_id"]: Size.of(rows[k][e["lesion_id"]] if e["lesion_id"] is not None else None, grids[k])
                for e in found
                if e["lesion_id"] is not None or e["event"] == "resolved"
            }
            for k, found in enumerate(entries)
        ]
        treatments = []
        for k, session in enumerate(sessions):
            by_lesion = {e["lesion_id"]: e["track_id"] for e in entries[k] if e["lesion_id"] is not None}
            for kind in session.treatment:
                if kind not in LOCAL:
                    continue
                listed = (session.treated_lesions or {}).get(kind)
                chosen = listed if kind != "wbrt" and listed else by_lesion
                treatments.append(Treatment(k, kind, frozenset(by_lesion[lid] for lid in chosen)))
        return cls(sessions, documents, entries, tracks, days, params, grids, sizes, treatments)

    # ---- lesions, sizes and treatments ------------------------------------------------------------------
    @property
    def last(self) -> int:
        return len(self.sessions) - 1

    def holds(self, track: int, k: int) -> set[int]:
        """The tracks whose tissue the track's lesion holds at session ``k`` (:func:`.tracking.represented`)."""
        if (track, k) not in self._held:
            self._held[track, k] = represented(self.tracks, track, k)
        return self._held[track, k]

    def covered(self, treatment: Treatment, k: int | None = None) -> set[int]:
        """The tracks whose lesion holds tissue a treatment reached, at session ``k`` (default: the last): those
        it treated, their fragments, and the lesions they merged into by then."""
        k = self.last if k is None else k
        if (treatment, k) not in self._covered:
            self._covered[treatment, k] = {t for t in self.tracks if self.holds(t, k) & treatment.tracks}
        return self._covered[treatment, k]

    def treated_with(self, track: int, k: int) -> list[str]:
        """The local treatments given to a track after session ``k``."""
        return [tr.kind for tr in self.treatments if tr.session == k and track in tr.tracks]

    def treatments_of(self, track: int) -> list[dict[str, Any]]:
        return [
            {"session": self.sessions[tr.session].session, "treatment": tr.kind}
            for tr in self.treatments
            if track in self.covered(tr)
        ]

    def treated_tracks(self, k: int) -> dict[str, list[int]]:
        return {tr.kind: sorted(tr.tracks) for tr in self.treatments if tr.session == k}

    def irradiated(self, k: int) -> dict[int, list[str]]:
        """The tracks irradiated (SRS, WBRT) before session ``k``, each with the sessions after which."""
        out: dict[int, list[str]] = {}
        for tr in self.treatments:
            if tr.kind in RADIATION and tr.session < k:
                for t in self.covered(tr, k):
                    out.setdefault(t, []).append(f"{tr.kind.upper()} after session {self.sessions[tr.session].session}")
        return out

    def treated_before(self, track: int, k: int) -> list[Treatment]:
        """The local treatments (SRS, WBRT, surgery) that reached a track before session ``k``."""
        return [tr for tr in self.treatments if tr.session < k and track in self.covered(tr, k)]

    def series(self, track: int) -> list[tuple[int, Size]]:
        return [(k, sizes[track]) for k, sizes in enumerate(self.sizes) if track in sizes]

    def group(self, track: int, k: int) -> set[int]:
        """The lesions of session ``k`` that hold the same tissue as the track's: its fragments (a split lesion is
        measured whole) and, through what merged into it, the lesions it came from."""
        mine = self.holds(track, k)
        return {t for t in self.sizes[k] if self.holds(t, k) & mine}

    def size_at(self, track: int, i: int, k: int, from_zero: bool = False) -> Size | None:
        """At session ``i``, the size of what the track's lesion group at session ``k`` holds: its lesions and
        the tracks merged into them by then (volumes, surfaces and longest diameters added, as RANO-BM adds the
        diameters of lesions that coalesce or split). None when none was seen at ``i``; zero with ``from_zero``."""
        members = self.group(track, k) if i == k else {
            t for u in self.group(track, k) for t in self.holds(u, k)
        }  # fmt: skip
        parts = [self.sizes[i][t] for t in sorted(members) if t in self.sizes[i]]
        if not parts:
            return Size.of(None, self.grids[i]) if from_zero else None
        if len(parts) == 1:
            return parts[0]

        def total(name: str) -> float | None:
            values = [getattr(p, name) for p in parts]
            return None if None in values else sum(values)

        return Size(total("volume_ml"), total("diameter_mm"), total("surface_mm2"), self.grids[i])

    def change_to(self, track: int, k: int) -> dict[str, Any] | None:
        """The track's change from the previous session where it (or what merged into it) had a size."""
        if track not in self.sizes[k]:
            return None
        earlier = [j for j in range(k) if self.size_at(track, j, k) is not None]
        if not earlier:
            return None
        j = earlier[-1]
        days = self.days[k] - self.days[j]
        return {
            "from_session": self.sessions[j].session,
            "to_session": self.sessions[k].session,
            **assess(self.size_at(track, j, k), self.sizes[k][track], days, self.params.growth),
        }

    def regrowth(self, track: int, start: int, from_zero: bool = False) -> tuple[dict | None, dict | None]:
        """The first growth of ``track`` after session ``start`` beyond measurement noise and at least
        recurrence_growth_percent over its smallest size since ``start`` (scans at least the minimum interval
        earlier); ``from_zero``: a session where the track is absent counts as size zero (a lesion that appeared).
        Second: growth that is beyond noise but for a lesion still under the measurable size (equivocal)."""
        growth, percent = self.params.growth, self.params.recurrence_growth_percent
        small = None
        for j in range(start + 1, self.last + 1):
            if track not in self.sizes[j]:
                continue
            after = self.size_at(track, j, j)
            if after.volume_ml == 0:
                continue
            refs = [
                (i, self.size_at(track, i, j, from_zero))
                for i in range(start, j)
                if self.days[j] - self.days[i] >= growth.min_interval_days
            ]
            refs = [(i, size) for i, size in refs if size is not None]
            if not refs:
                continue
            i, ref = min(refs, key=lambda r: (r[1].volume_ml, -r[0]))
            change = assess(ref, after, self.days[j] - self.days[i], growth)
            if after.volume_ml < ref.volume_ml * (1 + percent / 100):
                continue
            found = {"track_id": track, "from": i, "to": j, "change": change}
            if change["growth_beyond_noise"]:
                return found, None
            if change["failed_criteria"] == ["measurable"] and small is None:
                small = found
        return None, small

    def _small(self, found: dict[str, Any]) -> str:
        size = self.sizes[found["to"]][found["track_id"]]
        return (
            f"track {found['track_id']} grew back to {size.diameter_mm:.1f} mm at session "
            f"{self.sessions[found['to']].session}, under the measurable {self.params.growth.min_diameter_mm:g} mm: "
            "equivocal, re-scan"
        )

    def _grew(self, found: dict[str, Any], since: int | None = None) -> str:
        after = "" if since is None else f" ({self.days[found['to']] - self.days[since]:g} days after the treatment)"
        return (
            f"track {found['track_id']} grew from session {self.sessions[found['from']].session} to session "
            f"{self.sessions[found['to']].session}{after}: {describe(found['change'])}"
        )

    def _assessable_after(self, k: int) -> bool:
        return self.days[self.last] - self.days[k] >= self.params.growth.min_interval_days

    # ---- the facts -------------------------------------------------------------------------------------------
    def facts(self, responses: list[dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
        """Every fact of :data:`FACTS`, with its evidence, and the warnings that come with them (``responses``:
        the RANO-BM entries of the sessions)."""
        if self.last == 0:
            one = "one session: no change over time to judge"
            return {f: _fact(None, one) for f in FACTS}, []
        warnings: list[str] = []
        facts = {
            "rapid_growth": self._rapid_growth(warnings),
            "cns_progression": self._cns_progression(responses[self.last], warnings),
            "local_recurrence_after_resection": self._local_recurrence_after_resection(warnings),
            "recurrence_after_srs": self._recurrence("srs", warnings),
            "recurrence_after_wbrt": self._recurrence("wbrt", warnings),
            "distant_intracranial_progression_after_srs": self._distant("srs"),
            "distant_intracranial_progression_after_wbrt": self._distant("wbrt"),
            "solitary_metastasis_at_resection": self._solitary(),
        }
        return facts, warnings

    def _rapid_growth(self, warnings: list[str]) -> dict[str, Any]:
        """A lesion growing beyond noise at >= rapid_growth_percent_per_month up to the last session, from the
        latest scan at least the minimum interval earlier; a treated lesion's growth leaves it undetermined."""
        last, growth, limit = self.last, self.params.growth, self.params.rapid_growth_percent_per_month
        name = self.sessions[last].session
        judged, rapid, unjudged, seen = [], [], [], set()
        for track in sorted(self.sizes[last]):
            if self.sizes[last][track].volume_ml == 0 or track in seen:
                continue
            seen |= self.group(track, last)  # a split lesion is judged once, whole
            size = self.size_at(track, last, last)
            refs = [k for k in range(last) if self.days[last] - self.days[k] >= growth.min_interval_days
                    and self.size_at(track, k, last) is not None]  # fmt: skip
            ref = self.size_at(track, refs[-1], last) if refs else None
            if ref is None:
                unjudged.append(f"track {track} (not measured {growth.min_interval_days:g} days or more before)")
            elif ref.volume_ml == 0:
                unjudged.append(f"track {track} (back from nothing since session {self.sessions[refs[-1]].session})")
            elif size.diameter_mm is None or size.diameter_mm < growth.min_diameter_mm:
                unjudged.append(f"track {track} (under the measurable {growth.min_diameter_mm:g} mm)")
            else:
                change = assess(ref, size, self.days[last] - self.days[refs[-1]], growth)
                judged.append(track)
                rate = change["growth_percent_per_month"]
                if change["growth_beyond_noise"] and rate is not None and rate >= limit:
                    rapid.append({"track_id": track, "from": refs[-1], "to": last, "change": change})
        rule = f"rapid from {limit:g} % per month beyond measurement noise, an assumption"
        untreated = [r for r in rapid if not self.treated_before(r["track_id"], last)]
        treated = [r for r in rapid if r not in untreated]
        not_judged = f"; not judged: {', '.join(unjudged)}" if unjudged else ""
        if untreated:
            return _fact(True, "; ".join(self._grew(r) for r in untreated) + f" ({rule})")
        if treated:
            kinds = sorted({tr.kind for r in treated for tr in self.treated_before(r["track_id"], last)})
            mimics = " / ".join(dict.fromkeys(MIMICS[k] for k in kinds))
            doubt = (
                f"rapid_growth undetermined: a treated ({', '.join(k.upper() for k in kinds)}) lesion grew: "
                + "; ".join(self._grew(r) for r in treated)
                + f": recurrence or treatment effect / {mimics}: {CONFIRM}"
            )
            warnings.append(doubt)
            return _fact(None, doubt + f" ({rule})", doubt=doubt, if_recurrence_confirmed={"yes": True, "no": False})
        if judged:
            return _fact(
                False,
                f"no lesion of session {name} grew beyond measurement noise at >= {limit:g} % per month "
                f"(tracks {', '.join(map(str, judged))} judged){not_judged}",
            )
        return _fact(None, f"no lesion of session {name} could be judged{not_judged}")

    def _cns_progression(self, latest: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
        """The RANO-BM response of the last session: PD is progression, CR / PR / SD are not (one document never
        says both); a PD resting on irradiated lesions' growth is undetermined until confirmed."""
        name, response = self.sessions[self.last].session, latest["response"]
        reasons = "; ".join(latest["reasons"])
        progressed = response == "PD" or (response == "baseline" and latest["progression_by"])
        immune = latest["progression_by"] == ["new_lesion"] and self._immunotherapy_before(self.last)
        if progressed and latest.get("treatment_effect_possible") and latest.get("confirmed") is not True:
            doubt = (
                f"cns_progression undetermined: the progression of session {name} rests on irradiated lesions "
                f"({reasons}): recurrence or treatment effect / radiation necrosis: {CONFIRM}"
            )
            warnings.append(doubt)
            return _fact(None, doubt, doubt=doubt, if_recurrence_confirmed={"yes": True, "no": False})
        if progressed and immune and response == "PD" and latest.get("confirmed") is not True:
            return _fact(None, f"session {name}: RANO-BM PD by new lesion(s) after immunotherapy, awaiting "
                               f"confirmation on a later scan (iRANO) ({reasons})")  # fmt: skip
        if response == "PD":
            return _fact(True, f"session {name}: RANO-BM PD ({reasons})")
        if response in ("CR", "PR", "SD"):
            return _fact(False, f"session {name}: RANO-BM {response}, no new lesion, no non-target progression")
        if progressed:
            return _fact(True, f"session {name}, a new baseline: {reasons}")
        if response == "baseline":
            return _fact(None, f"session {name} is a new baseline: no response yet ({reasons})")
        return _fact(None, f"session {name}: RANO-BM {response} ({reasons})")

    def _immunotherapy_before(self, k: int) -> bool:
        return any("immunotherapy" in s.treatment for s in self.sessions[:k])

    def _doubt(self, fact: str, kind: str, found: list[tuple[Treatment, dict[str, Any]]]) -> str:
        early = self.params.treatment_effect_early_months * DAYS_PER_MONTH
        lines = []
        for treatment, grown in found:
            since = self.days[grown["to"]] - self.days[treatment.session]
            note = ""
            if kind == "srs" and since <= early:
                note = (
                    f"; early: likely transient enlargement ({since:g} days after SRS, within "
                    f"treatment_effect_early_months = {self.params.treatment_effect_early_months:g})"
                )
            lines.append(self._grew(grown, treatment.session) + note)
        return (
            f"{fact} undetermined: a treated lesion grew after {kind.upper()}: "
            + "; ".join(lines)
            + f": recurrence or treatment effect / {MIMICS[kind]}: {CONFIRM}"
        )

    def _recurrence(self, kind: str, warnings: list[str]) -> dict[str, Any]:
        """A lesion treated by ``kind`` growing beyond noise after it: undetermined (recurrence or treatment
        effect) until recurrence_confirmed decides; false only when no treated lesion grew."""
        fact = f"recurrence_after_{kind}"
        name = self.sessions[self.last].session
        given = [tr for tr in self.treatments if tr.kind == kind and tr.session < self.last]
        if not given:
            return _fact(None, f"no {kind.upper()} recorded in the timeline before session {name}")
        if not any(tr.tracks for tr in given):
            return _fact(None, f"no lesion was present at the {kind.upper()} session(s): nothing treated to recur")
        found, small = [], []
        for tr in given:
            for t in sorted(self.covered(tr)):
                grown, equivocal = self.regrowth(t, tr.session)
                found += [(tr, grown)] if grown else []
                small += [equivocal] if equivocal else []
        if found:
            doubt = self._doubt(fact, kind, found)
            warnings.append(doubt)
            return _fact(None, doubt, doubt=doubt, if_recurrence_confirmed={"yes": True, "no": False})
        treated = ", ".join(f"tracks {', '.join(map(str, sorted(tr.tracks)))} after session "
                            f"{self.sessions[tr.session].session}" for tr in given)  # fmt: skip
        if small:
            return _fact(None, f"{kind.upper()} ({treated}): " + "; ".join(self._small(g) for g in small))
        if not any(self._assessable_after(tr.session) for tr in given):
            return _fact(
                None,
                f"{kind.upper()} ({treated}): no scan {self.params.growth.min_interval_days:g} days or more after it",
            )
        return _fact(False, f"{kind.upper()} ({treated}): no treated lesion grew beyond measurement noise")

    def _distant(self, kind: str) -> dict[str, Any]:
        """After ``kind``: an unequivocal new lesion, or an untreated lesion growing beyond noise (no treatment
        effect to doubt)."""
        name = self.sessions[self.last].session
        given = [tr for tr in self.treatments if tr.kind == kind and tr.session < self.last]
        if not given:
            return _fact(None, f"no {kind.upper()} recorded in the timeline before session {name}")
        minimum = self.params.response.new_lesion_min_diameter_mm
        found, foci = [], []
        for tr in given:
            for t, track in sorted(self.tracks.items()):
                if track.split_from is not None or t in tr.tracks:  # a fragment is judged with its parent
                    continue
                if t in self.sizes[tr.session] and self.sizes[tr.session][t].volume_ml > 0:  # present, untreated
                    grown, _ = self.regrowth(t, tr.session)
                    if grown and not self.holds(t, grown["to"]) & tr.tracks:
                        found.append(f"untreated {self._grew(grown)}")
                    continue
                # new after the treatment, or back after it had resolved before (whatever merges later)
                lengths = [(k, self.sizes[k][t].diameter_mm or 0.0) for k in range(tr.session + 1, self.last + 1)
                           if t in self.sizes[k] and self.sizes[k][t].volume_ml > 0]  # fmt: skip
                seen = [(k, d) for k, d in lengths if d >= minimum]
                if seen:
                    k, length = seen[0]
                    found.append(f"new lesion (track {t}) at session {self.sessions[k].session}, {length:.1f} mm "
                                 f"(>= {minimum:g} mm)")  # fmt: skip
                elif lengths:
                    foci.append(f"track {t}, {lengths[-1][1]:.1f} mm")
        after = ", ".join(self.sessions[tr.session].session for tr in given)
        if found:
            return _fact(True, f"after {kind.upper()} following session(s) {after}: " + "; ".join(found))
        equivocal = f"; equivocal new focus under {minimum:g} mm ({', '.join(foci)}): re-scan" if foci else ""
        return _fact(
            False,
            f"after {kind.upper()} following session(s) {after}: no unequivocal new lesion, no untreated lesion grew"
            + equivocal,
        )

    def _local_recurrence_after_resection(self, warnings: list[str]) -> dict[str, Any]:
        """After surgery: a resected lesion growing back, or a lesion appearing at a resection cavity's rim,
        beyond noise: undetermined (recurrence or post-operative / treatment change) until confirmed."""
        fact, name = "local_recurrence_after_resection", self.sessions[self.last].session
        given = [tr for tr in self.treatments if tr.kind == "surgery" and tr.session < self.last]
        if not given:
            return _fact(None, f"no surgery recorded before session {name}")
        found, small = [], []
        for tr in given:
            covered = self.covered(tr)
            rim = set()
            for k in range(tr.session + 1, self.last + 1):
                ids = {lid for c in self.documents[k]["resection_cavities"] for lid in (c.get("rim_lesion_ids") or [])}
                rim |= {e["track_id"] for e in self.entries[k] if e["lesion_id"] in ids}
            for t in sorted(covered | rim):
                grown, equivocal = self.regrowth(t, tr.session, from_zero=True)
                found += [(tr, grown)] if grown else []
                small += [equivocal] if equivocal else []
        if found:
            doubt = self._doubt(fact, "surgery", found)
            warnings.append(doubt)
            return _fact(None, doubt, doubt=doubt, if_recurrence_confirmed={"yes": True, "no": False})
        cavity_known = any(d["study"].get("resection_cavity_count") is not None for d in self.documents[1:])
        if not any(tr.tracks for tr in given) and not cavity_known:
            return _fact(None, "no lesion at the surgery session and no resection-cavity label to find its rim")
        if small:
            return _fact(None, "after surgery: " + "; ".join(self._small(g) for g in small))
        if not any(self._assessable_after(tr.session) for tr in given):
            return _fact(None, f"no scan {self.params.growth.min_interval_days:g} days or more after the surgery")
        return _fact(False, "no resected lesion grew back and no lesion grew at a cavity rim beyond measurement noise")

    def _solitary(self) -> dict[str, Any]:
        """Exactly one brain metastasis at the session of the latest surgery (the review's 'solitary')."""
        given = [tr for tr in self.treatments if tr.kind == "surgery" and tr.session < self.last]
        if not given:
            return _fact(None, f"no surgery recorded before session {self.sessions[self.last].session}")
        k = given[-1].session
        study, name = self.documents[k]["study"], self.sessions[k].session
        count, discarded = study["lesion_count"], study.get("discarded_core_component_count") or 0
        if count == 0:
            return _fact(None, f"no lesion at session {name}, before the surgery")
        if count > 1:
            return _fact(False, f"{count} lesions at session {name}, before the surgery")
        if discarded:
            return _fact(
                None,
                f"one lesion at session {name}, and {discarded} core component(s) too small to count that might be "
                "metastases",
            )
        return _fact(True, f"one lesion at session {name}, before the surgery")
