"""Follow-up vignettes a neuroradiologist would sign (issue 21): growth after SRS early and late, untreated and
new lesions after SRS, growth within measurement noise, non-target progression, a new lesion after a
sub-centimetre baseline, the post-operative re-baseline, steroids and the confirming scan; each read through
to the Table 1 verdicts it feeds. Timelines are generated here: balls of radius r on a 1 mm grid measure
2r + 1 mm (axial longest diameter)."""

from __future__ import annotations

import re

import pytest

import brainmets
from brainmets.errors import InputDataError

from .test_followup import A, B, C, D, responses, timeline

CONTROLLED = {"extracranial_disease": "controlled"}


def criteria(result: dict) -> dict:
    return {c["id"]: c["met"] for m in result["modalities"].values() for c in m["criteria"]}


def indicate_last(tmp_path, path, name, clinical=None):
    """The indication document of a timeline's last session, with its follow-up."""
    followup = brainmets.follow_up(path)
    k = len(followup["sessions"])
    last = brainmets.measure(tmp_path / f"{name}-{k}.nii.gz", subject="01", session=str(k))
    return followup, brainmets.indicate(last, {"subject": "01", **(clinical or {})}, followup=followup)


def test_early_growth_after_srs_within_noise_is_no_recurrence(tmp_path):
    """15 -> 17 mm six weeks after SRS: two voxels, within noise: RANO-BM SD, no recurrence, no rapid growth."""
    path = timeline(tmp_path, [("2024-01-01", [(A, 7)], {"treatment": "srs"}), ("2024-02-12", [(A, 8)], {})])
    followup, result = indicate_last(tmp_path, path, "timeline.tsv")
    facts = followup["facts"]
    assert responses(followup) == ["baseline", "SD"]
    assert facts["recurrence_after_srs"]["value"] is False and facts["rapid_growth"]["value"] is False
    assert facts["cns_progression"]["value"] is False
    met = criteria(result)
    assert met["table1.wbrt.5"] is not True and met["table1.surgery.4"] is False


def test_early_growth_after_srs_beyond_noise_is_undetermined_until_confirmed(tmp_path):
    """15 -> 23 mm six weeks after SRS: recurrence or transient enlargement. Recurrence after SRS and rapid
    growth are undetermined (never true), with the doubt in the warnings and the confirmation conflict; the
    clinical recurrence_confirmed decides them."""
    path = timeline(tmp_path, [("2024-01-01", [(A, 7)], {"treatment": "srs"}), ("2024-02-12", [(A, 11)], {})])
    followup, result = indicate_last(tmp_path, path, "timeline.tsv")
    facts = followup["facts"]
    assert facts["recurrence_after_srs"]["value"] is None and facts["rapid_growth"]["value"] is None
    doubt = facts["recurrence_after_srs"]["doubt"]
    assert "early: likely transient enlargement" in doubt and "42 days after SRS" in doubt
    assert "recurrence or treatment effect / radiation necrosis: confirm by follow-up, perfusion/PET or tissue" in doubt
    assert facts["distant_intracranial_progression_after_srs"]["value"] is False
    rano = followup["rano_bm"][1]
    assert rano["response"] == "PD" and any("were irradiated" in r for r in rano["reasons"])
    met = criteria(result)
    assert met["table1.wbrt.5"] is None and met["table1.surgery.4"] is None  # undetermined, never met
    assert doubt in result["warnings"]
    assert "conflict.recurrence_confirmation" in [c["id"] for c in result["conflicts"]]
    assert result["followup"]["facts"]["recurrence_after_srs"]["source"].startswith("unknown")
    tissue = brainmets.indicate(
        brainmets.measure(tmp_path / "timeline.tsv-2.nii.gz", subject="01", session="2"),
        {"subject": "01", "recurrence_confirmed": "yes"},
        followup=followup,
    )
    assert criteria(tissue)["table1.wbrt.5"] is True and criteria(tissue)["table1.surgery.4"] is True
    used = tissue["followup"]["facts"]["recurrence_after_srs"]
    assert used["used"] is True and "recurrence_confirmed (yes)" in used["source"]
    assert "conflict.recurrence_confirmation" not in [c["id"] for c in tissue["conflicts"]]
    necrosis = brainmets.indicate(
        brainmets.measure(tmp_path / "timeline.tsv-2.nii.gz", subject="01", session="2"),
        {"subject": "01", "recurrence_confirmed": "no"},
        followup=followup,
    )
    assert criteria(necrosis)["table1.surgery.4"] is False and necrosis["facts"]["recurrence_after_srs"] is False


def test_late_growth_after_srs_is_recurrence_or_radiation_necrosis(tmp_path):
    """Shrinking after SRS, then growing beyond noise eight months after it: undetermined, not worded early."""
    path = timeline(
        tmp_path,
        [
            ("2024-01-01", [(A, 7)], {"treatment": "srs"}),
            ("2024-04-01", [(A, 5)], {}),
            ("2024-09-01", [(A, 10)], {}),
        ],
    )
    facts = brainmets.follow_up(path)["facts"]
    doubt = facts["recurrence_after_srs"]["doubt"]
    assert facts["recurrence_after_srs"]["value"] is None and "early" not in doubt
    assert "from session 2 to session 3" in doubt and "radiation necrosis" in doubt  # from its nadir


def test_untreated_and_new_lesions_after_srs_are_distant_progression_not_recurrence(tmp_path):
    """SRS to lesion 1 only: lesion 2, never irradiated, grows 13 -> 21 mm, and a lesion new after SRS grows
    7 -> 10 mm. Neither is recurrence after SRS; both are distant intracranial progression, which WBRT (vi)
    reads."""
    path = timeline(
        tmp_path,
        [
            ("2024-01-01", [(A, 7), (B, 6)], {"treatment": "srs", "treated_lesions": "1"}),
            ("2024-03-01", [(A, 6.5), (B, 10), (C, 3)], {}),
            ("2024-05-01", [(A, 6.5), (B, 10), (C, 4.5)], {}),
        ],
    )
    followup, result = indicate_last(tmp_path, path, "timeline.tsv")
    facts = followup["facts"]
    assert followup["sessions"][0]["treated_track_ids"] == {"srs": [1]}
    assert facts["recurrence_after_srs"]["value"] is False
    distant = facts["distant_intracranial_progression_after_srs"]
    assert distant["value"] is True and "untreated track 2 grew" in distant["evidence"]
    assert "new lesion (track 3)" in distant["evidence"]
    assert facts["rapid_growth"]["value"] is False  # lesion 2's growth was two to four months ago
    assert criteria(result)["table1.wbrt.5"] is True
    assert "recurrence_after_srs" not in [w.split(" ")[0] for w in followup["warnings"]]


def test_noise_level_growth_of_a_small_focus_is_not_rapid_growth(tmp_path):
    """A 4 mm focus read as 5 mm ten days later was '1438 % per month' and met surgery (v)."""
    path = timeline(tmp_path, [("2024-01-01", [(A, 1.5)], {}), ("2024-01-11", [(A, 2)], {})])
    followup = brainmets.follow_up(path, min_lesion_volume_mm3=5)
    assert followup["facts"]["rapid_growth"]["value"] is None
    assert "could be judged" in followup["facts"]["rapid_growth"]["evidence"]
    change = followup["tracks"][0]["changes"][0]
    assert change["growth_beyond_noise"] is False and change["growth_percent_per_month"] > 25  # rapid, if it were real
    last = brainmets.measure(tmp_path / "timeline.tsv-2.nii.gz", subject="01", session="2", min_lesion_volume_mm3=5)
    assert criteria(brainmets.indicate(last, {"subject": "01"}, followup=followup))["table1.surgery.4"] is not True
    clear = timeline(tmp_path, [("2024-01-01", [(A, 5.5)], {}), ("2024-03-01", [(A, 11)], {})], name="clear.tsv")
    fact = brainmets.follow_up(clear)["facts"]["rapid_growth"]
    assert fact["value"] is True and "± " in fact["evidence"]  # diameter doubled in two months


def test_unequivocal_non_target_progression_is_pd(tmp_path):
    """A stable 21 mm target and a 9 mm non-target growing to 26 mm: PD, and CNS progression."""
    path = timeline(tmp_path, [("2024-01-01", [(A, 10), (B, 4)], {}), ("2024-03-01", [(A, 10), (B, 12.5)], {})])
    followup = brainmets.follow_up(path)
    base, second = followup["rano_bm"]
    assert base["target_track_ids"] == [1] and base["non_target_track_ids"] == [2]
    assert second["response"] == "PD" and second["progression_by"] == ["non_target"]
    assert second["non_target_progression_track_ids"] == [2]
    assert followup["facts"]["cns_progression"]["value"] is True
    assert [r["rano_bm_role"] for r in followup["lesions"] if r["session"] == "2"] == ["target", "non_target"]


def test_two_doubling_non_targets_among_seven_measurable_lesions_are_pd(tmp_path):
    spots = [(x, y, 0) for y in (-35, 0, 35) for x in (-40, -10, 20, 45)][:7]
    radii = [9, 8.5, 8, 7.5, 7, 5.5, 5]
    grown = [9, 8.5, 8, 7.5, 7, 11.5, 11]
    path = timeline(tmp_path, [("2024-01-01", list(zip(spots, radii)), {}),
                               ("2024-03-01", list(zip(spots, grown)), {})])  # fmt: skip
    base, second = brainmets.follow_up(path)["rano_bm"]
    assert len(base["target_track_ids"]) == 5 and len(base["non_target_track_ids"]) == 2
    assert second["percent_change_from_nadir"] == pytest.approx(0, abs=1)  # the targets did not change
    assert second["response"] == "PD" and sorted(second["non_target_progression_track_ids"]) == [6, 7]


def test_a_new_lesion_after_a_sub_centimetre_baseline_is_pd(tmp_path):
    path = timeline(tmp_path, [("2024-01-01", [(A, 3)], {}), ("2024-03-01", [(A, 3), (D, 6)], {})])
    followup = brainmets.follow_up(path)
    assert responses(followup) == ["baseline", "PD"] and followup["rano_bm"][1]["progression_by"] == ["new_lesion"]
    assert followup["facts"]["cns_progression"]["value"] is True  # the two never contradict
    stable = timeline(tmp_path, [("2024-01-01", [(A, 3)], {}), ("2024-03-01", [(A, 3)], {})], name="s.tsv")
    quiet = brainmets.follow_up(stable)
    assert responses(quiet) == ["baseline", "NE"] and quiet["facts"]["cns_progression"]["value"] is None


def test_a_resection_starts_a_new_baseline_and_a_rim_nodule_is_progression(tmp_path):
    """The first post-operative scan was 'PR -77 %' and a later rim nodule '0 % above the nadir 0.0 mm'."""
    path = timeline(
        tmp_path,
        [
            ("2024-01-01", [(A, 12)], {"treatment": "surgery"}),
            ("2024-02-01", [], {"cavities": [(A, 12)]}),
            ("2024-05-01", [((A[0], A[1] + 15, A[2]), 5.5)], {"cavities": [(A, 12)]}),
        ],
    )
    followup = brainmets.follow_up(path)
    assert responses(followup) == ["baseline", "baseline", "PD"]
    rebaseline, nodule = followup["rano_bm"][1:]
    assert rebaseline["baseline_session"] == "2" and "new baseline" in rebaseline["reasons"][0]
    assert nodule["progression_by"] == ["new_lesion"] and nodule["nadir_sum_mm"] == 0
    facts = followup["facts"]
    assert facts["local_recurrence_after_resection"]["value"] is None  # a rim nodule: recurrence or post-op change
    assert facts["solitary_metastasis_at_resection"]["value"] is True
    _, result = indicate_last(tmp_path, path, "timeline.tsv", {"recurrence_confirmed": "yes"})
    assert criteria(result)["table1.srs.3"] is True  # local recurrence after resection of a solitary metastasis
    assert any(a.startswith("solitary (SRS (iv))") for a in result["assumptions"])


def test_srs_iv_needs_a_solitary_metastasis(tmp_path):
    """Two lesions resected at one operation, then a rim recurrence confirmed: not 'solitary'."""
    path = timeline(
        tmp_path,
        [
            ("2024-01-01", [(A, 12), (D, 6)], {"treatment": "surgery"}),
            ("2024-02-01", [], {"cavities": [(A, 12), (D, 6)]}),
            ("2024-05-01", [((A[0], A[1] + 15, A[2]), 5.5)], {"cavities": [(A, 12), (D, 6)]}),
        ],
    )
    followup, result = indicate_last(tmp_path, path, "timeline.tsv", {"recurrence_confirmed": "yes"})
    assert followup["facts"]["solitary_metastasis_at_resection"]["value"] is False
    assert criteria(result)["table1.srs.3"] is False


@pytest.mark.parametrize(
    "steroids, response, radiographic",
    [("none", "CR", False), ("physiological", "CR", False), ("stable", "PR", False), ("", "CR", True)],
)
def test_complete_response_needs_no_steroids(tmp_path, steroids, response, radiographic):
    """CR on steroids is PR at best; without a steroid entry the CR is imaging alone (radiographic only), even
    with a clinical status."""
    options = {"steroids": steroids, "clinical_status": "stable"}
    path = timeline(tmp_path, [("2024-01-01", [(A, 8)], {}), ("2024-03-01", [], options)])
    second = brainmets.follow_up(path)["rano_bm"][1]
    assert second["response"] == response and second["radiographic_only"] is radiographic
    assert second["steroids"] == (steroids or None)
    if steroids == "stable":
        assert any("PR at best" in r for r in second["reasons"])


def test_the_confirming_scan_is_confirmed_and_stays_so(tmp_path):
    path = timeline(
        tmp_path,
        [
            ("2024-01-01", [(A, 10)], {}),
            ("2024-03-01", [(A, 6)], {}),
            ("2024-04-01", [(A, 6)], {}),  # 31 days later: confirms the PR
            ("2024-06-01", [(A, 10)], {}),  # PD afterwards does not undo it
        ],
    )
    followup = brainmets.follow_up(path)
    assert responses(followup) == ["baseline", "PR", "PR", "PD"]
    assert [r["confirmed"] for r in followup["rano_bm"]] == [None, True, True, None]
    assert any("confirmed: PR or CR since session 2" in r for r in followup["rano_bm"][2]["reasons"])


def test_every_follow_up_threshold_is_stated_with_its_source(tmp_path):
    path = timeline(tmp_path, [("2024-01-01", [(A, 7)], {}), ("2024-03-01", [(A, 7)], {})])
    stated = " ".join(brainmets.follow_up(path)["assumptions"])
    section = brainmets.load_config()["followup"]
    names = [k for k in section if not isinstance(section[k], dict)]
    names += [f"rano_bm.{k}" for k in section["rano_bm"]] + [f"volumetric.{k}" for k in section["volumetric"]]
    assert [n for n in names if n not in stated] == []
    assert "Lin NU et al., Lancet Oncol 2015" in stated and "Patel TR et al., AJNR 2011" in stated


@pytest.mark.parametrize(
    "cell, treatment, message",
    [
        ("7", "srs", "lesion(s) 7 are not in the session's lesion table"),
        ("1", "wbrt", "the row's treatment has no srs or surgery"),
        ("one", "srs", "'one' is not a lesion id"),
        ("wbrt:1", "srs", "names 'wbrt', not a treatment of the row"),
        ("1;1", "srs", "lesion 1 is listed twice"),
    ],
)
def test_treated_lesions_are_checked(tmp_path, cell, treatment, message):
    path = timeline(
        tmp_path, [("2024-01-01", [(A, 7)], {"treatment": treatment, "treated_lesions": cell}), ("2024-03-01", [], {})]
    )
    with pytest.raises(InputDataError, match=re.escape(message)):
        brainmets.follow_up(path)


def test_every_fact_of_time_is_a_clinical_column_the_indications_read():
    from brainmets.indications.engine import clinical_columns
    from brainmets.longitudinal.timefacts import FACTS

    assert set(FACTS) <= set(clinical_columns())


def test_lesions_that_merge_are_measured_against_the_sum_of_their_parts(tmp_path):
    """Two 9 mm non-targets that each grow a little and touch: 19 mm against 9 + 9 mm is no progression, and
    the merged volume is compared with both parts' volumes (no 'rapid growth')."""
    path = timeline(
        tmp_path,
        [
            ("2024-01-01", [(A, 10), ((-6, 20, 0), 4), ((8, 20, 0), 4)], {}),
            ("2024-03-01", [(A, 10), ((-4.5, 20, 0), 4.5), ((4.5, 20, 0), 4.5)], {}),
        ],
    )
    followup = brainmets.follow_up(path)
    assert [e for e in followup["lesions"] if e["session"] == "2" and e["event"] == "merged"]
    assert responses(followup) == ["baseline", "SD"]
    assert followup["facts"]["rapid_growth"]["value"] is False


def test_progression_across_a_resection_is_not_hidden_by_the_new_baseline(tmp_path):
    """One lesion resected; three months later the first scan after surgery shows two new lesions: it is the new
    baseline, and progression all the same."""
    path = timeline(
        tmp_path,
        [
            ("2024-01-01", [(A, 10)], {"treatment": "surgery"}),
            ("2024-04-01", [(B, 6), (D, 6)], {"cavities": [(A, 10)]}),
        ],
    )
    followup = brainmets.follow_up(path)
    rebaseline = followup["rano_bm"][1]
    assert rebaseline["response"] == "baseline" and rebaseline["progression_by"] == ["new_lesion"]
    assert rebaseline["new_lesion_count"] == 2
    assert followup["facts"]["cns_progression"]["value"] is True


def test_a_treated_lesion_back_below_the_measurable_size_is_equivocal_not_no_recurrence(tmp_path):
    path = timeline(
        tmp_path,
        [("2024-01-01", [(A, 7)], {"treatment": "srs"}), ("2024-04-01", [], {}), ("2024-10-01", [(A, 3.5)], {})],
    )
    facts = brainmets.follow_up(path)["facts"]
    assert facts["recurrence_after_srs"]["value"] is None
    assert "under the measurable 10 mm: equivocal, re-scan" in facts["recurrence_after_srs"]["evidence"]
    assert facts["distant_intracranial_progression_after_srs"]["value"] is False  # it is the treated lesion
    assert facts["rapid_growth"]["value"] is None  # back from nothing: no rate


def test_growth_of_a_resected_lesion_is_doubted_as_rapid_growth_too(tmp_path):
    path = timeline(
        tmp_path,
        [
            ("2024-01-01", [(A, 12)], {"treatment": "surgery"}),
            ("2024-02-01", [((A[0], A[1] + 14, A[2]), 5)], {"cavities": [(A, 12)]}),
            ("2024-04-01", [((A[0], A[1] + 14, A[2]), 9)], {"cavities": [(A, 12)]}),
        ],
    )
    facts = brainmets.follow_up(path)["facts"]
    assert facts["rapid_growth"]["value"] is None and "post-operative change" in facts["rapid_growth"]["doubt"]
    assert facts["local_recurrence_after_resection"]["value"] is None


def test_equivocal_progression_after_srs_is_confirmed_by_further_growth(tmp_path):
    """A PD resting on irradiated growth is undetermined progression; further growth >= 5 mm at a scan >= 4
    weeks later confirms it, at both scans."""
    sessions = [("2024-01-01", [(A, 7)], {"treatment": "srs"}), ("2024-04-01", [(A, 10)], {})]
    first = brainmets.follow_up(timeline(tmp_path, sessions, name="first.tsv"))
    assert first["rano_bm"][1]["treatment_effect_possible"] and first["rano_bm"][1]["confirmed"] is None
    assert first["facts"]["cns_progression"]["value"] is None
    grown = brainmets.follow_up(timeline(tmp_path, [*sessions, ("2024-06-01", [(A, 13)], {})], name="grown.tsv"))
    assert [r["confirmed"] for r in grown["rano_bm"]] == [None, True, True]
    assert grown["facts"]["cns_progression"]["value"] is True
    shrunk = brainmets.follow_up(timeline(tmp_path, [*sessions, ("2024-06-01", [(A, 8)], {})], name="shrunk.tsv"))
    assert shrunk["rano_bm"][1]["confirmed"] is False and shrunk["facts"]["cns_progression"]["value"] is False
    _, necrosis = indicate_last(tmp_path, tmp_path / "first.tsv", "first.tsv", {"recurrence_confirmed": "no"})
    assert necrosis["facts"]["cns_progression"] is False


def test_a_small_new_focus_after_srs_is_named_as_equivocal(tmp_path):
    path = timeline(tmp_path, [("2024-01-01", [(A, 7)], {"treatment": "srs"}), ("2024-03-01", [(A, 7), (D, 1.5)], {})])
    distant = brainmets.follow_up(path, min_lesion_volume_mm3=5)["facts"]["distant_intracranial_progression_after_srs"]
    assert distant["value"] is False and "equivocal new focus under 5 mm (track 2" in distant["evidence"]


def test_an_irradiated_lesion_back_after_a_complete_response_is_equivocal_progression(tmp_path):
    """SRS, complete response, then the lesion back at 13 mm where it was: PD by RANO-BM, but it may be radiation
    necrosis: CNS progression and recurrence undetermined, not distant progression."""
    path = timeline(
        tmp_path,
        [("2024-01-01", [(A, 7)], {"treatment": "srs"}), ("2024-04-01", [], {}), ("2024-10-01", [(A, 6)], {})],
    )
    followup = brainmets.follow_up(path)
    back = followup["rano_bm"][2]
    assert back["response"] == "PD" and back["treatment_effect_possible"] is True
    facts = followup["facts"]
    assert facts["cns_progression"]["value"] is None and facts["recurrence_after_srs"]["value"] is None
    assert facts["distant_intracranial_progression_after_srs"]["value"] is False


def test_irradiated_growth_across_a_resection_is_equivocal_progression(tmp_path):
    """SRS to both lesions, lesion 1 resected; lesion 2 grows 13 -> 21 mm across the operation."""
    path = timeline(
        tmp_path,
        [
            ("2024-01-01", [(A, 7), (B, 6)], {"treatment": "srs,surgery", "treated_lesions": "surgery:1"}),
            ("2024-04-01", [(B, 10)], {"cavities": [(A, 7)]}),
        ],
    )
    followup = brainmets.follow_up(path)
    rebaseline = followup["rano_bm"][1]
    assert rebaseline["response"] == "baseline" and rebaseline["progression_by"] == ["non_target"]
    assert rebaseline["treatment_effect_possible"] is True
    assert followup["facts"]["cns_progression"]["value"] is None


def test_a_lesion_new_after_srs_stays_distant_progression_when_it_later_absorbs_a_treated_one(tmp_path):
    path = timeline(
        tmp_path,
        [
            ("2024-01-01", [(A, 5)], {"treatment": "srs"}),
            ("2024-03-01", [(A, 5), ((-20, -6, 0), 6)], {}),
            ("2024-05-01", [((-20, -11, 0), 11)], {}),
        ],
    )
    followup = brainmets.follow_up(path)
    assert [e["event"] for e in followup["lesions"] if e["session"] == "3"] == ["merged", "merged"]
    distant = followup["facts"]["distant_intracranial_progression_after_srs"]
    assert distant["value"] is True and "new lesion (track 2)" in distant["evidence"]


def test_a_lesion_that_splits_is_judged_whole(tmp_path):
    """An untreated 13 mm lesion becomes two 15 mm pieces in two months: growth of the whole, which is rapid;
    both pieces keep the target's role."""
    path = timeline(
        tmp_path, [("2024-01-01", [(A, 6)], {}), ("2024-03-01", [((-28, -20, 0), 7), ((-12, -20, 0), 7)], {})]
    )
    followup = brainmets.follow_up(path)
    assert sorted(e["event"] for e in followup["lesions"] if e["session"] == "2") == ["split", "split"]
    assert followup["rano_bm"][1]["response"] == "PD"
    assert followup["facts"]["rapid_growth"]["value"] is True
    assert [r["rano_bm_role"] for r in followup["lesions"] if r["session"] == "2"] == ["target", "target"]


def test_a_new_lesion_pd_awaiting_irano_confirmation_is_not_yet_progression(tmp_path):
    path = timeline(
        tmp_path, [("2024-01-01", [(A, 8)], {"treatment": "immunotherapy"}), ("2024-03-01", [(A, 8), (D, 4)], {})]
    )
    followup = brainmets.follow_up(path)
    assert followup["rano_bm"][1]["response"] == "PD" and followup["rano_bm"][1]["confirmed"] is None
    fact = followup["facts"]["cns_progression"]
    assert fact["value"] is None and "awaiting confirmation on a later scan (iRANO)" in fact["evidence"]
