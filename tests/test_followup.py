"""Follow-up over time: lesions tracked across sessions in world space, growth, RANO-BM with nadir and
confirmation, and the Table 1 facts that need time; on timelines generated here (none in the repository),
with known answers, on several grids."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

import brainmets
from brainmets.cli import main
from brainmets.errors import InputDataError
from brainmets.longitudinal.followup import axial_slice_thickness_mm

from .conftest import ROOT

ENHANCING, CAVITY = 3, 4
ONE_MM = np.diag([1.0, 1.0, 1.0, 1.0])
ONE_MM[:3, 3] = [-60, -60, -40]


def session_map(path, lesions, affine=ONE_MM, shape=(120, 120, 80), cavities=()):
    """A label map whose lesions (and cavities) are balls given in world mm: ((x, y, z), radius)."""
    ijk = np.indices(shape).reshape(3, -1).T
    world = ijk @ affine[:3, :3].T + affine[:3, 3]
    labels = np.zeros(int(np.prod(shape)), np.uint8)
    for value, balls in ((CAVITY, cavities), (ENHANCING, lesions)):
        for centre, radius in balls:
            labels[np.sum((world - centre) ** 2, axis=1) <= radius**2] = value
    nib.save(nib.Nifti1Image(labels.reshape(shape), affine), str(path))
    return path


def timeline(tmp_path, sessions, subject="01", name="timeline.tsv"):
    """A timeline TSV from (date, lesions, options) with options among affine, shape, cavities, transform,
    treatment, treated_lesions, steroids, clinical_status."""
    columns = ["subject", "session", "date", "segmentation", "transform", "treatment", "steroids", "clinical_status",
               "treated_lesions"]  # fmt: skip
    lines = ["\t".join(columns)]
    for k, (date, lesions, options) in enumerate(sessions, start=1):
        options = dict(options)
        seg = session_map(tmp_path / f"{name}-{k}.nii.gz", lesions, options.pop("affine", ONE_MM),
                          options.pop("shape", (120, 120, 80)), options.pop("cavities", ()))  # fmt: skip
        transform = ""
        if "transform" in options:
            transform = f"{name}-{k}.txt"
            np.savetxt(tmp_path / transform, options.pop("transform"))
        cells = [subject, str(k), date, seg.name, transform, options.get("treatment", ""),
                 options.get("steroids", ""), options.get("clinical_status", ""),
                 options.get("treated_lesions", "")]  # fmt: skip
        lines.append("\t".join(cells))
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def events(document):
    return [(r["session"], r["track_id"], r["event"]) for r in document["lesions"]]


def responses(document):
    return [r["response"] for r in document["rano_bm"]]


A, B, C, D = (-20, -20, 0), (20, -20, 0), (-20, 20, 0), (20, 20, 0)


def test_shrink_then_a_new_and_a_returning_lesion(tmp_path):
    """PR after shrinking (not confirmed: the next scan is PD), then PD by a new lesion; the lesion that
    resolved and came back keeps its track; the nadir is the smallest sum before each scan."""
    path = timeline(
        tmp_path,
        [
            ("2024-01-01", [(A, 10), (B, 6), (C, 3)], {}),
            ("2024-03-01", [(A, 6), (B, 4)], {}),
            ("2024-05-01", [(A, 8), (B, 5), (C, 3), (D, 4)], {}),
        ],
    )
    doc = brainmets.follow_up(path)
    assert events(doc) == [
        ("1", 1, "baseline"), ("1", 2, "baseline"), ("1", 3, "baseline"),
        ("2", 1, "persisting"), ("2", 2, "persisting"), ("2", 3, "resolved"),
        ("3", 1, "persisting"), ("3", 2, "persisting"), ("3", 3, "reappeared"), ("3", 4, "new"),
    ]  # fmt: skip
    base, second, third = doc["rano_bm"]
    diameters = {(r["session"], r["track_id"]): r["axial_longest_diameter_mm"] for r in doc["lesions"]}
    assert base["target_track_ids"] == [1, 2]  # lesion 3 (6 mm) is not measurable
    assert base["sum_longest_diameters_mm"] == pytest.approx(diameters["1", 1] + diameters["1", 2])
    assert (
        second["response"] == "PR"
        and second["confirmed"] is False
        and second["nadir_sum_mm"] == base["sum_longest_diameters_mm"]
    )
    assert third["response"] == "PD" and third["new_lesion_count"] == 2 and third["confirmed"] is None  # not needed
    assert third["nadir_sum_mm"] == pytest.approx(second["sum_longest_diameters_mm"])
    assert third["percent_change_from_nadir"] == pytest.approx(
        100 * (third["sum_longest_diameters_mm"] / second["sum_longest_diameters_mm"] - 1)
    )
    assert all(r["radiographic_only"] for r in doc["rano_bm"])
    assert doc["facts"]["cns_progression"]["value"] is True
    assert doc["research_use_only"] is True


def test_growth_past_the_nadir_without_a_5_mm_target_is_stable(tmp_path):
    """+20 % or more over the nadir, but every target grew less than 5 mm: SD, and the reason says why;
    a later +5 mm target growth makes it PD."""
    path = timeline(
        tmp_path,
        [
            ("2024-01-01", [(A, 10), (B, 8)], {}),
            ("2024-02-15", [(A, 6), (B, 5)], {}),
            ("2024-04-01", [(A, 8), (B, 6)], {}),
            ("2024-06-01", [(A, 12), (B, 8)], {}),
        ],
    )
    doc = brainmets.follow_up(path)
    assert responses(doc) == ["baseline", "PR", "SD", "PD"]
    third = doc["rano_bm"][2]
    assert third["percent_change_from_nadir"] >= 20 and "no target grew >= 5 mm" in " ".join(third["reasons"])
    assert doc["rano_bm"][1]["confirmed"] is False  # the next scan is SD
    growth = {c["to_session"]: c for c in doc["tracks"][0]["changes"]}
    v = {x["session"]: x["volume_ml"] for x in doc["tracks"][0]["volumes_ml"]}
    days = growth["3"]["days"]
    assert growth["3"]["percent_change"] == pytest.approx(100 * (v["3"] / v["2"] - 1))
    assert growth["3"]["growth_percent_per_month"] == pytest.approx(100 * ((v["3"] / v["2"]) ** (30.4375 / days) - 1))
    assert growth["3"]["volume_doubling_time_days"] == pytest.approx(days * np.log(2) / np.log(v["3"] / v["2"]))


def test_partial_response_confirmed_four_weeks_later_and_complete_response(tmp_path):
    path = timeline(
        tmp_path,
        [
            ("2024-01-01", [(A, 10)], {}),
            ("2024-02-01", [(A, 6)], {"steroids": "stable", "clinical_status": "stable"}),
            ("2024-02-20", [(A, 6)], {}),  # 19 days later: too soon to confirm
            ("2024-03-15", [(A, 5)], {}),
            ("2024-05-01", [], {}),
            ("2024-07-01", [], {}),
        ],
    )
    doc = brainmets.follow_up(path)
    assert responses(doc) == ["baseline", "PR", "PR", "PR", "CR", "CR"]
    # the last CR confirms the CR of two months before, so it is confirmed too (issue 21: it was null)
    assert [r["confirmed"] for r in doc["rano_bm"]] == [None, True, True, True, True, True]
    assert doc["rano_bm"][1]["radiographic_only"] is False and doc["rano_bm"][2]["radiographic_only"] is True
    assert events(doc)[-1] == ("6", 1, "resolved")
    assert doc["tracks"][0]["volumes_ml"][-1]["volume_ml"] == 0.0
    assert doc["volumetric_response"][4]["response"] == "CR"


@pytest.mark.parametrize(
    "options, response, reason",
    [
        ({"steroids": "increased"}, "SD", "steroids increased: not PR"),
        ({"clinical_status": "worse"}, "PD", "clinical status worse"),
    ],
)
def test_steroids_and_clinical_status_change_the_response(tmp_path, options, response, reason):
    path = timeline(tmp_path, [("2024-01-01", [(A, 10)], {}), ("2024-03-01", [(A, 6)], options)])
    follow = brainmets.follow_up(path)["rano_bm"][1]
    assert follow["response"] == response and reason in follow["reasons"] and follow["radiographic_only"] is False


def test_a_new_lesion_after_immunotherapy_asks_for_confirmation(tmp_path):
    path = timeline(
        tmp_path,
        [
            ("2024-01-01", [(A, 10)], {"treatment": "immunotherapy"}),
            ("2024-03-01", [(A, 10), (D, 4)], {}),
            ("2024-05-01", [(A, 10), (D, 6)], {}),
        ],
    )
    second, third = brainmets.follow_up(path)["rano_bm"][1:]
    assert second["response"] == "PD" and any("iRANO" in r for r in second["reasons"])
    assert third["response"] == "SD"  # the new lesion is now tracked, not new, and grew < 5 mm ...
    assert second["confirmed"] is False  # ... so the scan 8 weeks later does not confirm the PD
    grown = brainmets.follow_up(
        timeline(
            tmp_path,
            [
                ("2024-01-01", [(A, 10)], {"treatment": "immunotherapy"}),
                ("2024-03-01", [(A, 10), (D, 4)], {}),
                ("2024-05-01", [(A, 10), (D, 7.5)], {}),
            ],  # fmt: skip
            name="grown.tsv",
        )
    )
    assert grown["rano_bm"][1]["confirmed"] is True  # the new lesion grew >= 5 mm: iRANO-confirmed progression
    assert (
        grown["facts"]["cns_progression"]["value"] is True
        and "confirmed" in grown["facts"]["cns_progression"]["evidence"]
    )


def test_split_and_merge_keep_the_largest_track(tmp_path):
    """One lesion splits in two (the larger fragment keeps the track, the other records split_from; the
    target's fragments add up), two lesions merge into one (the larger parent's track goes on)."""
    path = timeline(
        tmp_path,
        [
            ("2024-01-01", [((-20, 0, 0), 10), ((12, 0, 0), 4), ((30, 0, 0), 4)], {}),
            ("2024-03-01", [((-27, 0, 0), 6), ((-12, 0, 0), 4), ((21, 0, 0), 8)], {}),
        ],
    )
    doc = brainmets.follow_up(path)
    rows = {(r["session"], r["track_id"]): r for r in doc["lesions"]}
    assert rows["2", 1]["event"] == "split" and rows["2", 4]["event"] == "split" and rows["2", 4]["split_from"] == 1
    assert rows["2", 2]["event"] == "merged" and rows["2", 3]["event"] == "merged"
    assert rows["2", 3]["merged_into"] == 2 and rows["2", 3]["lesion_id"] is None and rows["2", 3]["volume_ml"] is None
    second = doc["rano_bm"][1]
    fragments = rows["2", 1]["axial_longest_diameter_mm"] + rows["2", 4]["axial_longest_diameter_mm"]
    targets = doc["rano_bm"][0]["target_track_ids"]
    assert targets == [1]  # 10 and 8 mm lesions are not measurable
    assert second["sum_longest_diameters_mm"] == pytest.approx(fragments)


def test_a_shift_is_corrected_by_the_given_transform(tmp_path):
    """The second session's head sits 25 mm to the right: without the transform its lesion is new and the
    first resolved; with the transform (its world -> the baseline's) the lesion persists."""
    shifted = [((A[0] + 25, A[1], A[2]), 8)]
    back = np.eye(4)
    back[0, 3] = -25
    plain = brainmets.follow_up(timeline(tmp_path, [("2024-01-01", [(A, 8)], {}), ("2024-02-01", shifted, {})],
                                         name="plain.tsv"))  # fmt: skip
    aligned = brainmets.follow_up(
        timeline(tmp_path, [("2024-01-01", [(A, 8)], {}), ("2024-02-01", shifted, {"transform": back})], name="al.tsv")
    )
    assert [e for e in events(plain) if e[0] == "2"] == [("2", 1, "resolved"), ("2", 2, "new")]
    assert [e for e in events(aligned) if e[0] == "2"] == [("2", 1, "persisting")]
    row = next(r for r in aligned["lesions"] if r["session"] == "2")
    assert row["centroid_x_mm"] == pytest.approx(A[0], abs=0.5)  # in the baseline's world
    assert aligned["sessions"][1]["transform_given"] is True


def head_image(path, shift_x=0.0):
    """A T1-like head (an ellipsoid with a brighter 'ventricle' and two darker 'nuclei'), shifted in x (mm)."""
    ijk = np.indices((120, 120, 80)).reshape(3, -1).T.astype(float)
    x, y, z = (ijk + ONE_MM[:3, 3] - [shift_x, 0, 0]).T
    image = np.where((x / 50) ** 2 + (y / 55) ** 2 + (z / 35) ** 2 <= 1, 100.0, 0.0)
    image[(x + 5) ** 2 + (y - 10) ** 2 + z**2 <= 12**2] = 200
    image[(x - 18) ** 2 + (y + 15) ** 2 + (z - 8) ** 2 <= 8**2] = 40
    image[(x + 25) ** 2 + (y + 25) ** 2 + (z + 10) ** 2 <= 6**2] = 150
    nib.save(nib.Nifti1Image(image.reshape(120, 120, 80).astype(np.float32), ONE_MM), str(path))
    return path


def test_register_estimates_the_shift_from_the_sessions_images(tmp_path):
    shifted = [((A[0] + 25, A[1], A[2]), 8)]
    path = timeline(tmp_path, [("2024-01-01", [(A, 8)], {}), ("2024-02-01", shifted, {})])
    rows = path.read_text().splitlines()
    images = [head_image(tmp_path / "t1-1.nii.gz"), head_image(tmp_path / "t1-2.nii.gz", shift_x=25)]
    rows = [rows[0] + "\tsubject_image"] + [r + f"\t{image.name}" for r, image in zip(rows[1:], images)]
    path.write_text("\n".join(rows) + "\n")
    assert [e for e in events(brainmets.follow_up(path)) if e[0] == "2"] == [("2", 1, "resolved"), ("2", 2, "new")]
    registered = brainmets.follow_up(path, register=True)
    assert [e for e in events(registered) if e[0] == "2"] == [("2", 1, "persisting")]
    second = registered["sessions"][1]
    assert second["registration"]["estimated"] is True and second["registration"]["brain_mask_dice"] > 0.95
    assert second["transform"][0][3] == pytest.approx(-25, abs=1.0) and second["transform_given"] is False


@pytest.mark.slow
def test_the_same_timeline_on_other_grids_gives_the_same_tracks_and_responses(tmp_path):
    """Follow-up sessions on an anisotropic grid, and on flipped and permuted voxel axes: same tracks, same
    responses (the thick-slice rule aside)."""
    sessions = [
        ("2024-01-01", [(A, 10), (B, 6), (C, 3)], {}),
        ("2024-03-01", [(A, 6), (B, 4)], {}),
        ("2024-05-01", [(A, 8), (B, 5), (C, 3), (D, 4)], {}),
    ]
    reference = brainmets.follow_up(timeline(tmp_path, sessions, name="ref.tsv"))
    anisotropic = np.diag([0.7, 0.7, 2.5, 1.0])
    anisotropic[:3, 3] = [-60, -60, -40]
    permuted = np.zeros((4, 4))
    permuted[:3, :3] = [[0, 0, -1.0], [1.0, 0, 0], [0, -1.0, 0]]  # voxel axes (j, -k, -i) -> x, y, z
    permuted[:, 3] = [60, -60, 40, 1]
    for name, affine, shape in (("aniso", anisotropic, (172, 172, 32)), ("perm", permuted, (80, 120, 120))):
        moved = [
            (d, les, {"affine": affine, "shape": shape}) if k else (d, les, o) for k, (d, les, o) in enumerate(sessions)
        ]
        other = brainmets.follow_up(timeline(tmp_path, moved, name=f"{name}.tsv"))
        assert events(other) == events(reference), name
        assert responses(other) == responses(reference), name
    assert axial_slice_thickness_mm(anisotropic) == 2.5 and axial_slice_thickness_mm(permuted) == 1.0


def test_thick_slices_or_no_measurable_disease_are_not_evaluable(tmp_path):
    thick = np.diag([1.0, 1.0, 6.0, 1.0])
    thick[:3, 3] = [-60, -60, -40]
    doc = brainmets.follow_up(
        timeline(
            tmp_path,
            [("2024-01-01", [(A, 10)], {}), ("2024-03-01", [(A, 10)], {"affine": thick, "shape": (120, 120, 14)})],
        )
    )
    assert doc["rano_bm"][1]["response"] == "NE" and "6.0 mm thick" in doc["rano_bm"][1]["reasons"][0]
    small = brainmets.follow_up(
        timeline(tmp_path, [("2024-01-01", [(A, 3)], {}), ("2024-03-01", [(A, 3)], {})], name="s.tsv")
    )
    assert responses(small) == ["baseline", "NE"] and "no measurable disease" in small["rano_bm"][1]["reasons"][0]


def test_table1_facts_from_time(tmp_path):
    """Surgery of lesion 1 and SRS of both: the SRS-treated lesion 2 doubling its diameter a month later may be
    recurrence or radiation necrosis (undetermined, with the doubt as a warning), so rapid growth is undetermined
    too; the rim nodule reaching the measurable 10 mm is a local recurrence, equally undetermined; the resection
    made the first follow-up a new baseline, against which lesion 2's growth is PD. Unknown when the timeline
    records no such treatment. (Issue 21: this timeline gave rapid growth and both recurrences true.)"""
    path = timeline(
        tmp_path,
        [
            ("2024-01-01", [(A, 10), (B, 6)], {"treatment": "surgery,srs", "treated_lesions": "surgery:1;srs:1;srs:2"}),
            ("2024-03-01", [(B, 5), ((-20, -20, 14), 3)], {"cavities": [(A, 11)]}),
            ("2024-04-01", [(B, 9), ((-20, -20, 14), 6)], {"cavities": [(A, 11)]}),
        ],
    )
    doc = brainmets.follow_up(path)
    facts = doc["facts"]
    assert doc["sessions"][0]["treated_track_ids"] == {"surgery": [1], "srs": [1, 2]}  # lesion k is track k
    for name in ("rapid_growth", "recurrence_after_srs", "local_recurrence_after_resection"):
        assert facts[name]["value"] is None and facts[name]["if_recurrence_confirmed"] == {"yes": True, "no": False}
        assert facts[name]["doubt"] in doc["warnings"]
    assert "radiation necrosis: confirm by follow-up, perfusion/PET or tissue" in facts["recurrence_after_srs"]["doubt"]
    assert "track 2 grew" in facts["rapid_growth"]["evidence"] and "per month" in facts["rapid_growth"]["evidence"]
    assert "post-operative change" in facts["local_recurrence_after_resection"]["doubt"]
    assert responses(doc) == ["baseline", "baseline", "PD"]  # the post-operative scan is a new baseline
    assert doc["rano_bm"][2]["treatment_effect_possible"] is True  # the PD rests on the irradiated lesion 2 ...
    assert facts["cns_progression"]["value"] is None and facts["cns_progression"]["doubt"] in doc["warnings"]
    assert facts["solitary_metastasis_at_resection"]["value"] is False  # two lesions at the session of surgery
    assert facts["recurrence_after_wbrt"]["value"] is None  # no WBRT in the timeline: unknown, not false
    quiet = brainmets.follow_up(
        timeline(
            tmp_path, [("2024-01-01", [(A, 10)], {"treatment": "wbrt"}), ("2024-03-01", [(A, 9)], {})], name="q.tsv"
        )
    )["facts"]
    assert quiet["recurrence_after_wbrt"]["value"] is False and quiet["rapid_growth"]["value"] is False
    assert quiet["distant_intracranial_progression_after_wbrt"]["value"] is False
    assert quiet["local_recurrence_after_resection"]["value"] is None


def test_indicate_uses_the_followup_where_the_clinical_row_is_silent(tmp_path):
    path = timeline(tmp_path, [("2024-01-01", [(A, 10)], {}), ("2024-02-01", [(A, 14)], {})])
    followup = brainmets.follow_up(path)
    latest = brainmets.measure(tmp_path / "timeline.tsv-2.nii.gz", subject="01", session="2")
    derived = brainmets.indicate(latest, followup=followup)
    assert derived["followup"]["facts"]["rapid_growth"] == {
        **followup["facts"]["rapid_growth"], "used": True, "source": "follow-up"
    }  # fmt: skip
    by_hand = brainmets.indicate(latest, {"subject": "01", "rapid_growth": "no"}, followup=followup)
    assert by_hand["followup"]["facts"]["rapid_growth"]["used"] is False
    assert by_hand["followup"]["facts"]["rapid_growth"]["source"].startswith("clinical table")
    surgery_5 = {c["id"]: c["met"] for c in derived["modalities"]["surgery"]["criteria"]}
    assert surgery_5["table1.surgery.4"] is True  # rapidly enlarging
    out = tmp_path / "f.json"
    assert main(["followup", "--timeline", str(path), "--out-json", str(out), "--out-dir", str(tmp_path / "d")]) == 0
    features = tmp_path / "features.json"
    assert (
        main(["features", str(tmp_path / "timeline.tsv-2.nii.gz"), "--subject", "01", "--out-json", str(features)]) == 0
    )
    indicated = tmp_path / "i.json"
    assert main(["indicate", "--features", str(features), "--followup", str(out), "--out-json", str(indicated)]) == 0
    assert json.loads(indicated.read_text())["followup"]["facts"]["rapid_growth"]["used"] is True
    tracks = (tmp_path / "d" / "sub-01_desc-lesiontracks_followup.tsv").read_text().splitlines()
    assert tracks[0].split("\t")[:5] == ["session", "date", "days_from_baseline", "track_id", "lesion_id"]
    assert len(tracks) == 3
    dictionary = json.loads((tmp_path / "d" / "sub-01_desc-responses_followup.json").read_text())
    assert set(dictionary["response"]["Levels"]) == {"baseline", "CR", "PR", "SD", "PD", "NE"}


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda rows: rows[1].__setitem__(2, ""), "row 2: no date"),
        (lambda rows: rows[1].__setitem__(2, "2024-01-01"), "date given more than once: 2024-01-01"),
        (lambda rows: rows[1].__setitem__(2, "2023-12-01"), "dates out of order"),
        (lambda rows: rows[1].__setitem__(2, "1st of March"), "is not an ISO 8601 date"),
        (lambda rows: rows[1].__setitem__(0, "02"), "sessions of more than one subject in one timeline: 01, 02"),
        (lambda rows: rows[1].__setitem__(1, "1"), "session given more than once: 1"),
        (lambda rows: rows[1].__setitem__(5, "chemo"), "'chemo' is not one of srs, wbrt, surgery"),
        (lambda rows: rows[1].__setitem__(4, "bad.txt"), "not a 4x4 matrix"),
        (lambda rows: rows[1].__setitem__(0, "../x"), "is not a BIDS label"),
    ],
)
def test_bad_timelines_are_clear_errors(tmp_path, capsys, edit, message):
    path = timeline(tmp_path, [("2024-01-01", [(A, 5)], {}), ("2024-02-01", [(A, 5)], {})])
    (tmp_path / "bad.txt").write_text("1 0 0\n0 1 0\n0 0 1\n")
    lines = [line.split("\t") for line in path.read_text().splitlines()]
    rows = lines[1:]
    edit(rows)
    path.write_text("\n".join("\t".join(r) for r in [lines[0], *rows]) + "\n")
    with pytest.raises(InputDataError, match=message):
        brainmets.follow_up(path)
    out = tmp_path / "f.json"
    assert main(["followup", "--timeline", str(path), "--out-json", str(out)]) == 1
    assert message.split(":")[0] in capsys.readouterr().err and not out.exists()


def test_followup_facts_of_another_session_or_subject_are_flagged(tmp_path):
    followup = brainmets.follow_up(timeline(tmp_path, [("2024-01-01", [(A, 10)], {}), ("2024-02-01", [(A, 14)], {})]))
    first = brainmets.measure(tmp_path / "timeline.tsv-1.nii.gz", subject="01", session="1")
    earlier = brainmets.indicate(first, followup=followup)
    assert any("as of its last session 2, not this study's session 1" in w for w in earlier["warnings"])
    other = brainmets.measure(tmp_path / "timeline.tsv-1.nii.gz", subject="02", session="2")
    with pytest.raises(brainmets.errors.ConfigError, match="the follow-up is of subject '01'"):
        brainmets.indicate(other, followup=followup)


@pytest.mark.slow
def test_audit_cases_new_small_lesions_broken_confirmation_regrowth_after_cr_and_volumetric_rules(tmp_path):
    """A new lesion first seen under 5 mm is progression when it reaches 5 mm; a PD between a PR and its
    confirming scan means the PR is not confirmed; any lesion after a CR is progression; the volumetric
    response keeps RANO-BM's not-evaluable, steroid and clinical rules; dates may carry times."""
    small = brainmets.follow_up(
        timeline(
            tmp_path,
            [
                ("2024-01-01", [(A, 8)], {}),
                ("2024-03-01", [(A, 8), (D, 1.8)], {}),
                ("2024-05-01", [(A, 8), (D, 4)], {}),
            ],
            name="small.tsv",
        )
    )
    assert [(r["response"], r["new_lesion_count"]) for r in small["rano_bm"]] == [("baseline", 0), ("SD", 0), ("PD", 1)]
    broken = brainmets.follow_up(
        timeline(
            tmp_path,
            [
                ("2024-01-01", [(A, 8)], {}),
                ("2024-02-01", [(A, 5)], {}),
                ("2024-02-15", [(A, 9)], {}),
                ("2024-03-05", [(A, 5)], {}),
            ],  # fmt: skip
            name="broken.tsv",
        )
    )
    assert responses(broken) == ["baseline", "PR", "PD", "PR"] and broken["rano_bm"][1]["confirmed"] is False
    regrowth = brainmets.follow_up(
        timeline(
            tmp_path,
            [("2024-01-01", [(A, 8)], {}), ("2024-03-01", [], {}), ("2024-05-01", [(A, 2)], {})],
            name="cr.tsv",
        )
    )
    assert responses(regrowth) == ["baseline", "CR", "PD"] and regrowth["rano_bm"][1]["confirmed"] is False
    assert "reappeared after a complete response" in regrowth["rano_bm"][2]["reasons"][0]
    thick = np.diag([1.0, 1.0, 6.0, 1.0])
    thick[:3, 3] = [-60, -60, -40]
    rules = brainmets.follow_up(
        timeline(
            tmp_path,
            [
                ("2024-01-01T08:00", [(A, 8)], {}),
                ("2024-03-01T20:30", [(A, 4)], {"affine": thick, "shape": (120, 120, 14)}),
                ("2024-05-01", [(A, 4)], {"steroids": "increased"}),
                ("2024-07-01", [(A, 4)], {"clinical_status": "worse"}),
            ],  # fmt: skip
            name="vol.tsv",
        )
    )
    assert [v["response"] for v in rules["volumetric_response"]] == ["baseline", "NE", "SD", "PD"]
    assert responses(rules) == ["baseline", "NE", "SD", "PD"]
    assert rules["sessions"][1]["date"] == "2024-03-01T20:30:00"
    assert rules["sessions"][1]["days_from_baseline"] == pytest.approx(60.5208, abs=1e-3)


def test_the_studies_sheet_without_a_subject_asks_for_one(tmp_path, capsys):
    """The workflow's sheet (several subjects, and columns a timeline does not have) given to `followup`
    without --subject: the message lists the subjects and says how to choose, not "unknown column(s)"."""
    code = main(["followup", "--timeline", str(ROOT / "test_data" / "cohort" / "studies.tsv"),
                 "--out-json", str(tmp_path / "f.json")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "more than one subject in one timeline: 01, 02, 03" in err and "--subject 01" in err
    assert "unknown column" not in err and not (tmp_path / "f.json").exists()
