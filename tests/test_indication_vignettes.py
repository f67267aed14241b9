"""Clinical vignettes: whole patients, from generated and real segmentations, read against Table 1 and
sections 2.3 / 3.1 of the review. Each checks the verdicts a careful reading gives, and that nothing is
stated confidently from a missing input."""

import json

import nibabel as nib
import numpy as np
import pytest

from brainmets.cli import main
from brainmets.indications import RuleSet, evaluate_study
from brainmets.indications.engine import summary_row

from .conftest import ROOT, cavity_row, features_document, lesion_row

RULES = RuleSet.load()
COHORT = ROOT / "test_data" / "cohort"
ASEG = COHORT / "toy_aseg.nii.gz"  # the demo cohort's toy parcellation on the 1 mm BraTS grid
# voxel centres (i, j, k) on that grid, read off the toy parcellation
CEREBELLUM_LEFT = (140, 168, 44)  # label 8
BRAINSTEM = (119, 131, 48)  # label 16
SUPRATENTORIAL = [(150, 100, 100), (95, 100, 100), (150, 60, 90), (90, 60, 90), (100, 150, 110)]


def paint(labels: np.ndarray, centre, radius: float, value: int, only_background: bool = False) -> None:
    """A ball of ``value`` (radius in mm = voxels on this 1 mm grid)."""
    reach = int(np.ceil(radius)) + 1
    box = tuple(slice(max(c - reach, 0), c + reach + 1) for c in centre)
    i, j, k = np.ogrid[box]
    inside = (i - centre[0]) ** 2 + (j - centre[1]) ** 2 + (k - centre[2]) ** 2 <= radius**2
    if only_background:
        inside &= labels[box] == 0
    labels[box][inside] = value


def segmentation() -> np.ndarray:
    return np.zeros(nib.load(ASEG).shape, np.uint8)


def measure(tmp_path, labels: np.ndarray, parcellation=ASEG, name="seg") -> dict:
    """``brainmets features`` on a generated segmentation (BraTS-METS 2023 labels), located on ``parcellation``."""
    path = tmp_path / f"{name}.nii.gz"
    nib.save(nib.Nifti1Image(labels, nib.load(ASEG).affine), path)
    out = tmp_path / f"{name}.json"
    assert main(["features", str(path), "--out-json", str(out), "--parcellation", str(parcellation)]) == 0
    return json.loads(out.read_text())


def by_id(result: dict) -> dict:
    """Every rule evaluated (Table 1 and text), by id."""
    rules = {c["id"]: c for m in result["modalities"].values() for c in m["criteria"]}
    return rules | {t["id"]: t for t in result["text_rules"]}


def conflict_ids(result: dict) -> set:
    return {c["id"] for c in result["conflicts"]}


CONTROLLED = {"kps": 90, "age_years": 55, "extracranial_disease": "controlled", "extracranial_metastases": False}


# ---- the examples of the issue -------------------------------------------------------------------


def test_postoperative_patient_with_four_residual_lesions_is_not_a_solitary_metastasis(tmp_path):
    labels = segmentation()
    paint(labels, (150, 80, 80), 12, 4)  # the resection cavity
    for centre in SUPRATENTORIAL[1:]:
        paint(labels, centre, 4, 3)  # four residual metastases
    document = measure(tmp_path, labels)
    assert document["study"]["lesion_count"] == 4 and document["study"]["resection_cavity_count"] == 1
    result = evaluate_study(document, CONTROLLED | {"post_operative": True, "resected_lesion_count": 1}, RULES)
    rules = by_id(result)
    srs2 = rules["table1.srs.2"]
    assert srs2["met"] is False and srs2["evidence"]["lesion_count"] == 4
    # its "particularly" is still judged on the cavity, never on the residual lesions
    assert srs2["supporting"]["evidence"]["resected_lesion_diameter_mm"] == pytest.approx(24, abs=1.5)
    assert srs2["supporting"]["evidence"]["resected_lesion_posterior_fossa"] is False
    # 3-10 residual lesions after a resection that left no enhancing tissue at the cavity: WBRT (v)
    wbrt4 = rules["table1.wbrt.4"]
    assert wbrt4["met"] is True and wbrt4["evidence"]["gross_total_resection"] is True
    assert wbrt4["evidence"]["cavity_rim_enhancing_volume_ml"] == 0
    assert {"conflict.postoperative_residual_wbrt", "conflict.wbrt_2_to_4_lesions"} <= conflict_ids(result)


@pytest.mark.parametrize("parcellation_has_a_hole", [False, True], ids=["atlas-like", "cavity-unlabelled"])
def test_a_35_mm_cerebellar_cavity_supports_postoperative_srs(tmp_path, parcellation_has_a_hole):
    labels = segmentation()
    paint(labels, CEREBELLUM_LEFT, 17.5, 4)
    parcellation = ASEG
    if parcellation_has_a_hole:  # a parcellation of the operated brain often leaves the cavity unlabelled
        aseg = np.asanyarray(nib.load(ASEG).dataobj).copy()
        aseg[labels == 4] = 0
        parcellation = tmp_path / "aseg_with_hole.nii.gz"
        nib.save(nib.Nifti1Image(aseg, nib.load(ASEG).affine), parcellation)
    document = measure(tmp_path, labels, parcellation)
    cavity = document["resection_cavities"][0]
    assert cavity["max_diameter_3d_mm"] > 35 and cavity["posterior_fossa_fraction"] > 0.5
    # located by its own voxels, or through the hole by the tissue around it (some cerebrum above the tentorium)
    assert cavity["location"] == ("mixed" if parcellation_has_a_hole else "infratentorial")
    clinical = CONTROLLED | {"post_operative": True, "resected_lesion_count": 1}
    result = evaluate_study(document, clinical, RULES)
    srs2 = by_id(result)["table1.srs.2"]
    assert srs2["met"] is True and result["modalities"]["srs"]["status"] == "indicated"
    support = srs2["supporting"]
    assert support["met"] is True
    assert support["evidence"]["resected_lesion_diameter_mm"] > 35
    assert support["evidence"]["resected_lesion_posterior_fossa"] is True
    assert support["evidence"]["resected_lesion_diameter_source"] == "the resection cavity (max_diameter_3d_mm)"
    assert any(a.startswith("resected_lesion_diameter_mm = 3") for a in result["assumptions"])

    # a new small supratentorial lesion: no longer solitary, and still judged on the cavity, not on it
    paint(labels, SUPRATENTORIAL[0], 4, 3)
    (tmp_path / "b").mkdir()
    result = evaluate_study(measure(tmp_path / "b", labels, parcellation), clinical, RULES)
    srs2 = by_id(result)["table1.srs.2"]
    assert srs2["met"] is False and srs2["supporting"]["met"] is True
    assert srs2["supporting"]["evidence"]["resected_lesion_diameter_mm"] > 35


@pytest.mark.parametrize("histology", ["melanoma", "renal", "colorectal"])
def test_a_radioresistant_histology_alone_does_not_indicate_surgery(histology):
    lesions = [lesion_row(max_diameter_3d_mm=15.0) for _ in range(5)]
    clinical = CONTROLLED | {"primary_histology": histology, "cystic": False, "anticipated_poor_rt_response": False}
    result = evaluate_study(features_document(lesions), clinical, RULES)
    surgery6 = by_id(result)["table1.surgery.6"]
    assert surgery6["met"] is False
    assert surgery6["supporting"] == {
        "met": True,
        "condition": "histology_radioresistant is yes",
        "evidence": {"histology_radioresistant": True},
        "missing": [],
        "thresholds": {},
    }
    assert by_id(result)["table1.srs.1"]["met"] is True  # radioresistance is SRS's row (i)
    unknown = evaluate_study(features_document(lesions), CONTROLLED | {"primary_histology": histology}, RULES)
    surgery6 = by_id(unknown)["table1.surgery.6"]
    assert surgery6["met"] is None and surgery6["missing"] == ["cystic", "anticipated_poor_rt_response"]


def test_a_brainstem_lesion_is_not_a_surgical_indication_and_raises_the_eano_conflict(tmp_path):
    labels = segmentation()
    paint(labels, BRAINSTEM, 5, 3)
    document = measure(tmp_path, labels)
    assert document["lesions"][0]["brainstem_involved"] is True
    result = evaluate_study(document, CONTROLLED | {"symptomatic": False, "hydrocephalus": False}, RULES)
    surgery3 = by_id(result)["table1.surgery.3"]
    assert surgery3["met"] is False
    assert surgery3["evidence"] == {
        "eloquent_involved": False,
        "eloquent_regions_involved": ["brainstem"],
        "brainstem_involved": True,
    }
    assert surgery3["thresholds"] == {"brainstem_is_functionally_critical": False}
    assert any(a.startswith("brainstem_is_functionally_critical = false") for a in result["assumptions"])
    # section 3.1 still offers surgery for a solitary lesion: the guidelines send it to SRS
    assert [f["rule"]["id"] for f in result["first_line"]] == ["text.srs.limited", "text.surgery.up_to_three"]
    conflict = next(c for c in result["conflicts"] if c["id"] == "conflict.surgery_brainstem")
    assert conflict["strength"] == "level C (EANO 2017, R3)" and "Soffietti" in conflict["source"]
    assert conflict["evidence"]["brainstem_involved"] is True
    assert conflict["evidence"]["rule:text.surgery.up_to_three"] == "met"

    counts = RuleSet.load(overrides={"brainstem_is_functionally_critical": True})
    assert by_id(evaluate_study(document, CONTROLLED, counts))["table1.surgery.3"]["met"] is True


def test_forty_punctate_foci_below_the_minimum_leave_count_rules_undetermined(tmp_path):
    labels = segmentation()
    for n in range(40):  # 2 x 2 x 2 voxels = 8 mm3 each, below min_lesion_volume_mm3 (20)
        i, j, k = 80 + 10 * (n % 5), 70 + 10 * ((n // 5) % 4), 70 + 12 * (n // 20)
        labels[i : i + 2, j : j + 2, k : k + 2] = 3
    document = measure(tmp_path, labels)
    assert document["study"]["lesion_count"] == 0 and document["study"]["discarded_core_component_count"] == 40
    result = evaluate_study(document, CONTROLLED, RULES)
    rules = by_id(result)
    for rule_id in ("table1.wbrt.2", "text.srs.limited", "text.wbrt.multifocal", "text.surgery.up_to_three"):
        assert rules[rule_id]["met"] is None, rule_id
        assert rules[rule_id]["missing"] == []  # nothing a user forgot: the count itself is uncertain
        assert rules[rule_id]["uncertain"]["lesion_count"].startswith("between 0 and 40")
        assert rules[rule_id]["evidence"]["discarded_core_component_count"] == 40
    assert result["modalities"]["wbrt"]["status"] == "undetermined"
    assert (
        len(result["warnings"]) == 1
        and "40 core component(s) below min_lesion_volume_mm3 (20.0 mm3)" in (result["warnings"][0])
    )
    assert result["scores"]["gpa_original"]["total"] is None
    assert "brain_metastasis_count uncertain" in result["scores"]["gpa_original"]["reason"]
    assert summary_row(result)["warning_count"] == 1

    ignored = evaluate_study(document, CONTROLLED, RuleSet.load(overrides={"discarded_core_components": "ignore"}))
    assert by_id(ignored)["table1.wbrt.2"]["met"] is False and by_id(ignored)["text.srs.limited"]["met"] is False
    assert "ignored (discarded_core_components = ignore)" in ignored["warnings"][0]
    gpa = ignored["scores"]["gpa_original"]  # the GPA has no row for a patient without brain metastases
    assert (
        gpa["total"] is None
        and gpa["reason"] == "cannot be computed: no row of the table for brain_metastasis_count = 0"
    )


def test_an_empty_mass_effect_cell_is_not_read_as_no_mass_effect(tmp_path):
    labels = segmentation()
    paint(labels, SUPRATENTORIAL[0], 12, 2)  # 7 mL of edema around a 0.27 mL core: marked, but small
    paint(labels, SUPRATENTORIAL[0], 4, 3)
    document = measure(tmp_path, labels)
    assert document["lesions"][0]["edema_ratio"] > 2
    result = evaluate_study(document, CONTROLLED, RULES)
    surgery2 = by_id(result)["table1.surgery.2"]
    assert result["facts"]["mass_effect_on_imaging"] is None and result["facts"]["mass_effect"] is None
    assert surgery2["met"] is None and surgery2["missing"] == ["mass_effect"]
    assert result["modalities"]["surgery"]["status"] == "undetermined"
    assert any(a.startswith("mass_effect unknown") for a in result["assumptions"])
    confirmed = evaluate_study(document, CONTROLLED | {"mass_effect": True}, RULES)
    assert by_id(confirmed)["table1.surgery.2"]["met"] is True
    denied = evaluate_study(document, CONTROLLED | {"mass_effect": False}, RULES)
    assert by_id(denied)["table1.surgery.2"]["met"] is False


# ---- rows read as the review writes them -----------------------------------------------------------


def test_every_rule_is_in_the_trace_met_or_not():
    lesions = [lesion_row(location="supratentorial", eloquent_regions=[], brainstem_involved=False) for _ in range(3)]
    result = evaluate_study(features_document(lesions), CONTROLLED, RULES)
    rules = by_id(result)
    assert set(rules) == {r["id"] for r in RULES.table["rules"] + RULES.table["text_rules"]}
    multifocal = rules["text.wbrt.multifocal"]
    assert multifocal["met"] is False and multifocal["evidence"]["lesion_count"] == 3
    assert multifocal["thresholds"] == {"wbrt_multifocal_min_lesions": 16}
    for entry in rules.values():
        assert {"id", "met", "text", "source", "evidence", "missing"} <= set(entry), entry["id"]


def test_wbrt_for_a_large_lesion_needs_it_to_be_unsuitable_for_srs():
    lesion = lesion_row(max_diameter_3d_mm=43.0, axial_longest_diameter_mm=38.5)
    document = features_document([lesion])
    wbrt3 = lambda clinical, rules=RULES: by_id(evaluate_study(document, clinical, rules))["table1.wbrt.3"]  # noqa: E731
    assert wbrt3(CONTROLLED)["met"] is None  # never assumed from the size
    assert wbrt3(CONTROLLED | {"srs_unsuitable": True})["met"] is True
    assert wbrt3(CONTROLLED | {"srs_unsuitable": False})["met"] is False
    axial = RuleSet.load(overrides={"size_diameter": "axial_longest_diameter_mm"})
    entry = wbrt3(CONTROLLED | {"srs_unsuitable": True}, axial)
    assert entry["met"] is False and entry["evidence"]["largest_diameter_mm"] == 38.5
    assert entry["evidence"]["largest_diameter_measure"] == "axial_longest_diameter_mm"
    result = evaluate_study(document, CONTROLLED | {"srs_unsuitable": True}, axial)
    assert any(a.startswith("size_diameter = axial_longest_diameter_mm") for a in result["assumptions"])


@pytest.mark.parametrize("gap_mm, in_rim", [(0, True), (1, True), (2, True), (5, False)])
def test_wbrt_after_resection_needs_the_resection_to_be_known_complete(tmp_path, gap_mm, in_rim):
    labels = segmentation()
    paint(labels, (150, 80, 80), 10, 4)  # the cavity reaches k = 90
    paint(labels, (150, 80, 94 + gap_mm), 3, 3)  # an enhancing nodule gap_mm above it (its lowest voxel k = 91 + gap)
    for centre in SUPRATENTORIAL[1:4]:
        paint(labels, centre, 4, 3)
    document = measure(tmp_path, labels)
    cavity = document["resection_cavities"][0]
    assert (cavity["rim_enhancing_volume_ml"] > 0) is in_rim and bool(cavity["rim_lesion_ids"]) is in_rim
    clinical = CONTROLLED | {"post_operative": True}
    result = evaluate_study(document, clinical, RULES)
    wbrt4 = by_id(result)["table1.wbrt.4"]
    if in_rim:  # residual tissue at the cavity (within features.cavity_rim_mm = 3 mm): completeness unknown
        assert wbrt4["met"] is None and wbrt4["missing"] == ["gross_total_resection"]
        assert any(a.startswith("gross_total_resection unknown") for a in result["assumptions"])
    else:  # 4 residual lesions after a resection that left no enhancing tissue in the cavity's rim
        assert wbrt4["met"] is True and wbrt4["evidence"]["cavity_rim_enhancing_volume_ml"] == 0
        assert any("within features.cavity_rim_mm = 3.0 mm" in a for a in result["assumptions"])
    given = evaluate_study(document, clinical | {"gross_total_resection": True}, RULES)
    assert by_id(given)["table1.wbrt.4"]["met"] is True
    assert any("gross_total_resection is yes, but" in w for w in given["warnings"]) is in_rim
    done = evaluate_study(document, clinical | {"gross_total_resection": False}, RULES)
    assert by_id(done)["table1.wbrt.4"]["met"] is False


def test_clinical_entries_the_segmentation_contradicts_are_flagged(tmp_path):
    labels = segmentation()
    paint(labels, (150, 80, 80), 10, 4)
    document = measure(tmp_path, labels)
    result = evaluate_study(document, CONTROLLED | {"post_operative": False, "resected_lesion_count": 0}, RULES)
    assert any("post_operative is no, but the segmentation holds a resection cavity" in w for w in result["warnings"])
    assert any("resected_lesion_count is 0" in w for w in result["warnings"])
    assert result["facts"]["post_operative"] is False  # the clinical entry decides
    assert result["facts"]["gross_total_resection"] is None and result["facts"]["resected_lesion_diameter_mm"] is None
    assert not any(a.startswith(("gross_total_resection", "resected_lesion")) for a in result["assumptions"])
    assert evaluate_study(document, CONTROLLED | {"post_operative": True}, RULES)["warnings"] == []


def test_the_prognostic_scores_count_the_resected_metastases_too():
    document = features_document([lesion_row()], cavities=[cavity_row()])
    clinical = CONTROLLED | {"post_operative": True, "resected_lesion_count": 1}
    result = evaluate_study(document, clinical, RULES)
    assert result["facts"]["brain_metastasis_count"] == 2
    assert result["scores"]["gpa_original"]["points"]["number_of_brain_metastases"] == 0.5  # 2-3 metastases
    assert any(a.startswith("brain_metastasis_count = 2: post-operative") for a in result["assumptions"])
    unknown = evaluate_study(document, CONTROLLED | {"post_operative": True}, RULES)
    assert unknown["scores"]["gpa_original"]["total"] is None
    assert "resected_lesion_count" in unknown["missing_inputs"]
    preop = evaluate_study(features_document([lesion_row()]), CONTROLLED, RULES)
    assert preop["scores"]["gpa_original"]["points"]["number_of_brain_metastases"] == 1.0


def test_the_resected_lesion_can_be_read_from_the_clinical_columns_first():
    document = features_document([], cavities=[cavity_row(max_diameter_3d_mm=25.0, location="supratentorial")])
    clinical = CONTROLLED | {
        "post_operative": True,
        "resected_lesion_count": 1,
        "resected_lesion_diameter_mm": 38.0,
        "resected_lesion_location": "supratentorial",
    }
    srs2 = by_id(evaluate_study(document, clinical, RULES))["table1.srs.2"]
    assert srs2["met"] is True and srs2["supporting"]["met"] is False  # the 25 mm cavity, by default
    assert srs2["supporting"]["thresholds"]["resected_lesion_source"] == "cavity_first"
    clinical_first = RuleSet.load(overrides={"resected_lesion_source": "clinical_first"})
    result = evaluate_study(document, clinical, clinical_first)
    support = by_id(result)["table1.srs.2"]["supporting"]
    assert support["met"] is True and support["evidence"]["resected_lesion_diameter_mm"] == 38.0
    assert support["evidence"]["resected_lesion_diameter_source"] == "clinical table"
    assert any(a.startswith("resected_lesion_source = clinical_first") for a in result["assumptions"])


def test_inputs_of_a_particularly_clause_are_not_asked_for_when_its_rule_fails():
    result = evaluate_study(features_document([lesion_row()]), CONTROLLED | {"post_operative": False}, RULES)
    srs2 = by_id(result)["table1.srs.2"]
    assert srs2["met"] is False and srs2["supporting"]["met"] is None
    assert "resected_lesion_diameter_mm" not in result["missing_inputs"]
    assert "resected_lesion_location" not in result["missing_inputs"]


def test_concurrent_cns_progression_stays_unknown_until_given():
    document = features_document([lesion_row() for _ in range(2)])
    clinical = {"kps": 50, "extracranial_disease": "progressive", "systemic_options": "limited"}
    wbrt1 = by_id(evaluate_study(document, clinical, RULES))["table1.wbrt.1"]
    assert wbrt1["met"] is None and wbrt1["missing"] == ["cns_progression"]
    assert by_id(evaluate_study(document, clinical | {"cns_progression": True}, RULES))["table1.wbrt.1"]["met"]


def test_decompression_surgery_is_for_limited_disease():
    big = [lesion_row(max_diameter_3d_mm=45.0)] + [lesion_row() for _ in range(4)]
    result = evaluate_study(features_document(big), CONTROLLED | {"symptomatic": True}, RULES)
    assert by_id(result)["text.surgery.decompression"]["met"] is False  # five lesions
    result = evaluate_study(features_document(big[:4]), CONTROLLED | {"symptomatic": True}, RULES)
    assert result["first_line"][0]["rule"]["id"] == "text.surgery.decompression"


def test_surgery_without_systemic_control_is_excluded_not_suggested():
    document = features_document([lesion_row(max_diameter_3d_mm=35.0)])
    progressive = evaluate_study(document, {"extracranial_disease": "progressive", "symptomatic": True}, RULES)
    assert [f["modality"] for f in progressive["first_line"]] == ["srs"]
    assert [(f["rule"]["id"], f["failed_requirements"]) for f in progressive["first_line_excluded"]] == [
        ("text.surgery.decompression", ["text.surgery.systemic_control"]),
        ("text.surgery.up_to_three", ["text.surgery.systemic_control"]),
    ]
    row = summary_row(progressive)
    assert row["first_line"] == ["srs:text.srs.limited"]
    assert row["first_line_excluded"] == ["surgery:text.surgery.decompression", "surgery:text.surgery.up_to_three"]
    unknown = evaluate_study(document, {"symptomatic": True}, RULES)  # systemic control not given
    surgery = [f for f in unknown["first_line"] if f["modality"] == "surgery"]
    assert [f["requirements_met"] for f in surgery] == [None, None] and unknown["first_line_excluded"] == []


def test_conflicts_are_raised_where_they_apply():
    def conflicts(n, clinical=CONTROLLED, **lesion):
        return conflict_ids(
            evaluate_study(features_document([lesion_row(**lesion) for _ in range(n)]), clinical, RULES)
        )

    assert "conflict.wbrt_2_to_4_lesions" in conflicts(4) and "conflict.wbrt_2_to_4_lesions" not in conflicts(5)
    assert "conflict.wbrt_2_to_4_lesions" not in conflicts(1)
    assert "conflict.wbrt_large_lesion" in conflicts(1, max_diameter_3d_mm=45.0)
    assert "conflict.wbrt_large_lesion" not in conflicts(1, max_diameter_3d_mm=40.0)
    assert "conflict.srs_poor_performance" in conflicts(2, CONTROLLED | {"kps": 60})
    assert "conflict.srs_poor_performance" not in conflicts(2, CONTROLLED | {"kps": 70})
    assert "conflict.srs_poor_performance" not in conflicts(2, {})  # KPS unknown: not claimed

    def shifted(shift_mm):
        document = features_document([lesion_row(), lesion_row()])
        document["study"] |= {"midline_shift_mm": shift_mm, "evans_index": 0.25}
        return conflict_ids(evaluate_study(document, CONTROLLED, RULES))

    assert "conflict.srs_midline_shift" in shifted(12.0)  # AANS/CNS 2010: SRS candidates have < 1 cm shift
    assert "conflict.srs_midline_shift" not in shifted(10.0)
    assert "conflict.srs_midline_shift" not in conflicts(2)  # no parcellation: the shift is unknown
    assert "conflict.postoperative_residual_wbrt" in conflicts(3, CONTROLLED | {"post_operative": True})
    assert "conflict.postoperative_residual_wbrt" not in conflicts(2, CONTROLLED | {"post_operative": True})
    assert "conflict.wbrt_large_lesion" not in conflicts(
        1, CONTROLLED | {"srs_unsuitable": False}, max_diameter_3d_mm=45.0
    )  # WBRT (iv) does not hold: nothing to disagree with
    # the 3 vs 4 cm cut matters only where the text suggests surgery for size
    assert "conflict.surgery_size_cut" in conflicts(1, max_diameter_3d_mm=35.0)
    assert "conflict.surgery_size_cut" not in conflicts(6, max_diameter_3d_mm=35.0)
    assert "conflict.surgery_size_cut" not in conflicts(1, max_diameter_3d_mm=41.0)
    cortex = {"eloquent_regions": ["primary_motor_cortex"], "brainstem_involved": False}
    assert "conflict.surgery_critical_location" in conflicts(1, **cortex)
    assert "conflict.surgery_critical_location" not in conflicts(1, eloquent_regions=[], brainstem_involved=False)
    active = {"extracranial_disease": "progressive", "systemic_options": "effective"}
    assert "conflict.surgery_active_systemic_disease" in conflicts(1, active)
    assert "conflict.surgery_active_systemic_disease" not in conflicts(1, active | {"systemic_options": "none"})
    assert "conflict.surgery_active_systemic_disease" not in conflicts(1)  # controlled: surgery is offered
    two = CONTROLLED | {"post_operative": True, "resected_lesion_count": 2}
    assert "conflict.postoperative_cavity_srs" in conflicts(0, two)
    assert "conflict.postoperative_cavity_srs" not in conflicts(0, two | {"resected_lesion_count": 1})
    for conflict in RULES.table["conflicts"]:
        assert conflict["strength"] and conflict["source"] and conflict["status"] in ("V", "S", "U")


def test_suggestions_that_could_not_be_decided_are_listed():
    document = features_document([lesion_row(max_diameter_3d_mm=20.0) for _ in range(2)], discarded=3)
    result = evaluate_study(document, CONTROLLED | {"symptomatic": True}, RULES)
    assert result["first_line"] == []  # two lesions, or up to five: neither "limited" nor "up to three" is sure
    undecided = [(f["modality"], f["rule"]["id"]) for f in result["first_line_undetermined"]]
    assert undecided == [
        ("surgery", "text.surgery.decompression"),
        ("srs", "text.srs.limited"),
        ("surgery", "text.surgery.up_to_three"),
    ]
    assert summary_row(result)["first_line_undetermined"] == [f"{m}:{r}" for m, r in undecided]


def test_no_intervention_and_a_first_line_suggestion_are_flagged_as_disagreeing():
    clinical = {"kps": 50, "extracranial_disease": "progressive", "systemic_options": "none"}
    result = evaluate_study(features_document([lesion_row(), lesion_row()]), clinical, RULES)
    assert result["modalities"]["no_intervention"]["status"] == "indicated"
    assert [f["rule"]["id"] for f in result["first_line"]] == ["text.srs.limited"]
    assert any("recommends no intervention" in w and "srs (text.srs.limited)" in w for w in result["warnings"])
    assert "conflict.srs_poor_performance" in conflict_ids(result)
    assert any(a.startswith("srs_guideline_min_kps = 70 KPS") for a in result["assumptions"])  # the ECOG reading


def test_her2_breast_cancer_counts_as_targetable_without_a_marker_column():
    document = features_document([lesion_row()])
    result = evaluate_study(document, CONTROLLED | {"primary_histology": "breast_her2"}, RULES)
    systemic3 = by_id(result)["table1.systemic.3"]
    assert systemic3["met"] is True and result["modalities"]["systemic_therapy"]["status"] == "indicated"
    assert "molecular_markers" not in result["missing_inputs"]


def test_new_clinical_columns_are_read_from_the_table(tmp_path):
    labels = segmentation()
    paint(labels, SUPRATENTORIAL[0], 25, 3)  # one 50 mm lesion
    features = tmp_path / "features.json"
    path = tmp_path / "seg.nii.gz"
    nib.save(nib.Nifti1Image(labels, nib.load(ASEG).affine), path)
    assert main(["features", str(path), "--out-json", str(features), "--subject", "11"]) == 0
    clinical = tmp_path / "clinical.tsv"
    clinical.write_text(
        "subject\tsrs_unsuitable\tanticipated_poor_rt_response\tgross_total_resection\tresected_lesion_diameter_mm"
        "\tresected_lesion_location\n11\tyes\tno\t\t32.5\tinfratentorial\n"
    )
    out = tmp_path / "indications.json"
    assert main(["indicate", "--features", str(features), "--clinical", str(clinical), "--out-json", str(out)]) == 0
    result = json.loads(out.read_text())
    rules = by_id(result)
    assert (
        rules["table1.wbrt.3"]["met"] is True
        and rules["table1.surgery.6"]["evidence"]["anticipated_poor_rt_response"] is False
    )
    assert result["facts"]["resected_lesion_posterior_fossa"] is True  # no cavity: the clinical location
    assert result["facts"]["resected_lesion_diameter_source"] == "clinical table"
    bad = tmp_path / "bad.tsv"
    bad.write_text("subject\tresected_lesion_diameter_mm\n11\tnan\n")
    assert main(["indicate", "--features", str(features), "--clinical", str(bad), "--out-json", str(out)]) == 1


# ---- real segmentations (../shared) -------------------------------------------------------------------


def _real(tmp_path, shared, name: str) -> dict:
    out = tmp_path / f"{name}.json"
    seg = shared / "real/brats-evaluation-samples" / name
    assert main(["features", str(seg), "--out-json", str(out)]) == 0
    return json.loads(out.read_text())


@pytest.mark.shared
def test_real_single_metastasis_with_a_labelling_speck(tmp_path, shared):
    """BraTS-METS 01325 reference: one 24 mm metastasis and one core component below 20 mm3."""
    document = _real(tmp_path, shared, "ref_BraTS-MET-01325-000-seg.nii.gz")
    assert document["study"]["lesion_count"] == 1 and document["study"]["discarded_core_component_count"] == 1
    clinical = CONTROLLED | {"primary_histology": "nsclc_other"}
    result = evaluate_study(document, clinical, RULES)
    rules = by_id(result)
    assert rules["text.srs.limited"]["met"] is True  # 1 or 2 lesions: limited either way
    assert rules["text.surgery.up_to_three"]["met"] is True
    assert rules["table1.wbrt.2"]["met"] is None  # "multiple" depends on the speck
    assert rules["table1.wbrt.2"]["uncertain"]["lesion_count"].startswith("between 1 and 2")
    assert result["scores"]["gpa_original"]["total"] is None  # 1 (1.0 point) or 2 (0.5) metastases
    ignored = evaluate_study(document, clinical, RuleSet.load(overrides={"discarded_core_components": "ignore"}))
    assert by_id(ignored)["table1.wbrt.2"]["met"] is False
    assert ignored["scores"]["gpa_original"]["total"] == 3.5  # age 55: 0.5, KPS 90, no ECM, one lesion: 1 each


@pytest.mark.shared
def test_real_multiple_metastases(tmp_path, shared):
    """BraTS-METS 00132 (7 lesions + 1 speck) and 00217 (27 lesions + 7 specks) references."""
    seven = evaluate_study(_real(tmp_path, shared, "ref_BraTS-MET-00132-000-seg.nii.gz"), CONTROLLED, RULES)
    rules = by_id(seven)
    assert rules["text.srs.limited"]["met"] is False and rules["table1.wbrt.2"]["met"] is True
    assert rules["text.wbrt.multifocal"]["met"] is False  # 7 or 8 lesions
    assert {"conflict.srs_5_to_10", "conflict.wbrt_lesion_count"} <= conflict_ids(seven)
    assert "conflict.wbrt_2_to_4_lesions" not in conflict_ids(seven)
    many = evaluate_study(_real(tmp_path, shared, "ref_BraTS-MET-00217-000-seg.nii.gz"), CONTROLLED, RULES)
    rules = by_id(many)
    assert rules["text.wbrt.multifocal"]["met"] is True  # 27 to 34 lesions: > 15 either way
    assert [f["rule"]["id"] for f in many["first_line"]] == ["text.wbrt.multifocal"]
    assert "conflict.wbrt_lesion_count" not in conflict_ids(many)


# ---- issue 21: ranking, solitary, contradictions, ECOG ------------------------------------------------------
def first_line(result: dict) -> list[str]:
    return [f["rule"]["id"] for f in result["first_line"]]


def test_surgery_ranks_first_for_decompression_only_when_there_is_something_to_decompress():
    """A 15 mm symptomatic brainstem lesion and two 8 mm symptomatic lesions have nothing to decompress:
    surgery is listed after SRS, with its reason; a 45 mm lesion with mass effect keeps surgery first."""
    brainstem = features_document([lesion_row(max_diameter_3d_mm=15.0, brainstem_involved=True, eloquent_regions=[])])
    result = evaluate_study(brainstem, CONTROLLED | {"symptomatic": True}, RULES)
    assert by_id(result)["text.surgery.decompression"]["met"] is True  # the text's condition holds ...
    assert first_line(result)[:2] == ["text.srs.limited", "text.surgery.decompression"]  # ... but not first
    ranking = result["first_line"][1]["ranking"]
    assert ranking["first"] is False and "largest_lesion_brainstem_involved is yes" in ranking["why"]
    assert "conflict.surgery_brainstem" in conflict_ids(result)
    small = features_document([lesion_row(max_diameter_3d_mm=8.0) for _ in range(2)])
    result = evaluate_study(small, CONTROLLED | {"symptomatic": True}, RULES)
    assert first_line(result)[:2] == ["text.srs.limited", "text.surgery.decompression"]
    assert "is not known to hold" in result["first_line"][1]["ranking"]["why"]  # mass effect unknown, 8 mm
    assert evaluate_study(small, CONTROLLED | {"symptomatic": True, "mass_effect": True}, RULES)["first_line"][0][
        "ranking"
    ]["first"]
    large = features_document([lesion_row(max_diameter_3d_mm=45.0)])
    result = evaluate_study(large, CONTROLLED | {"symptomatic": True, "mass_effect": True}, RULES)
    assert first_line(result)[0] == "text.surgery.decompression"
    assert result["first_line"][0]["ranking"]["evidence"]["mass_effect"] is True


def test_contradictory_clinical_columns_and_hand_entries_against_imaging_are_flagged():
    clinical = CONTROLLED | {"extracranial_disease": "none", "extracranial_metastases": True, "mass_effect": False}
    document = features_document([lesion_row(volume_ml=20.0, edema_volume_ml=20.0)])
    warnings = evaluate_study(document, clinical, RULES)["warnings"]
    assert any("extracranial_disease is none but extracranial_metastases is yes" in w for w in warnings)
    assert any("mass_effect is no" in w and "mass_effect_on_imaging yes" in w for w in warnings)
    disagree = evaluate_study(features_document([lesion_row()]), {"kps": 90, "ecog": 2}, RULES)["warnings"]
    assert any("kps (90) and ecog (2, KPS 50-60" in w for w in disagree)
    assert evaluate_study(features_document([lesion_row()]), CONTROLLED, RULES)["warnings"] == []


def test_a_hand_entry_against_the_follow_up_is_flagged_and_wins():
    followup = {
        "subject": "x",
        "sessions": [{"session": "1"}, {"session": "2"}],
        "facts": {
            "rapid_growth": {"value": True, "evidence": "track 1 grew ..., 49 ± 12 % per month"},
            "distant_intracranial_progression_after_srs": {"value": None, "evidence": "no SRS recorded"},
        },
        "assumptions": ["rapid_growth_percent_per_month = 25 %: ..."],
    }
    result = evaluate_study(features_document([lesion_row()]), {"rapid_growth": False}, RULES, followup=followup)
    assert result["facts"]["rapid_growth"] is False
    assert any("rapid_growth is no, but the follow-up measured yes" in w and "49 ± 12" in w for w in result["warnings"])
    used = evaluate_study(features_document([lesion_row()]), {}, RULES, followup=followup)
    assert used["facts"]["rapid_growth"] is True
    assert "follow-up: rapid_growth_percent_per_month = 25 %: ..." in used["assumptions"]
    assert summary_row(used)["facts_from_followup"] == ["rapid_growth=yes"]
    # a document of an earlier brainmets (facts that ignore treatment and noise) is not used, and says so
    old = {**followup, "facts": {"rapid_growth": followup["facts"]["rapid_growth"]}}
    stale = evaluate_study(features_document([lesion_row()]), {}, RULES, followup=old)
    assert stale["facts"]["rapid_growth"] is None and any("earlier brainmets" in w for w in stale["warnings"])


@pytest.mark.parametrize(
    "ecog, rpa, poor, gpa_kps",
    [(0, "I", False, 1.0), (1, "I", False, 0.5), (2, "III", True, 0.0), (4, "III", True, 0.0)],
)
def test_ecog_stands_for_a_kps_range(ecog, rpa, poor, gpa_kps):
    clinical = {k: v for k, v in CONTROLLED.items() if k != "kps"} | {"ecog": ecog, "primary_controlled": True}
    result = evaluate_study(features_document([lesion_row()]), clinical, RULES)
    assert result["scores"]["rpa"]["class"] == rpa and result["facts"]["poor_performance_status"] is poor
    assert result["scores"]["gpa_original"]["points"]["kps"] == gpa_kps
    assert (
        result["facts"]["kps"] is None
        and result["facts"]["kps_range"] == {0: [90, 100], 1: [70, 80], 2: [50, 60], 4: [10, 20]}[ecog]
    )
    assert "kps" not in result["missing_inputs"]


def test_a_kps_range_across_a_cut_leaves_the_verdict_undetermined():
    strict = RuleSet.load(overrides={"poor_performance_kps_below": 75, "ecog_to_kps": "conventional"})
    clinical = {"ecog": 1, "extracranial_disease": "progressive", "systemic_options": "none"}
    result = evaluate_study(features_document([lesion_row()]), clinical, strict)
    none1 = by_id(result)["table1.none.1"]
    assert none1["met"] is None and result["facts"]["poor_performance_status"] is None
    assert any("ECOG 1 is KPS 70-80" in a for a in result["assumptions"])
    profile = by_id(evaluate_study(features_document([lesion_row()]), CONTROLLED | {"kps": None, "ecog": 1},
                                   RuleSet.load(overrides={"favourable_kps_min": 75})))["text.favourable_profile"]  # fmt: skip
    assert profile["met"] is None and "between 70 and 80: ECOG 1" in profile["uncertain"]["kps"]
    assert profile["evidence"]["kps"] == "70-80" and profile["evidence"]["ecog"] == 1
    ma = evaluate_study(
        features_document([lesion_row()]), {"ecog": 2}, RuleSet.load(overrides={"ecog_to_kps": "ma_2010"})
    )
    assert ma["facts"]["kps_range"] == [60, 70] and ma["scores"]["rpa"]["class"] is None
    assert "kps uncertain (ECOG 2 is KPS 60-70" in ma["scores"]["rpa"]["reason"]
