"""The indication module: every Table 1 criterion and text rule at its thresholds, facts, scores, end to end."""

import json

import pytest

from brainmets.cli import main
from brainmets.errors import ConfigError
from brainmets.indications import RuleSet, evaluate_study
from brainmets.indications.conditions import Trace, evaluate
from brainmets.indications.engine import histologies, known_facts, score_tables
from brainmets.indications.facts import build_facts
from brainmets.indications.scores import all_scores, gpa, rpa

from .conftest import ROOT

RULES = RuleSet.load()
BY_ID = {r["id"]: r for r in RULES.table["rules"] + RULES.table["text_rules"]}


def met(rule_id: str, **facts):
    """Whether a rule holds for these facts (every other fact unknown)."""
    values = dict.fromkeys(known_facts()) | facts
    return evaluate(BY_ID[rule_id]["when"], values, RULES.thresholds, Trace())


# (rule, facts just inside, facts just outside, the deciding fact to remove for "undetermined")
CASES = [
    (
        "table1.systemic.1",
        {"histology_chemosensitive": True},
        {"histology_chemosensitive": False},
        "histology_chemosensitive",
    ),
    (
        "table1.systemic.2",
        {"detected_on_screening": True, "systemic_therapy_planned": True},
        {"detected_on_screening": True, "systemic_therapy_planned": False},
        "systemic_therapy_planned",
    ),
    (
        "table1.systemic.3",
        {"targeted_therapy_sensitive": True},
        {"targeted_therapy_sensitive": False},
        "targeted_therapy_sensitive",
    ),
    (
        "table1.systemic.4",
        {"refractory_to_other_treatments": True},
        {"refractory_to_other_treatments": False},
        "refractory_to_other_treatments",
    ),
    (
        "table1.wbrt.1",
        {
            "cns_progression": True,
            "systemic_progression": True,
            "systemic_options": "limited",
            "poor_performance_status": True,
        },
        {
            "cns_progression": True,
            "systemic_progression": True,
            "systemic_options": "effective",
            "poor_performance_status": True,
        },
        "poor_performance_status",
    ),
    ("table1.wbrt.2", {"lesion_count": 2}, {"lesion_count": 1}, "lesion_count"),
    ("table1.wbrt.3", {"largest_diameter_mm": 40.01}, {"largest_diameter_mm": 40.0}, "largest_diameter_mm"),
    (
        "table1.wbrt.4",
        {"post_operative": True, "lesion_count": 3},
        {"post_operative": True, "lesion_count": 2},
        "post_operative",
    ),
    (
        "table1.wbrt.4",
        {"post_operative": True, "lesion_count": 10},
        {"post_operative": True, "lesion_count": 11},
        "lesion_count",
    ),
    (
        "table1.wbrt.5",
        {"recurrence_after_srs": True},
        {"recurrence_after_srs": False, "recurrence_after_wbrt": False},
        "recurrence_after_srs",
    ),
    (
        "table1.wbrt.5",
        {"recurrence_after_wbrt": True},
        {"recurrence_after_srs": False, "recurrence_after_wbrt": False},
        "recurrence_after_wbrt",
    ),
    (
        "table1.srs.1",
        {"histology_radioresistant": True},
        {"histology_radioresistant": False},
        "histology_radioresistant",
    ),
    (
        "table1.srs.2",
        {"post_operative": True, "resected_lesion_count": 1},
        {"post_operative": True, "resected_lesion_count": 2},
        "resected_lesion_count",
    ),
    (
        "table1.srs.3",
        {"local_recurrence_after_resection": True},
        {"local_recurrence_after_resection": False},
        "local_recurrence_after_resection",
    ),
    ("table1.srs.4", {"recurrence_after_wbrt": True}, {"recurrence_after_wbrt": False}, "recurrence_after_wbrt"),
    (
        "table1.surgery.1",
        {"cns_diagnosis_confirmed": False},
        {"cns_diagnosis_confirmed": True},
        "cns_diagnosis_confirmed",
    ),
    (
        "table1.surgery.2",
        {"lesion_count": 2, "marked_edema_lesion_count": 1, "mass_effect": True},
        {"lesion_count": 3, "marked_edema_lesion_count": 1, "mass_effect": True},
        "mass_effect",
    ),
    (
        "table1.surgery.2",
        {"lesion_count": 1, "marked_edema_lesion_count": 1, "mass_effect": True},
        {"lesion_count": 1, "marked_edema_lesion_count": 0, "mass_effect": True},
        "marked_edema_lesion_count",
    ),
    ("table1.surgery.3", {"eloquent_involved": True}, {"eloquent_involved": False}, "eloquent_involved"),
    ("table1.surgery.4", {"rapid_growth": True}, {"rapid_growth": False}, "rapid_growth"),
    ("table1.surgery.5", {"refractory_epilepsy": True}, {"refractory_epilepsy": False}, "refractory_epilepsy"),
    (
        "table1.surgery.6",
        {"cystic": True},
        {"cystic": False, "histology_radioresistant": False},
        "cystic",
    ),
    (
        "table1.surgery.6",
        {"histology_radioresistant": True},
        {"cystic": False, "histology_radioresistant": False},
        "histology_radioresistant",
    ),
    (
        "table1.none.1",
        {"systemic_progression": True, "systemic_options": "none", "poor_performance_status": True},
        {"systemic_progression": True, "systemic_options": "limited", "poor_performance_status": True},
        "systemic_options",
    ),
    ("text.srs.limited", {"lesion_count": 4}, {"lesion_count": 5}, "lesion_count"),
    ("text.srs.limited", {"lesion_count": 1}, {"lesion_count": 0}, "lesion_count"),
    (
        "text.surgery.decompression",
        {"lesion_count": 1, "largest_diameter_mm": 30.01},
        {
            "lesion_count": 1,
            "largest_diameter_mm": 30.0,
            "symptomatic": False,
            "posterior_fossa_involved": False,
            "eloquent_involved": False,
        },
        "largest_diameter_mm",
    ),
    (
        "text.surgery.decompression",
        {"lesion_count": 2, "posterior_fossa_involved": True, "hydrocephalus": True},
        {
            "lesion_count": 2,
            "largest_diameter_mm": 20,
            "symptomatic": False,
            "posterior_fossa_involved": True,
            "eloquent_involved": False,
            "hydrocephalus": False,
            "mass_effect": False,
        },
        "hydrocephalus",
    ),
    ("text.wbrt.multifocal", {"lesion_count": 16}, {"lesion_count": 15}, "lesion_count"),
    ("text.surgery.up_to_three", {"lesion_count": 3}, {"lesion_count": 4}, "lesion_count"),
    (
        "text.surgery.systemic_control",
        {"systemic_disease_controlled": True},
        {"systemic_disease_controlled": False},
        "systemic_disease_controlled",
    ),
    (
        "text.favourable_profile",
        {"kps": 70, "primary_controlled": True, "age_years": 64.9},
        {"kps": 70, "primary_controlled": True, "age_years": 65},
        "age_years",
    ),
    (
        "text.favourable_profile",
        {"kps": 70, "primary_controlled": True, "age_years": 50},
        {"kps": 60, "primary_controlled": True, "age_years": 50},
        "kps",
    ),
]


@pytest.mark.parametrize("rule_id, inside, outside, deciding", CASES, ids=[f"{c[0]}:{c[3]}" for c in CASES])
def test_rule_thresholds_and_missing_inputs(rule_id, inside, outside, deciding):
    assert met(rule_id, **inside) is True
    assert met(rule_id, **outside) is False
    unknown = {k: v for k, v in inside.items() if k != deciding}
    assert met(rule_id, **unknown) is None, "a missing deciding input must leave the rule undetermined"


def test_every_rule_has_a_threshold_case():
    assert {c[0] for c in CASES} == set(BY_ID)


def test_thresholds_come_from_config():
    rules = RuleSet.load(overrides={"wbrt_multifocal_min_lesions": 11})
    values = dict.fromkeys(known_facts()) | {"lesion_count": 11}
    text_rule = next(r for r in rules.table["text_rules"] if r["id"] == "text.wbrt.multifocal")
    assert evaluate(text_rule["when"], values, rules.thresholds, Trace()) is True
    with pytest.raises(ConfigError, match="unknown indication threshold"):
        RuleSet.load(overrides={"no_such_threshold": 1})


def test_edited_rule_tables_are_validated(tmp_path):
    from importlib import resources

    text = (resources.files("brainmets") / "data/indications/rules.yaml").read_text()
    bad = tmp_path / "rules.yaml"
    bad.write_text(text.replace("fact: histology_chemosensitive", "fact: chemo_sensitivity", 1))
    with pytest.raises(ConfigError, match="unknown fact"):
        RuleSet.load(bad)
    bad.write_text(
        text.replace(
            "when: {fact: refractory_epilepsy, is: true}", "when: {fact: refractory_epilepsy, is: true, ge: 1}"
        )
    )
    with pytest.raises(ConfigError):
        RuleSet.load(bad)
    edited = tmp_path / "edited.yaml"
    edited.write_text(text.replace("value: 16", "value: 11"))
    assert RuleSet.load(edited).thresholds["wbrt_multifocal_min_lesions"] == 11


def test_kleene_logic():
    facts = {"a": True, "b": None, "c": False}
    cond = lambda op, *names: {op: [{"fact": n, "is": True} for n in names]}  # noqa: E731
    assert evaluate(cond("all", "a", "b"), facts, {}, Trace()) is None
    assert evaluate(cond("all", "c", "b"), facts, {}, Trace()) is False
    assert evaluate(cond("any", "a", "b"), facts, {}, Trace()) is True
    assert evaluate(cond("any", "c", "b"), facts, {}, Trace()) is None
    assert evaluate({"not": {"fact": "b", "is": True}}, facts, {}, Trace()) is None
    trace = Trace()
    evaluate(cond("all", "a", "b"), facts, {}, trace)
    assert trace.evidence == {"a": True, "b": None} and trace.missing == ["b"]


# ---- facts -------------------------------------------------------------------------------------------


def _document(lesions, cavity=None):
    return {
        "study": {
            "subject": "x",
            "session": None,
            "lesion_count": len(lesions),
            "largest_max_diameter_3d_mm": max((r.get("max_diameter_3d_mm", 0) for r in lesions), default=None),
            "cumulative_tumor_volume_ml": sum(r["volume_ml"] for r in lesions),
            "resection_cavity_volume_ml": cavity,
        },
        "lesions": lesions,
    }


def _lesion(**kw):
    return {
        "volume_ml": 1.0,
        "edema_volume_ml": 1.0,
        "edema_ratio": 1.0,
        "max_diameter_3d_mm": 12.0,
        "location": None,
        "eloquent_regions": None,
        "brainstem_involved": None,
    } | kw


def _facts(document, clinical=None):
    columns = ["subject", "session", *sorted(known_facts())]
    from brainmets.config import load_schema

    columns = list(load_schema("clinical.schema.yaml")["properties"])
    return build_facts(document, clinical, histologies(), RULES.thresholds, columns)


def test_imaging_facts():
    doc = _document(
        [
            _lesion(edema_ratio=2.0, edema_volume_ml=29.0, location="supratentorial", eloquent_regions=[]),
            _lesion(edema_ratio=1.99, location="mixed", eloquent_regions=[], brainstem_involved=True),
        ],
        cavity=0.0,
    )
    facts = _facts(doc).values
    assert facts["marked_edema_lesion_count"] == 1
    assert facts["mass_effect_on_imaging"] is True  # 1 + 29 mL reaches the 30 mL surrogate
    assert facts["posterior_fossa_involved"] is True and facts["eloquent_involved"] is True
    assert facts["resection_cavity_present"] is False and facts["post_operative"] is False
    unknown = _facts(_document([_lesion()])).values
    assert unknown["posterior_fossa_involved"] is None and unknown["eloquent_involved"] is None
    no_edema = _facts(_document([_lesion(edema_ratio=None, edema_volume_ml=None)])).values
    assert no_edema["marked_edema_lesion_count"] is None and no_edema["mass_effect_on_imaging"] is None
    empty = _facts(_document([])).values
    assert empty["largest_diameter_mm"] == 0.0 and empty["posterior_fossa_involved"] is False


def test_clinical_facts_are_never_guessed():
    facts = _facts(_document([_lesion()]), {"primary_histology": "nsclc_adenocarcinoma", "molecular_markers": None})
    assert facts.values["targeted_therapy_sensitive"] is None  # markers unknown
    facts = _facts(_document([_lesion()]), {"primary_histology": "nsclc_adenocarcinoma", "molecular_markers": ["none"]})
    assert facts.values["targeted_therapy_sensitive"] is False
    facts = _facts(_document([_lesion()]), {"primary_histology": "melanoma", "molecular_markers": ["BRAF"]})
    assert facts.values["targeted_therapy_sensitive"] is True and facts.values["histology_radioresistant"] is True
    facts = _facts(_document([_lesion()]), {"primary_histology": "renal"})
    assert facts.values["targeted_therapy_sensitive"] is False  # nothing to target in the data file
    facts = _facts(_document([_lesion()]), {"extracranial_disease": "progressive", "extracranial_metastases": True})
    assert facts.values["primary_controlled"] is None  # progressive disease with metastases: primary unknown
    facts = _facts(_document([_lesion()]), {"extracranial_disease": "progressive", "extracranial_metastases": False})
    assert facts.values["primary_controlled"] is False and "primary_controlled" in facts.derivations


# ---- scores (clinical-reference.md sections 2 and 3) ---------------------------------------------


def _score_facts(**kw):
    return dict.fromkeys(known_facts()) | kw


@pytest.mark.parametrize(
    "kps, age, controlled, ecm, expected",
    [
        (60, 40, True, False, "III"),
        (70, 64, True, False, "I"),
        (70, 65, True, False, "II"),
        (90, 50, False, False, "II"),
        (80, 50, True, True, "II"),
    ],
)
def test_rpa(kps, age, controlled, ecm, expected):
    result = rpa(
        score_tables()["rpa"],
        _score_facts(kps=kps, age_years=age, primary_controlled=controlled, extracranial_metastases=ecm),
    )
    assert result["class"] == expected
    assert result["median_survival_months"] == {"I": 7.1, "II": 4.2, "III": 2.3}[expected]


def test_rpa_is_undetermined_when_an_input_is_missing():
    assert rpa(score_tables()["rpa"], _score_facts(kps=80, age_years=50))["class"] is None
    assert rpa(score_tables()["rpa"], _score_facts(kps=50))["class"] == "III"  # KPS < 70 decides alone


GPA_CASES = [  # clinical-reference.md 3.4
    ("GPA-T1", "original", None, dict(age_years=45, kps=90, lesion_count=1, extracranial_metastases=False), 4.0, 11.0),
    ("GPA-T2", "original", None, dict(age_years=60, kps=70, lesion_count=3, extracranial_metastases=True), 1.5, 3.8),
    ("GPA-T3", "original", None, dict(age_years=61, kps=60, lesion_count=4, extracranial_metastases=True), 0.0, 2.6),
    (
        "GPA-T4",
        "updated",
        "nsclc_adenocarcinoma",
        dict(age_years=65, kps=90, extracranial_metastases=False, lesion_count=2, egfr_or_alk_positive=True),
        4.0,
        46.8,
    ),
    (
        "GPA-T5",
        "updated",
        "nsclc_other",
        dict(age_years=65, kps=90, extracranial_metastases=False, lesion_count=2, egfr_or_alk_positive=True),
        3.0,
        12.8,
    ),
    (
        "GPA-T6",
        "updated",
        "nsclc_adenocarcinoma",
        dict(age_years=72, kps=70, extracranial_metastases=True, lesion_count=6, egfr_or_alk_positive=None),
        0.0,
        6.9,
    ),
    (
        "GPA-T7",
        "updated",
        "melanoma",
        dict(age_years=65, kps=80, extracranial_metastases=True, lesion_count=1, braf_positive=True),
        2.5,
        15.8,
    ),
    (
        "GPA-T8",
        "updated",
        "breast_her2",
        dict(age_years=55, kps=80, breast_subtype="her2", lesion_count=1, extracranial_metastases=False),
        3.5,
        36.3,
    ),
    (
        "GPA-T9",
        "updated",
        "renal",
        dict(kps=90, extracranial_metastases=False, hemoglobin_g_dl=13, lesion_count=3),
        4.0,
        35,
    ),
    (
        "GPA-T10",
        "updated",
        "colorectal",
        dict(kps=80, age_years=55, lesion_count=1, extracranial_metastases=False),
        3.0,
        10.8,
    ),
    ("GPA-T11", "ds_2012", "breast_luminal_b", dict(age_years=55, kps=80, breast_subtype="luminal_b"), 3.5, 25.3),
]


@pytest.mark.parametrize("case, group, histology, inputs, total, months", GPA_CASES, ids=[c[0] for c in GPA_CASES])
def test_gpa_tables(case, group, histology, inputs, total, months):
    scores = all_scores(score_tables(), _score_facts(**inputs), histologies().get(histology))
    result = scores[{"original": "gpa_original", "updated": "gpa_updated", "ds_2012": "gpa_ds_2012"}[group]]
    assert result["total"] == pytest.approx(total)
    assert result["median_survival_months"] == pytest.approx(months)


def test_gpa_missing_input_and_table_defaults():
    tables = score_tables()
    original = tables["gpa"]["original"]
    result = gpa(original, original["factors"], _score_facts(age_years=45, kps=90, lesion_count=1))
    assert result["total"] is None and result["missing"] == ["extracranial_metastases"]
    renal = tables["gpa"]["updated"]["renal"]
    result = gpa(renal, renal["factors"], _score_facts(kps=90, extracranial_metastases=False, lesion_count=3))
    assert result["total"] == 3.5 and "unknown" in result["notes"][0]  # unknown haemoglobin scores 0.5
    scores = all_scores(tables, _score_facts(kps=90), histologies()["germ_cell"])
    assert scores["gpa_ds_2012"] == {"not_applicable": "no such score for this histology"}


# ---- whole studies ---------------------------------------------------------------------------------


def test_missing_clinical_data_never_gives_a_confident_no():
    document = _document(
        [_lesion(location="supratentorial", eloquent_regions=[], brainstem_involved=False)], cavity=0.0
    )
    result = evaluate_study(document, None, RULES)
    statuses = {m: e["status"] for m, e in result["modalities"].items()}
    assert set(statuses.values()) <= {"indicated", "undetermined"}, statuses
    assert result["scores"]["rpa"]["class"] is None and result["scores"]["gpa_original"]["total"] is None
    assert "kps" in result["missing_inputs"] and "primary_histology" in result["missing_inputs"]
    assert any("no clinical row" in a for a in result["assumptions"])
    assert result["research_use_only"] is True and "not a treatment recommendation" in result["disclaimer"]


def test_every_fired_rule_lists_its_evidence():
    document = _document([_lesion(max_diameter_3d_mm=45.0, location="infratentorial", eloquent_regions=[])])
    clinical = {
        "kps": 60,
        "age_years": 70,
        "extracranial_disease": "progressive",
        "systemic_options": "none",
        "extracranial_metastases": True,
        "symptomatic": True,
    }
    result = evaluate_study(document, clinical, RULES)
    fired = [c for m in result["modalities"].values() for c in m["criteria"] if c["met"]]
    assert {c["id"] for c in fired} == {"table1.wbrt.3", "table1.none.1"}
    wbrt3 = next(c for c in fired if c["id"] == "table1.wbrt.3")
    assert wbrt3["evidence"] == {"largest_diameter_mm": 45.0}
    assert wbrt3["thresholds"] == {"wbrt_large_tumour_diameter_mm": 40}
    none1 = next(c for c in fired if c["id"] == "table1.none.1")
    assert (
        none1["evidence"]["poor_performance_status"] is True and none1["thresholds"]["poor_performance_kps_below"] == 70
    )
    assert any(a.startswith("poor_performance_kps_below = 70") for a in result["assumptions"])
    first = [(f["modality"], f["rule"]["id"]) for f in result["first_line"]]
    assert first == [
        ("surgery", "text.surgery.decompression"),
        ("srs", "text.srs.limited"),
        ("surgery", "text.surgery.up_to_three"),
    ]
    assert result["first_line"][0]["requirements"][0]["met"] is False  # progressive systemic disease
    assert {c["id"] for c in result["conflicts"]} == set()
    assert result["scores"]["rpa"]["class"] == "III"


def test_conflicts_are_reported_for_the_patient():
    lesions = [_lesion(max_diameter_3d_mm=35.0) for _ in range(6)]
    result = evaluate_study(_document(lesions), {"primary_histology": "sclc"}, RULES)
    assert {c["id"] for c in result["conflicts"]} == {
        "conflict.surgery_size_cut",
        "conflict.wbrt_lesion_count",
        "conflict.srs_5_to_10",
    }
    result = evaluate_study(_document(lesions[:3]), {"primary_histology": "sclc"}, RULES)
    assert {c["id"] for c in result["conflicts"]} == {
        "conflict.surgery_size_cut",
        "conflict.surgery_level_of_evidence",
        "conflict.sclc_srs_alone",
    }


# ---- end to end: segmentation + clinical row -> features -> indicate -------------------------------


COHORT = ROOT / "test_data" / "cohort"
CLINICAL_HEADER = (
    "subject\tsession\tage_years\tkps\textracranial_disease\textracranial_metastases\tprimary_histology\t"
    "molecular_markers\tsymptomatic\tcns_diagnosis_confirmed\tmass_effect\n"
)


def _cli(args) -> int:
    return main([str(a) for a in args])


def _indicate(tmp_path, seg, clinical_rows, *extra, features_args=()):
    features = tmp_path / "features.json"
    assert _cli(["features", seg, "--out-json", features, *features_args]) == 0
    clinical = tmp_path / "clinical.tsv"
    clinical.write_text(CLINICAL_HEADER + "".join(clinical_rows))
    out = tmp_path / "indications.json"
    assert _cli(["indicate", "--features", features, "--clinical", clinical, "--out-json", out, *extra]) == 0
    return json.loads(out.read_text())


def test_end_to_end_on_the_demo_cohort(tmp_path):
    seg = COHORT / "sub-02_ses-01_dseg.nii.gz"
    row = "02\t01\t58\t80\tcontrolled\tno\tnsclc_adenocarcinoma\tEGFR\tno\tyes\tno\n"
    result = _indicate(
        tmp_path,
        seg,
        [row],
        features_args=("--subject", "02", "--session", "01", "--parcellation", COHORT / "toy_aseg.nii.gz"),
    )
    status = {m: e["status"] for m, e in result["modalities"].items()}
    assert status["systemic_therapy"] == "indicated"  # EGFR: targeted therapy with a CNS-active agent
    assert status["wbrt"] == "indicated"  # three lesions: multiple metastases
    assert status["no_intervention"] == "not_indicated"
    surgery = {c["id"]: c for c in result["modalities"]["surgery"]["criteria"]}
    assert surgery["table1.surgery.3"]["met"] is False  # the toy brain: no lesion in an eloquent region
    assert surgery["table1.surgery.3"]["evidence"] == {"eloquent_involved": False}
    assert [f["rule"]["id"] for f in result["first_line"]] == ["text.srs.limited", "text.surgery.up_to_three"]
    assert result["scores"]["gpa_updated"]["median_survival_months"] == 46.8  # lung-molGPA 4.0
    assert result["scores"]["rpa"]["class"] == "I"
    assert result["subject"] == "02" and result["provenance"]["clinical_row_found"] is True
    assert "cystic" in result["missing_inputs"] and "kps" not in result["missing_inputs"]


def test_a_study_without_a_clinical_row(tmp_path, caplog):
    seg = COHORT / "sub-01_ses-01_dseg.nii.gz"
    row = "99\t\t58\t80\tcontrolled\tno\tmelanoma\t\tno\tyes\t\n"
    result = _indicate(tmp_path, seg, [row], "--subject", "01")
    assert result["provenance"]["clinical_row_found"] is False
    assert "no row for subject 01" in caplog.text
    assert result["modalities"]["no_intervention"]["status"] == "undetermined"


@pytest.mark.parametrize(
    "content, message",
    [
        ("subject\tkps\n01\tgood\n", "line 2, column kps: 'good' is not a whole number"),
        ("subject\tsymptomatic\n01\tmaybe\n", "line 2, column symptomatic: 'maybe' is not yes/no"),
        ("subject\tkarnofsky\n01\t80\n", "unknown column(s) karnofsky"),
        ("subject\tprimary_histology\n01\tlymphoma\n", "'lymphoma' is not one of"),
        ("subject\tkps\n01\t150\n", "line 2: kps: 150 is greater than the maximum of 100"),
        ("subject\textracranial_disease\n01\tstable\n", "extracranial_disease"),
    ],
)
def test_bad_clinical_tables_are_refused(tmp_path, capsys, content, message):
    features = tmp_path / "features.json"
    assert _cli(["features", COHORT / "sub-04_ses-01_dseg.nii.gz", "--out-json", features, "--subject", "01"]) == 0
    clinical = tmp_path / "clinical.tsv"
    clinical.write_text(content)
    out = tmp_path / "out.json"
    assert _cli(["indicate", "--features", features, "--clinical", clinical, "--out-json", out]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(clinical) in err[0] and message in err[0]
    assert not out.exists()


def test_indicate_refuses_to_overwrite_its_inputs(tmp_path, capsys):
    features = tmp_path / "features.json"
    assert _cli(["features", COHORT / "sub-04_ses-01_dseg.nii.gz", "--out-json", features]) == 0
    before = features.read_text()
    assert _cli(["indicate", "--features", features, "--out-json", features]) == 2
    assert features.read_text() == before


@pytest.mark.shared
def test_real_segmentation_fires_exactly_at_its_thresholds(tmp_path, shared):
    """BRATS 2015 pat0005: one 92 mm lesion, edema ratio 0.72, core + edema 77 mL."""
    seg = shared / "real/deepmedic-brats2015/brats_2013_pat0005_1/OTMultiClass.nii.gz"
    row = "05\t\t50\t90\tcontrolled\tno\tmelanoma\tnone\tyes\tyes\t\n"
    args = ("--subject", "05", "--scheme", "brats-2015")
    result = _indicate(tmp_path, seg, [row], features_args=args)
    crit = {c["id"]: c for m in result["modalities"].values() for c in m["criteria"]}
    assert crit["table1.wbrt.3"]["met"] is True and crit["table1.wbrt.3"]["evidence"]["largest_diameter_mm"] > 90
    assert crit["table1.surgery.2"]["met"] is False  # edema ratio 0.72 is not "marked" at the default 2.0
    assert crit["table1.surgery.2"]["evidence"]["mass_effect"] is True  # 77 mL >= 30 mL (imaging surrogate)
    assert crit["table1.srs.1"]["met"] is True  # melanoma: radioresistant
    assert crit["table1.surgery.3"]["met"] is None and "anatomical reference" in " ".join(
        crit["table1.surgery.3"]["missing"]
    )
    assert result["first_line"][0]["rule"]["id"] == "text.surgery.decompression"
    assert not any(c["id"] == "conflict.favourable_profile_ecm" for c in result["conflicts"])
    (tmp_path / "t").mkdir()
    loose = _indicate(
        tmp_path / "t",
        seg,
        [row],
        "--config-json",
        '{"indications": {"thresholds": {"marked_edema_ratio": 0.7}}}',
        features_args=args,
    )
    crit = {c["id"]: c for m in loose["modalities"].values() for c in m["criteria"]}
    assert crit["table1.surgery.2"]["met"] is True
    assert loose["modalities"]["surgery"]["status"] == "indicated"
    assert any(a.startswith("marked_edema_ratio = 0.7") for a in loose["assumptions"])


@pytest.mark.shared
def test_real_model_output_with_two_lesions(tmp_path, shared):
    """A BraTS-toolkit model output (brats-2021 labels) with a SynthSeg-free, location-free evaluation."""
    seg = shared / "real/brainlesion-bratstoolkit/OtherEXampleFromTCIA/segmentation_isen-20.nii.gz"
    row = "07\t\t70\t60\tprogressive\tyes\tsclc\t\tno\tyes\tno\n"
    result = _indicate(tmp_path, seg, [row], features_args=("--subject", "07", "--scheme", "brats-2021"))
    crit = {c["id"]: c for m in result["modalities"].values() for c in m["criteria"]}
    count = crit["table1.wbrt.2"]["evidence"]["lesion_count"]
    assert crit["table1.wbrt.2"]["met"] is (count >= 2)
    assert crit["table1.systemic.1"]["met"] is True  # SCLC is exquisitely chemosensitive (data file)
    assert result["scores"]["rpa"]["class"] == "III"
    assert crit["table1.wbrt.1"]["met"] is None and "cns_progression" in crit["table1.wbrt.1"]["missing"]


def test_readme_explains_every_rule_threshold_fact_and_column():
    from brainmets.config import load_schema
    from brainmets.indications.facts import DERIVED_FACTS, IMAGING_FACTS

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    names = [r["id"] for r in RULES.table["rules"] + RULES.table["text_rules"]]
    names += list(RULES.table["thresholds"]) + list(IMAGING_FACTS) + list(DERIVED_FACTS)
    names += list(load_schema("clinical.schema.yaml")["properties"])
    assert [n for n in names if f"`{n}`" not in readme] == []
