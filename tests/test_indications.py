"""The indication module: every Table 1 criterion and text rule at its thresholds, facts, scores, end to end."""

import json

import pytest

from brainmets.cli import main
from brainmets.errors import ConfigError
from brainmets.indications import RuleSet, evaluate_study
from brainmets.indications.conditions import CountRange, Trace, describe, evaluate
from brainmets.indications.engine import clinical_columns, histologies, known_facts, score_tables
from brainmets.indications.facts import build_facts
from brainmets.indications.scores import all_scores, gpa, rpa

from .conftest import ROOT, features_document, lesion_row

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
    (
        "table1.wbrt.3",
        {"largest_diameter_mm": 40.01, "srs_unsuitable": True},
        {"largest_diameter_mm": 40.0, "srs_unsuitable": True},
        "largest_diameter_mm",
    ),
    (
        "table1.wbrt.3",
        {"largest_diameter_mm": 45.0, "srs_unsuitable": True},
        {"largest_diameter_mm": 45.0, "srs_unsuitable": False},
        "srs_unsuitable",  # never assumed from the size
    ),
    (
        "table1.wbrt.4",
        {"post_operative": True, "gross_total_resection": True, "lesion_count": 3},
        {"post_operative": True, "gross_total_resection": True, "lesion_count": 2},
        "post_operative",
    ),
    (
        "table1.wbrt.4",
        {"post_operative": True, "gross_total_resection": True, "lesion_count": 10},
        {"post_operative": True, "gross_total_resection": True, "lesion_count": 11},
        "lesion_count",
    ),
    (
        "table1.wbrt.4",
        {"post_operative": True, "gross_total_resection": True, "lesion_count": 5},
        {"post_operative": True, "gross_total_resection": False, "lesion_count": 5},
        "gross_total_resection",
    ),
    *[
        (
            "table1.wbrt.5",
            {fact: True},
            dict.fromkeys(
                [
                    "recurrence_after_srs",
                    "recurrence_after_wbrt",
                    "distant_intracranial_progression_after_srs",
                    "distant_intracranial_progression_after_wbrt",
                ],
                False,
            ),
            fact,
        )
        for fact in (
            "recurrence_after_srs",
            "recurrence_after_wbrt",
            "distant_intracranial_progression_after_srs",
            "distant_intracranial_progression_after_wbrt",
        )
    ],
    (
        "table1.srs.1",
        {"histology_radioresistant": True},
        {"histology_radioresistant": False},
        "histology_radioresistant",
    ),
    (
        "table1.srs.2",
        {"post_operative": True, "resected_lesion_count": 1, "lesion_count": 0},
        {"post_operative": True, "resected_lesion_count": 2, "lesion_count": 0},
        "resected_lesion_count",
    ),
    (
        "table1.srs.2",
        {"post_operative": True, "resected_lesion_count": 1, "lesion_count": 0},
        {"post_operative": True, "resected_lesion_count": 1, "lesion_count": 4},  # residual lesions: not solitary
        "lesion_count",
    ),
    (
        "table1.srs.3",
        {"local_recurrence_after_resection": True, "solitary_metastasis_at_resection": True},
        {"local_recurrence_after_resection": False, "solitary_metastasis_at_resection": True},
        "local_recurrence_after_resection",
    ),
    (
        "table1.srs.3",
        {"local_recurrence_after_resection": True, "solitary_metastasis_at_resection": True},
        {"local_recurrence_after_resection": True, "solitary_metastasis_at_resection": False},  # two resected
        "solitary_metastasis_at_resection",
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
        {"cystic": False, "anticipated_poor_rt_response": False, "histology_radioresistant": True},
        "cystic",
    ),
    (
        "table1.surgery.6",
        {"anticipated_poor_rt_response": True},
        {"cystic": False, "anticipated_poor_rt_response": False},
        "anticipated_poor_rt_response",
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
        {"lesion_count": 4, "symptomatic": True},
        {"lesion_count": 5, "symptomatic": True, "largest_diameter_mm": 50},  # beyond limited disease
        "lesion_count",
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


def test_a_count_known_as_a_range_decides_only_when_the_whole_range_agrees():
    between = {"fact": "n", "between": [1, 4]}
    for low, extra, expected in [(1, 2, True), (0, 40, None), (3, 1, True), (3, 2, None), (6, 3, False)]:
        trace = Trace()
        assert evaluate(between, {"n": CountRange(low, extra)}, {}, trace) is expected, (low, extra)
        assert trace.evidence == {"n": low} and trace.missing == []
        assert trace.uncertain == ([] if expected is not None else ["n"])
    assert evaluate({"fact": "n", "ge": 2}, {"n": CountRange(1, 1)}, {}, Trace()) is None
    assert evaluate({"fact": "n", "is": 0}, {"n": CountRange(0, 0)}, {}, Trace()) is True


def test_conflicts_read_rule_verdicts_and_rules_may_not(tmp_path):
    cond = {"all": [{"rule": "table1.wbrt.2", "is": "met"}, {"fact": "n", "ge": 2}]}
    trace = Trace()
    assert evaluate(cond, {"rule:table1.wbrt.2": "met", "n": 3}, {}, trace) is True
    assert trace.evidence == {"rule:table1.wbrt.2": "met", "n": 3}
    assert evaluate(cond, {"rule:table1.wbrt.2": "undetermined", "n": 3}, {}, Trace()) is False
    either = {"rule": "table1.wbrt.3", "in": ["met", "undetermined"]}
    assert evaluate(either, {"rule:table1.wbrt.3": "undetermined"}, {}, Trace()) is True  # a verdict is known
    assert describe(cond) == "rule table1.wbrt.2 is met and n >= 2"
    from importlib import resources

    text = (resources.files("brainmets") / "data/indications/rules.yaml").read_text()
    bad = tmp_path / "rules.yaml"
    bad.write_text(text.replace("when: {fact: refractory_epilepsy, is: true}", "when: {rule: table1.wbrt.2, is: met}"))
    with pytest.raises(ConfigError, match="only conflicts may read other rules"):
        RuleSet.load(bad)
    bad.write_text(text.replace("{rule: table1.wbrt.2, is: met}", "{rule: table1.wbrt.99, is: met}"))
    with pytest.raises(ConfigError, match=r"unknown rule\(s\) \['table1.wbrt.99'\]"):
        RuleSet.load(bad)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"marked_edema_ratio": float("nan")}, "must be a finite number"),
        ({"marked_edema_ratio": float("inf")}, "must be a finite number"),
        ({"multiple_min_lesions": True}, "must be a finite number"),
        ({"brainstem_is_functionally_critical": 1}, "must be true or false"),
        ({"size_diameter": "feret"}, "must be one of max_diameter_3d_mm, axial_longest_diameter_mm"),
        ({"discarded_core_components": 0}, "must be a text"),
    ],
)
def test_threshold_overrides_are_checked(overrides, message):
    with pytest.raises(ConfigError, match=message):
        RuleSet.load(overrides=overrides)


def test_settings_are_thresholds_too():
    rules = RuleSet.load(
        overrides={"size_diameter": "axial_longest_diameter_mm", "brainstem_is_functionally_critical": True}
    )
    assert rules.thresholds["size_diameter"] == "axial_longest_diameter_mm"
    assert rules.thresholds["brainstem_is_functionally_critical"] is True


# ---- facts -------------------------------------------------------------------------------------------


def _facts(document, clinical=None, thresholds=None):
    return build_facts(document, clinical, histologies(), RULES.thresholds | (thresholds or {}), clinical_columns())


def test_imaging_facts():
    doc = features_document(
        [
            lesion_row(edema_ratio=2.0, edema_volume_ml=29.0, location="supratentorial", eloquent_regions=[]),
            lesion_row(edema_ratio=1.99, location="mixed", eloquent_regions=["brainstem"], brainstem_involved=True),
        ],
        cavity_ml=0.0,
    )
    facts = _facts(doc).values
    assert facts["marked_edema_lesion_count"] == 1
    assert facts["mass_effect_on_imaging"] is True  # 1 + 29 mL reaches the 30 mL surrogate
    assert facts["posterior_fossa_involved"] is True and facts["brainstem_involved"] is True
    assert facts["eloquent_involved"] is False, "the brainstem alone is not functionally critical by default"
    assert facts["eloquent_regions_involved"] == ["brainstem"]
    assert facts["resection_cavity_present"] is False
    assert facts["post_operative"] is None, "no segmented cavity does not show that there was no operation"
    unknown = _facts(features_document([lesion_row()])).values
    assert unknown["posterior_fossa_involved"] is None and unknown["eloquent_involved"] is None
    assert unknown["brainstem_involved"] is None
    no_edema = _facts(features_document([lesion_row(edema_ratio=None, edema_volume_ml=None)])).values
    assert no_edema["marked_edema_lesion_count"] is None and no_edema["mass_effect_on_imaging"] is None
    small = _facts(features_document([lesion_row(volume_ml=2.0, edema_volume_ml=3.0)])).values
    assert small["mass_effect_on_imaging"] is None and small["mass_effect"] is None, "imaging never says no"
    empty = _facts(features_document([])).values
    assert empty["largest_diameter_mm"] == 0.0 and empty["posterior_fossa_involved"] is False


def _with_parcellation(lesions, **study):
    """A features document whose subject parcellation was measured (no shift, symmetric ventricles by default)."""
    doc = features_document(lesions)
    doc["study"] |= {
        "midline_shift_mm": 1.0,
        "lateral_ventricle_volume_left_ml": 10.0,
        "lateral_ventricle_volume_right_ml": 10.0,
        "evans_index": 0.25,
    } | study
    return doc


def test_mass_effect_from_the_subjects_parcellation():
    big = lesion_row(volume_ml=20.0, edema_volume_ml=40.0, hemisphere="left")  # past the 30 mL volume surrogate
    facts = _facts(_with_parcellation([big]))
    assert facts.values["mass_effect_on_imaging"] is None, "with a parcellation the shift decides, not the volume"
    assert facts.values["mass_effect"] is None and "midline shift 1.0 mm" in facts.derivations["mass_effect"]
    assert facts.thresholds["mass_effect"] == ("mass_effect_midline_shift_mm", "effaced_ventricle_ratio")
    shifted = _facts(_with_parcellation([lesion_row(hemisphere="left")], midline_shift_mm=5.0))
    assert shifted.values["mass_effect_on_imaging"] is True and shifted.values["mass_effect"] is True
    assert "midline shift 5.0 mm" in shifted.derivations["mass_effect"]
    below = _facts(
        _with_parcellation([lesion_row()], midline_shift_mm=5.0), thresholds={"mass_effect_midline_shift_mm": 6}
    )
    assert below.values["mass_effect_on_imaging"] is None
    effaced = _facts(_with_parcellation([lesion_row(hemisphere="left")], lateral_ventricle_volume_left_ml=5.0))
    assert effaced.values["effaced_ventricle_side"] == "left" and effaced.values["mass_effect"] is True
    other_side = _facts(_with_parcellation([lesion_row(hemisphere="right")], lateral_ventricle_volume_left_ml=5.0))
    assert other_side.values["effaced_ventricle_side"] is None, "a small ventricle away from every lesion"
    assert other_side.values["mass_effect"] is None
    clinical = _facts(_with_parcellation([lesion_row()], midline_shift_mm=9.0), {"mass_effect": False})
    assert clinical.values["mass_effect"] is False, "the clinical value wins"
    assert any("mass_effect is no, but imaging shows it" in w for w in clinical.warnings)


def test_hydrocephalus_needs_ventriculomegaly_and_an_obstructing_lesion():
    touching = lesion_row(location="infratentorial", fourth_ventricle_contact=True)
    facts = _facts(_with_parcellation([touching], evans_index=0.34)).values
    assert facts["ventriculomegaly_on_imaging"] is True and facts["hydrocephalus_on_imaging"] is True
    assert facts["hydrocephalus"] is True
    third = lesion_row(third_ventricle_contact=True, fourth_ventricle_contact=False)
    assert _facts(_with_parcellation([third], evans_index=0.34)).values["hydrocephalus"] is True
    apart = lesion_row(location="infratentorial", fourth_ventricle_contact=False, third_ventricle_contact=False)
    wide = _facts(_with_parcellation([apart], evans_index=0.34))
    assert wide.values["ventriculomegaly_on_imaging"] is True and wide.values["hydrocephalus"] is None
    assert "no lesion touches" in wide.derivations["hydrocephalus"]
    normal = _facts(_with_parcellation([touching], evans_index=0.3)).values  # > 0.3, not >=
    assert normal["ventriculomegaly_on_imaging"] is None and normal["hydrocephalus"] is None, "never no"
    clinical = _facts(_with_parcellation([touching], evans_index=0.34), {"hydrocephalus": False})
    assert clinical.values["hydrocephalus"] is False
    assert any("clinical hydrocephalus is no" in w for w in clinical.warnings)
    without = _facts(features_document([touching]))
    assert without.values["hydrocephalus"] is None and "no Evans index measured" in without.derivations["hydrocephalus"]
    assert without.thresholds["mass_effect"] == ("mass_effect_lesion_volume_ml",), "no parcellation: the fallback"


def test_functionally_critical_regions():
    def critical(lesion, **thresholds):
        values = _facts(features_document([lesion_row(**lesion)]), thresholds=thresholds).values
        return values["eloquent_involved"]

    assert critical({"eloquent_regions": ["primary_motor_cortex"], "brainstem_involved": False}) is True
    assert critical({"eloquent_regions": ["basal_ganglia"], "brainstem_involved": False}) is True
    assert critical({"eloquent_regions": ["brainstem"], "brainstem_involved": True}) is False
    assert critical({"eloquent_regions": [], "brainstem_involved": True}) is False
    on = {"brainstem_is_functionally_critical": True}
    assert critical({"eloquent_regions": ["brainstem"], "brainstem_involved": True}, **on) is True
    assert critical({"eloquent_regions": [], "brainstem_involved": False}, **on) is False
    assert critical({"eloquent_regions": None, "brainstem_involved": None}, **on) is None


def test_size_rules_read_the_configured_diameter():
    lesion = lesion_row(max_diameter_3d_mm=42.0, axial_longest_diameter_mm=38.0)
    assert _facts(features_document([lesion])).values["largest_diameter_mm"] == 42.0
    axial = _facts(features_document([lesion]), thresholds={"size_diameter": "axial_longest_diameter_mm"}).values
    assert axial["largest_diameter_mm"] == 38.0 and axial["largest_diameter_measure"] == "axial_longest_diameter_mm"


def test_clinical_facts_are_never_guessed():
    facts = _facts(
        features_document([lesion_row()]), {"primary_histology": "nsclc_adenocarcinoma", "molecular_markers": None}
    )
    assert facts.values["targeted_therapy_sensitive"] is None  # markers unknown
    facts = _facts(
        features_document([lesion_row()]), {"primary_histology": "nsclc_adenocarcinoma", "molecular_markers": ["none"]}
    )
    assert facts.values["targeted_therapy_sensitive"] is False
    facts = _facts(features_document([lesion_row()]), {"primary_histology": "melanoma", "molecular_markers": ["BRAF"]})
    assert facts.values["targeted_therapy_sensitive"] is True and facts.values["histology_radioresistant"] is True
    facts = _facts(features_document([lesion_row()]), {"primary_histology": "renal"})
    assert facts.values["targeted_therapy_sensitive"] is False  # nothing to target in the data file
    facts = _facts(
        features_document([lesion_row()]), {"extracranial_disease": "progressive", "extracranial_metastases": True}
    )
    assert facts.values["primary_controlled"] is None  # progressive disease with metastases: primary unknown
    facts = _facts(
        features_document([lesion_row()]), {"extracranial_disease": "progressive", "extracranial_metastases": False}
    )
    assert facts.values["primary_controlled"] is False and "primary_controlled" in facts.derivations


def test_a_histology_that_carries_a_target_counts_as_the_marker():
    her2 = _facts(features_document([lesion_row()]), {"primary_histology": "breast_her2"})
    assert her2.values["targeted_therapy_sensitive"] is True
    assert "breast_her2 carries HER2" in her2.derivations["targeted_therapy_sensitive"]
    luminal_b = _facts(
        features_document([lesion_row()]), {"primary_histology": "breast_luminal_b", "molecular_markers": ["none"]}
    )
    assert luminal_b.values["targeted_therapy_sensitive"] is True
    unknown = _facts(features_document([lesion_row()]), {"primary_histology": "breast_unknown_subtype"})
    assert unknown.values["targeted_therapy_sensitive"] is None  # HER2 status not known
    negative = _facts(features_document([lesion_row()]), {"primary_histology": "breast_luminal_a"})
    assert negative.values["targeted_therapy_sensitive"] is False


def test_missing_inputs_name_only_what_was_not_given():
    clinical = {"extracranial_disease": "progressive", "extracranial_metastases": True, "kps": 80, "age_years": 50}
    result = evaluate_study(features_document([lesion_row()]), clinical, RULES)
    assert "primary_controlled" in result["missing_inputs"]  # needed by RPA class I and the favourable profile
    assert "extracranial_disease" not in result["missing_inputs"], "given, although it did not decide"
    wbrt5 = next(c for c in result["modalities"]["wbrt"]["criteria"] if c["id"] == "table1.wbrt.5")
    assert wbrt5["met"] is None and wbrt5["missing"] == [
        "recurrence_after_srs",
        "recurrence_after_wbrt",
        "distant_intracranial_progression_after_srs",
        "distant_intracranial_progression_after_wbrt",
    ]
    decided = evaluate_study(features_document([lesion_row()]), clinical | {"recurrence_after_srs": True}, RULES)
    wbrt5 = next(c for c in decided["modalities"]["wbrt"]["criteria"] if c["id"] == "table1.wbrt.5")
    assert wbrt5["met"] is True and wbrt5["missing"] == [], "an unknown part that cannot change the verdict"
    assert "recurrence_after_wbrt" in decided["missing_inputs"]  # still needed by SRS (v)
    assert "recurrence_after_srs" not in decided["missing_inputs"]


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
    (
        "GPA-T1",
        "original",
        None,
        dict(age_years=45, kps=90, brain_metastasis_count=1, extracranial_metastases=False),
        4.0,
        11.0,
    ),
    (
        "GPA-T2",
        "original",
        None,
        dict(age_years=60, kps=70, brain_metastasis_count=3, extracranial_metastases=True),
        1.5,
        3.8,
    ),
    (
        "GPA-T3",
        "original",
        None,
        dict(age_years=61, kps=60, brain_metastasis_count=4, extracranial_metastases=True),
        0.0,
        2.6,
    ),
    (
        "GPA-T4",
        "updated",
        "nsclc_adenocarcinoma",
        dict(age_years=65, kps=90, extracranial_metastases=False, brain_metastasis_count=2, egfr_or_alk_positive=True),
        4.0,
        46.8,
    ),
    (
        "GPA-T5",
        "updated",
        "nsclc_other",
        dict(age_years=65, kps=90, extracranial_metastases=False, brain_metastasis_count=2, egfr_or_alk_positive=True),
        3.0,
        12.8,
    ),
    (
        "GPA-T6",
        "updated",
        "nsclc_adenocarcinoma",
        dict(age_years=72, kps=70, extracranial_metastases=True, brain_metastasis_count=6, egfr_or_alk_positive=None),
        0.0,
        6.9,
    ),
    (
        "GPA-T7",
        "updated",
        "melanoma",
        dict(age_years=65, kps=80, extracranial_metastases=True, brain_metastasis_count=1, braf_positive=True),
        2.5,
        15.8,
    ),
    (
        "GPA-T8",
        "updated",
        "breast_her2",
        dict(age_years=55, kps=80, breast_subtype="her2", brain_metastasis_count=1, extracranial_metastases=False),
        3.5,
        36.3,
    ),
    (
        "GPA-T9",
        "updated",
        "renal",
        dict(kps=90, extracranial_metastases=False, hemoglobin_g_dl=13, brain_metastasis_count=3),
        4.0,
        35,
    ),
    (
        "GPA-T10",
        "updated",
        "colorectal",
        dict(kps=80, age_years=55, brain_metastasis_count=1, extracranial_metastases=False),
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
    result = gpa(original, original["factors"], _score_facts(age_years=45, kps=90, brain_metastasis_count=1))
    assert result["total"] is None and result["missing"] == ["extracranial_metastases"]
    renal = tables["gpa"]["updated"]["renal"]
    result = gpa(renal, renal["factors"], _score_facts(kps=90, extracranial_metastases=False, brain_metastasis_count=3))
    assert result["total"] == 3.5 and "unknown" in result["notes"][0]  # unknown haemoglobin scores 0.5
    scores = all_scores(tables, _score_facts(kps=90), histologies()["germ_cell"])
    assert scores["gpa_ds_2012"] == {"not_applicable": "no such score for this histology"}
    assert "extracranial_metastases unknown" in all_scores(tables, _score_facts(kps=90), None)["gpa_original"]["reason"]
    rpa_result = all_scores(tables, _score_facts(kps=80, age_years=50), None)["rpa"]
    assert (
        rpa_result["class"] is None
        and rpa_result["reason"] == "cannot be computed: primary_controlled, extracranial_metastases unknown"
    )
    decided = all_scores(tables, _score_facts(kps=80, age_years=50, extracranial_metastases=True), None)["rpa"]
    assert decided["class"] == "II" and decided["missing"] == [] and "reason" not in decided


def test_sclc_takes_its_own_ds_gpa_medians():
    best = dict(age_years=45, kps=90, brain_metastasis_count=1, extracranial_metastases=False)
    sclc = all_scores(score_tables(), _score_facts(**best), histologies()["sclc"])["gpa_ds_2012"]
    nsclc = all_scores(score_tables(), _score_facts(**best), histologies()["nsclc_other"])["gpa_ds_2012"]
    assert sclc["total"] == nsclc["total"] == 4.0
    assert sclc["diagnosis"] == "sclc" and sclc["median_survival_months"] == 17.1
    assert nsclc["median_survival_months"] == 14.8
    low = all_scores(score_tables(), _score_facts(**best | {"kps": 60, "age_years": 70}), histologies()["sclc"])
    assert low["gpa_ds_2012"]["median_survival_months"] == 5.3  # 0 + 0 + 1 + 1 = 2.0


def test_a_score_left_uncertain_by_discarded_components_says_why():
    facts = _score_facts(age_years=45, kps=90, brain_metastasis_count=CountRange(1, 2), extracranial_metastases=False)
    result = all_scores(score_tables(), facts, None)["gpa_original"]
    assert result["total"] is None and "brain_metastasis_count uncertain" in result["reason"]
    assert result["points"]["age"] == 1.0 and result["points"]["number_of_brain_metastases"] is None


# ---- whole studies ---------------------------------------------------------------------------------


def test_missing_clinical_data_never_gives_a_confident_no():
    document = features_document(
        [lesion_row(location="supratentorial", eloquent_regions=[], brainstem_involved=False)], cavity_ml=0.0
    )
    result = evaluate_study(document, None, RULES)
    statuses = {m: e["status"] for m, e in result["modalities"].items()}
    assert set(statuses.values()) <= {"indicated", "undetermined"}, statuses
    assert result["scores"]["rpa"]["class"] is None and result["scores"]["gpa_original"]["total"] is None
    assert "kps" in result["missing_inputs"] and "primary_histology" in result["missing_inputs"]
    assert any("no clinical row" in a for a in result["assumptions"])
    assert result["research_use_only"] is True and "not a treatment recommendation" in result["disclaimer"]


def test_every_fired_rule_lists_its_evidence():
    document = features_document([lesion_row(max_diameter_3d_mm=45.0, location="infratentorial", eloquent_regions=[])])
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
    assert {c["id"] for c in fired} == {"table1.none.1"}
    wbrt3 = next(c for c in result["modalities"]["wbrt"]["criteria"] if c["id"] == "table1.wbrt.3")
    assert wbrt3["met"] is None and wbrt3["missing"] == ["srs_unsuitable"], "unsuitability is never assumed"
    assert wbrt3["evidence"] == {
        "largest_diameter_mm": 45.0,
        "largest_diameter_measure": "max_diameter_3d_mm",
        "srs_unsuitable": None,
    }
    assert wbrt3["thresholds"] == {"wbrt_large_tumour_diameter_mm": 40, "size_diameter": "max_diameter_3d_mm"}
    none1 = next(c for c in fired if c["id"] == "table1.none.1")
    assert (
        none1["evidence"]["poor_performance_status"] is True and none1["thresholds"]["poor_performance_kps_below"] == 70
    )
    assert any(a.startswith("poor_performance_kps_below = 70") for a in result["assumptions"])
    assert [(f["modality"], f["rule"]["id"]) for f in result["first_line"]] == [("srs", "text.srs.limited")]
    excluded = [(f["rule"]["id"], f["failed_requirements"]) for f in result["first_line_excluded"]]
    assert excluded == [  # progressive systemic disease: surgery is not offered
        ("text.surgery.decompression", ["text.surgery.systemic_control"]),
        ("text.surgery.up_to_three", ["text.surgery.systemic_control"]),
    ]
    assert {c["id"] for c in result["conflicts"]} == {
        "conflict.wbrt_large_lesion",  # WBRT (iv) undetermined: SRS suitability not given
        "conflict.srs_poor_performance",
        "conflict.surgery_active_systemic_disease",  # symptomatic: local therapy whatever the systemic disease
    }
    assert result["scores"]["rpa"]["class"] == "III"


def test_conflicts_are_reported_for_the_patient():
    lesions = [lesion_row(max_diameter_3d_mm=35.0) for _ in range(6)]
    result = evaluate_study(features_document(lesions), {"primary_histology": "sclc"}, RULES)
    assert {c["id"] for c in result["conflicts"]} == {
        "conflict.wbrt_lesion_count",
        "conflict.srs_5_to_10",
    }  # 35 mm, but six lesions: surgery is not suggested, so its size cut does not arise
    result = evaluate_study(features_document(lesions[:3]), {"primary_histology": "sclc"}, RULES)
    assert {c["id"] for c in result["conflicts"]} == {
        "conflict.surgery_size_cut",
        "conflict.surgery_level_of_evidence",
        "conflict.sclc_srs_alone",
        "conflict.wbrt_2_to_4_lesions",
    }
    assert all(c["strength"] and c["source"] and c["guidelines"] for c in result["conflicts"])


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
    assert surgery["table1.surgery.3"]["evidence"] == {
        "eloquent_involved": False,
        "eloquent_regions_involved": [],
        "brainstem_involved": False,
    }
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
        ("subject\tkarnofsky\n01\t80\n", "unknown column(s) 'karnofsky'"),
        ("subject\tprimary_histology\n01\tlymphoma\n", "'lymphoma' is not one of"),
        ("subject\tkps\n01\t150\n", "line 2: kps: 150 is greater than the maximum of 100"),
        ("subject\textracranial_disease\n01\tstable\n", "extracranial_disease"),
    ],
)
def test_bad_clinical_tables_are_refused(tmp_path, capsys, content, message):
    features = tmp_path / "features.json"
    assert (
        _cli(["features", COHORT / "sub-04_ses-01_dseg.nii.gz", "-q", "--out-json", features, "--subject", "01"]) == 0
    )
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
    wbrt3 = crit["table1.wbrt.3"]
    assert wbrt3["met"] is None and wbrt3["evidence"]["largest_diameter_mm"] > 90  # SRS suitability not given
    assert wbrt3["missing"] == ["srs_unsuitable"]
    assert "conflict.wbrt_large_lesion" in {c["id"] for c in result["conflicts"]}
    assert crit["table1.surgery.2"]["met"] is False  # edema ratio 0.72 is not "marked" at the default 2.0
    assert crit["table1.surgery.2"]["evidence"]["mass_effect"] is True  # 77 mL >= 30 mL (imaging surrogate)
    assert crit["table1.srs.1"]["met"] is True  # melanoma: radioresistant
    assert crit["table1.surgery.3"]["met"] is None and "anatomical reference" in " ".join(
        crit["table1.surgery.3"]["missing"]
    )
    # eight labelling specks (35 mm3 in all) below min_lesion_volume_mm3: the count lies between 1 and 9
    decompression = next(t for t in result["text_rules"] if t["id"] == "text.surgery.decompression")
    assert decompression["met"] is None and "between 1 and 9" in decompression["uncertain"]["lesion_count"]
    assert result["first_line"] == [] and "8 core component(s)" in result["warnings"][0]
    assert not any(c["id"] == "conflict.favourable_profile_ecm" for c in result["conflicts"])
    (tmp_path / "t").mkdir()
    loose = _indicate(
        tmp_path / "t",
        seg,
        [row],
        "--config-json",
        '{"indications": {"thresholds": {"marked_edema_ratio": 0.7, "discarded_core_components": "ignore"}}}',
        features_args=args,
    )
    crit = {c["id"]: c for m in loose["modalities"].values() for c in m["criteria"]}
    assert crit["table1.surgery.2"]["met"] is True
    assert loose["modalities"]["surgery"]["status"] == "indicated"
    assert any(a.startswith("marked_edema_ratio = 0.7") for a in loose["assumptions"])
    assert any(a.startswith("discarded_core_components = ignore") for a in loose["assumptions"])
    assert loose["first_line"][0]["rule"]["id"] == "text.surgery.decompression"  # symptomatic, 92 mm


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


def test_every_rule_threshold_fact_and_column_is_explained():
    """The code explains each rule (text, source), threshold (source) and fact (definition); every fact a rule
    reads is one of them or a clinical column; the generated docs/reference/rules.md (tests/test_docs.py fails
    when it is stale) has a row for each."""
    from brainmets.indications.conditions import facts_used
    from brainmets.indications.facts import DERIVED_FACTS, IMAGING_FACTS

    entries = RULES.table["rules"] + RULES.table["text_rules"]
    assert all(r["text"] and r["source"] for r in entries)
    assert all(spec["source"] for spec in RULES.table["thresholds"].values())
    assert all(IMAGING_FACTS.values()) and all(DERIVED_FACTS.values())
    conditions = [r[key] for r in entries + RULES.table["conflicts"] for key in ("when", "supporting") if key in r]
    read = set().union(*(facts_used(condition) for condition in conditions))
    assert read - set(IMAGING_FACTS) - set(DERIVED_FACTS) - set(clinical_columns()) == set()
    page = (ROOT / "docs" / "reference" / "rules.md").read_text(encoding="utf-8")
    names = [r["id"] for r in entries + RULES.table["conflicts"]] + list(RULES.table["thresholds"])
    names += list(IMAGING_FACTS) + list(DERIVED_FACTS) + list(clinical_columns())
    assert [n for n in names if f"| `{n}` |" not in page] == []


def test_a_clinical_table_read_once_per_batch_is_read_again_when_its_content_changes(tmp_path):
    """The table is shared by the studies of a batch; one rewritten in place, even with its old modification
    time (cp -p, rsync -t), is read again."""
    import os

    from brainmets.indications.clinical import read_clinical
    from brainmets.indications.engine import histologies

    names = set(histologies())
    table = tmp_path / "clinical.tsv"
    table.write_text("subject\tkps\n01\t65\n")
    first = read_clinical(table, names)
    assert read_clinical(table, names) is first and first[0]["kps"] == 65
    stat = table.stat()
    table.write_text("subject\tkps\n01\t70\n")
    os.utime(table, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert read_clinical(table, names)[0]["kps"] == 70
