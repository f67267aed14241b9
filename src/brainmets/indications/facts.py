"""The named facts the rules and scores read: from the features document, the clinical row, the histology
data file and the thresholds. Every fact is None when it cannot be known; none is ever guessed, and an
imaging surrogate that can only confirm (mass effect, a resection cavity) never denies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from brainmets.indications.conditions import ScoreRange, compare_range, kleene_all, kleene_any
from brainmets.indications.mass_effect import anatomy_facts, complete_from_imaging, parcellation_measured, yes_no

#: Facts read from the imaging features (``brainmets features`` output), with their definitions.
IMAGING_FACTS = {
    "lesion_count": "number of lesions (study.lesion_count); when core components were discarded as too small, a count-based verdict they could change is undetermined ($discarded_core_components)",
    "discarded_core_component_count": "core components below features.min_lesion_volume_mm3, not counted as lesions (study.discarded_core_component_count)",
    "largest_diameter_mm": "largest diameter of any lesion by the measure $size_diameter (0 without lesions)",
    "largest_diameter_measure": "the lesion diameter the size rules read: the value of $size_diameter",
    "cumulative_tumor_volume_ml": "sum of the lesions' core volumes",
    "marked_edema_lesion_count": "lesions whose edema_ratio >= $marked_edema_ratio (unknown without edema labels)",
    "posterior_fossa_involved": "some lesion is infratentorial or mixed (unknown without an anatomical reference)",
    "eloquent_involved": "some lesion lies in an eloquent region of the reference other than the brainstem (eloquent cortex, deep nuclei), or involves the brainstem when $brainstem_is_functionally_critical (unknown without a reference)",
    "eloquent_regions_involved": "the eloquent regions (reference definition names) the lesions lie in",
    "brainstem_involved": "some lesion involves the brainstem (unknown without a reference that has one)",
    "largest_lesion_brainstem_involved": "the largest lesion (by $size_diameter) involves the brainstem (unknown without a reference that has one; no when there is no lesion)",
    "mass_effect_on_imaging": "with the subject's parcellation: yes when midline_shift_mm >= $mass_effect_midline_shift_mm or a lesion's lateral ventricle is effaced (its volume <= $effaced_ventricle_ratio x the other side's); without one: yes when some lesion's core + edema volume >= $mass_effect_lesion_volume_ml; otherwise unknown (imaging that cannot rule mass effect out)",
    "midline_shift_mm": "the midline shift measured on the subject's parcellation (study.midline_shift_mm)",
    "effaced_ventricle_side": "the side (left, right) whose lateral ventricle holds at most $effaced_ventricle_ratio x the other side's volume while a lesion lies on that side (unknown without the subject's parcellation)",
    "evans_index": "the Evans index measured on the subject's parcellation (study.evans_index)",
    "ventriculomegaly_on_imaging": "yes when evans_index > $ventriculomegaly_evans_index, otherwise unknown",
    "hydrocephalus_on_imaging": "yes when ventriculomegaly_on_imaging and some lesion touches the 4th or 3rd ventricle (obstructive), otherwise unknown (the post-operative risk factors of a posterior-fossa lesion never count)",
    "resection_cavity_present": "the segmentation holds resection-cavity voxels (unknown when its scheme has no cavity label)",
    "resection_cavity_count": "connected resection-cavity components (study.resection_cavity_count)",
    "cavity_diameter_mm": "diameter of the largest resection-cavity component by the measure $size_diameter (unknown without a cavity)",
    "cavity_posterior_fossa": "the largest resection-cavity component is infratentorial or mixed (unknown without a cavity or an anatomical reference)",
    "cavity_rim_enhancing_volume_ml": "enhancing tissue in the rim of the resection cavity (touching it or within features.cavity_rim_mm), all components (unknown without a cavity or an enhancing label)",
}
#: Facts derived from other facts, with how.
DERIVED_FACTS = {
    "poor_performance_status": "kps < $poor_performance_kps_below",
    "systemic_progression": "extracranial_disease is progressive",
    "systemic_disease_controlled": "extracranial_disease is none or controlled",
    "histology_chemosensitive": "primary_histology is exquisitely chemosensitive (histology data file)",
    "histology_radiosensitive": "primary_histology is radiosensitive (histology data file)",
    "histology_radioresistant": "primary_histology is resistant to conventional radiotherapy (histology data file)",
    "targeted_therapy_sensitive": "a marker that the histology's CNS-active agents target is present: in molecular_markers, or carried by the histology itself (breast_her2, breast_luminal_b: HER2)",
    "egfr_or_alk_positive": "molecular_markers include EGFR or ALK",
    "braf_positive": "molecular_markers include BRAF",
    "breast_subtype": "breast subtype of primary_histology (basal, luminal_a, her2, luminal_b)",
    "mass_effect": "the clinical mass_effect; when empty, yes if mass_effect_on_imaging (otherwise unknown)",
    "hydrocephalus": "the clinical hydrocephalus; when empty, yes if hydrocephalus_on_imaging (otherwise unknown)",
    "post_operative": "the clinical post_operative; when empty, yes if the segmentation holds a resection cavity (otherwise unknown)",
    "primary_controlled": "the clinical primary_controlled; when empty, true if extracranial_disease is none or controlled, false if it is progressive with no extracranial metastases",
    "gross_total_resection": "the clinical gross_total_resection; when empty, yes if the segmentation has a resection cavity with no enhancing tissue in its rim (otherwise unknown)",
    "resected_lesion_diameter_mm": "cavity_diameter_mm when the segmentation has a resection cavity, else the clinical resected_lesion_diameter_mm",
    "resected_lesion_diameter_source": "where resected_lesion_diameter_mm comes from",
    "resected_lesion_posterior_fossa": "cavity_posterior_fossa when the cavity could be located, else the clinical resected_lesion_location is infratentorial or mixed",
    "resected_lesion_location_source": "where resected_lesion_posterior_fossa comes from",
    "brain_metastasis_count": "the metastases the prognostic scores count: lesion_count, plus resected_lesion_count when post-operative (unknown when that is empty)",
    "kps_range": "the KPS the rules and scores read, as [low, high]: [kps, kps] when kps is given, else the KPS range of ecog ($ecog_to_kps); a comparison is decided only when the whole range lies on one side",
    "recurrence_treatment_effect_possible": "a treated lesion's growth may be treatment effect rather than tumour: a follow-up's recurrence or rapid growth of a treated lesion is undetermined for that reason, or recurrence_after_srs / recurrence_after_wbrt is yes by hand, while recurrence_confirmed is empty",
}

#: What a user must supply for a fact that is unknown: clinical columns, or what the imaging lacked.
FACT_INPUTS = {
    "poor_performance_status": ("kps",),
    "kps_range": ("kps",),
    "systemic_progression": ("extracranial_disease",),
    "systemic_disease_controlled": ("extracranial_disease",),
    "histology_chemosensitive": ("primary_histology",),
    "histology_radiosensitive": ("primary_histology",),
    "histology_radioresistant": ("primary_histology",),
    "targeted_therapy_sensitive": ("primary_histology", "molecular_markers"),
    "egfr_or_alk_positive": ("molecular_markers",),
    "braf_positive": ("molecular_markers",),
    "breast_subtype": ("primary_histology",),
    "primary_controlled": ("primary_controlled", "extracranial_disease"),
    "posterior_fossa_involved": ("anatomical reference (location of the lesions)",),
    "eloquent_involved": ("anatomical reference (location of the lesions)",),
    "brainstem_involved": ("anatomical reference (location of the lesions)",),
    "largest_lesion_brainstem_involved": ("anatomical reference (location of the lesions)",),
    "marked_edema_lesion_count": ("edema labels in the segmentation",),
    "mass_effect_on_imaging": ("mass_effect",),
    "hydrocephalus_on_imaging": ("hydrocephalus", "subject parcellation (--parcellation)"),
    "ventriculomegaly_on_imaging": ("subject parcellation (--parcellation)",),
    "resection_cavity_present": ("resection-cavity label in the segmentation",),
    "resected_lesion_diameter_mm": ("resected_lesion_diameter_mm",),
    "resected_lesion_posterior_fossa": ("resected_lesion_location",),
    "brain_metastasis_count": ("resected_lesion_count",),
}

#: Facts shown beside a fact in the evidence, so a reader sees what it was made of.
FACT_COMPANIONS = {
    "lesion_count": ("discarded_core_component_count",),
    "kps": ("ecog",),
    "poor_performance_status": ("kps", "ecog"),
    "largest_diameter_mm": ("largest_diameter_measure",),
    "eloquent_involved": ("eloquent_regions_involved", "brainstem_involved"),
    "gross_total_resection": ("cavity_rim_enhancing_volume_ml",),
    "mass_effect_on_imaging": ("midline_shift_mm", "effaced_ventricle_side"),
    "mass_effect": ("midline_shift_mm", "effaced_ventricle_side"),
    "ventriculomegaly_on_imaging": ("evans_index",),
    "hydrocephalus_on_imaging": ("evans_index",),
    "hydrocephalus": ("evans_index",),
    "resected_lesion_diameter_mm": ("resected_lesion_diameter_source",),
    "resected_lesion_posterior_fossa": ("resected_lesion_location_source",),
}

#: Thresholds and settings a fact depends on (reported with every rule that reads the fact); the facts whose
#: dependence varies from study to study are added when the facts are built.
FACT_THRESHOLDS = {
    "largest_diameter_mm": ("size_diameter",),
    "largest_lesion_brainstem_involved": ("size_diameter",),
    "cavity_diameter_mm": ("size_diameter",),
    "eloquent_involved": ("brainstem_is_functionally_critical",),
    "marked_edema_lesion_count": ("marked_edema_ratio",),
    "ventriculomegaly_on_imaging": ("ventriculomegaly_evans_index",),
    "hydrocephalus_on_imaging": ("ventriculomegaly_evans_index",),
    "poor_performance_status": ("poor_performance_kps_below",),
}

INFRATENTORIAL = ("infratentorial", "mixed")


@dataclass
class Facts:
    """Fact values; notes on facts that were derived rather than read (with the value they took); the
    thresholds each fact depended on; for facts whose inputs depend on the study, what they need; and
    clinical entries that the imaging contradicts."""

    values: dict[str, Any]
    ranges: dict[str, ScoreRange] = field(default_factory=dict)  # facts known only as a range: what rules read
    derivations: dict[str, str] = field(default_factory=dict)
    thresholds: dict[str, tuple[str, ...]] = field(default_factory=dict)
    inputs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # clinical entries that the imaging contradicts

    def inputs_for(self, facts: list[str], clinical: dict[str, Any], columns: list[str]) -> list[str]:
        """The inputs behind unknown ``facts``, in order, without repeats: a clinical column only when its
        cell is empty (a column that was given is not missing, even if it did not decide the fact)."""
        out: list[str] = []
        for fact in facts:
            for name in self.inputs.get(fact, FACT_INPUTS.get(fact, (fact,))):
                if name in columns and clinical.get(name) is not None:
                    continue
                if name not in out:
                    out.append(name)
        return out


def _brainstem(lesion: dict[str, Any]) -> bool | None:
    """The lesion involves the brainstem (its brainstem fraction, or the eloquent region of that name)."""
    regions = lesion.get("eloquent_regions")
    if lesion.get("brainstem_involved") or (regions and "brainstem" in regions):
        return True
    return None if lesion.get("brainstem_involved") is None else False


def _functionally_critical(lesion: dict[str, Any], brainstem_counts: bool) -> bool | None:
    """An eloquent region other than the brainstem; the brainstem only when it is set to count."""
    regions = lesion.get("eloquent_regions")
    other = None if regions is None else bool(set(regions) - {"brainstem"})
    return kleene_any([other, kleene_all([_brainstem(lesion), brainstem_counts])])


def imaging_facts(document: dict[str, Any], thresholds: dict[str, Any]) -> dict[str, Any]:
    """Facts from a ``brainmets features`` document."""
    study, lesions = document["study"], document["lesions"]
    measure = thresholds["size_diameter"]
    marked = [lesion.get("edema_ratio") for lesion in lesions]
    marked_count = None
    if all(r is not None for r in marked):
        marked_count = sum(r >= thresholds["marked_edema_ratio"] for r in marked)
    whole = [lesion["volume_ml"] + (lesion.get("edema_volume_ml") or 0.0) for lesion in lesions]
    cavity_volume = study.get("resection_cavity_volume_ml")
    cavities = document.get("resection_cavities") or []  # absent from documents of brainmets < 0.2
    largest_cavity = max(cavities, key=lambda c: c["voxel_count"], default=None)
    rims = [c.get("rim_enhancing_volume_ml") for c in cavities]
    regions = [lesion.get("eloquent_regions") for lesion in lesions]
    return {
        "lesion_count": study["lesion_count"],
        "discarded_core_component_count": study.get("discarded_core_component_count") or 0,
        "largest_diameter_mm": max((lesion[measure] for lesion in lesions), default=0.0),
        "largest_diameter_measure": measure,
        "cumulative_tumor_volume_ml": study["cumulative_tumor_volume_ml"],
        "marked_edema_lesion_count": marked_count,
        "posterior_fossa_involved": kleene_any(
            [None if lesion.get("location") is None else lesion["location"] in INFRATENTORIAL for lesion in lesions]
        ),
        "eloquent_involved": kleene_any(
            [_functionally_critical(lesion, thresholds["brainstem_is_functionally_critical"]) for lesion in lesions]
        ),
        "eloquent_regions_involved": None
        if lesions and all(r is None for r in regions)
        else sorted({name for r in regions if r for name in r}),
        "brainstem_involved": kleene_any([_brainstem(lesion) for lesion in lesions]),
        "largest_lesion_brainstem_involved": _brainstem(max(lesions, key=lambda x: x[measure])) if lesions else False,
        **anatomy_facts(study, lesions, whole, thresholds),
        "resection_cavity_present": None if cavity_volume is None else cavity_volume > 0,
        "resection_cavity_count": study.get("resection_cavity_count"),
        "cavity_diameter_mm": largest_cavity[measure] if largest_cavity else None,
        "cavity_posterior_fossa": None
        if largest_cavity is None or largest_cavity.get("location") is None
        else largest_cavity["location"] in INFRATENTORIAL,
        "cavity_rim_enhancing_volume_ml": sum(rims) if cavities and None not in rims else None,
    }


def build_facts(
    document: dict[str, Any],
    clinical: dict[str, Any] | None,
    histologies: dict[str, Any],
    thresholds: dict[str, Any],
    clinical_columns: list[str],
    performance: dict[str, Any] | None = None,
    treatment_effect_doubt: bool = False,
    given: dict[str, Any] | None = None,
) -> Facts:
    """Every fact for one study. ``performance``: the ECOG-to-KPS tables (performance.yaml);
    ``treatment_effect_doubt``: a follow-up left a treated lesion's growth undetermined (tumour or treatment
    effect); ``given``: the clinical row as given, when ``clinical`` was completed from a follow-up."""
    clinical = clinical or {}
    given = clinical if given is None else given
    values: dict[str, Any] = {c: clinical.get(c) for c in clinical_columns if c not in ("subject", "session")}
    values.update(imaging_facts(document, thresholds))
    facts = Facts(values=values, thresholds=dict(FACT_THRESHOLDS))
    facts.thresholds["mass_effect_on_imaging"] = (
        ("mass_effect_midline_shift_mm", "effaced_ventricle_ratio")
        if parcellation_measured(document["study"])
        else ("mass_effect_lesion_volume_ml",)
    )
    notes = facts.derivations
    if values["discarded_core_component_count"]:
        facts.thresholds["lesion_count"] = ("discarded_core_components",)

    disease = values["extracranial_disease"]
    kps = _performance(values, facts, thresholds, performance)
    values["poor_performance_status"] = compare_range("lt", kps, thresholds["poor_performance_kps_below"])
    if isinstance(kps, ScoreRange) and values["poor_performance_status"] is None:
        notes["poor_performance_status"] = (
            f"poor_performance_status unknown: {kps.why}, on both sides of poor_performance_kps_below "
            f"({thresholds['poor_performance_kps_below']})"
        )
    values["systemic_progression"] = None if disease is None else disease == "progressive"
    values["systemic_disease_controlled"] = None if disease is None else disease in ("none", "controlled")

    name = values["primary_histology"]
    histology = histologies.get(name) if name else None
    for prop in ("chemosensitive", "radiosensitive", "radioresistant"):
        values[f"histology_{prop}"] = histology[prop]["value"] if histology else None
    _markers(values, histology, notes)
    values["breast_subtype"] = histology.get("breast_subtype") if histology else None

    _surrogates(values, facts, thresholds, document.get("provenance", {}).get("parameters", {}).get("cavity_rim_mm"))
    _resected_lesion(values, facts, thresholds)
    _contradictions(values, clinical, facts.warnings)
    _clinical_contradictions(given, facts.warnings)
    by_hand = given.get("recurrence_after_srs") or given.get("recurrence_after_wbrt")
    values["recurrence_treatment_effect_possible"] = clinical.get("recurrence_confirmed") is None and bool(
        treatment_effect_doubt or by_hand
    )
    values["brain_metastasis_count"] = values["lesion_count"]
    if values["post_operative"]:
        resected = values["resected_lesion_count"]
        values["brain_metastasis_count"] = None if resected is None else values["lesion_count"] + resected
        notes["brain_metastasis_count"] = (
            f"brain_metastasis_count = {values['brain_metastasis_count'] if resected is not None else 'unknown'}: "
            f"post-operative, so the scores count the {values['lesion_count']} lesion(s) of the segmentation "
            + (
                "and the resected one(s)"
                if resected is not None
                else "and the resected ones (resected_lesion_count empty)"
            )
        )
    if values["primary_controlled"] is None and disease is not None:
        if disease in ("none", "controlled"):
            values["primary_controlled"] = True
        elif values["extracranial_metastases"] is False:
            values["primary_controlled"] = False
        if values["primary_controlled"] is not None:
            notes["primary_controlled"] = (
                f"primary_controlled = {_yes(values['primary_controlled'])}: clinical primary_controlled empty, "
                f"derived from extracranial_disease ({disease})"
            )
    return facts


def _performance(values: dict[str, Any], facts: Facts, thresholds: dict[str, Any], performance: dict[str, Any] | None):
    """The KPS the rules read: the clinical kps, else the KPS range of the clinical ecog (by ecog_to_kps), which
    rules and scores compare as a whole; sets kps_range."""
    kps, ecog = values["kps"], values.get("ecog")
    table = thresholds["ecog_to_kps"]
    if kps is not None and ecog is not None and performance:
        low, high = performance["tables"][table]["kps"][ecog]
        if not low <= kps <= high:
            facts.warnings.append(
                f"the clinical kps ({kps}) and ecog ({ecog}, KPS {low}-{high} by ecog_to_kps = {table}) disagree: "
                "kps is used; check the clinical row"
            )
    if kps is not None or ecog is None or not performance:
        values["kps_range"] = None if kps is None else [kps, kps]
        return kps
    low, high = performance["tables"][table]["kps"][ecog]
    values["kps_range"] = [low, high]
    why = f"ECOG {ecog} is KPS {low}-{high} (ecog_to_kps = {table})"
    facts.ranges["kps"] = ScoreRange(low, high, why)
    facts.thresholds["kps"] = ("ecog_to_kps",)
    facts.thresholds["poor_performance_status"] = ("poor_performance_kps_below", "ecog_to_kps")
    facts.derivations["kps_range"] = f"kps_range = {low}-{high}: kps empty; {why}"
    return facts.ranges["kps"]


def _yes(value: bool | None) -> str:
    return yes_no(value)


def _markers(values: dict[str, Any], histology: dict[str, Any] | None, notes: dict[str, str]) -> None:
    """Marker facts: the listed markers, plus those the histology itself carries (HER2 of breast_her2)."""
    markers = values["molecular_markers"]
    listed = None if markers is None else {m.upper() for m in markers} - {"NONE"}
    implied = {m.upper() for m in (histology or {}).get("implied_markers", {}).get("value", [])}
    known = (listed or set()) | implied

    def marker(*names: str) -> bool | None:
        if known & set(names):
            return True
        return None if listed is None else False

    values["egfr_or_alk_positive"] = marker("EGFR", "ALK")
    values["braf_positive"] = marker("BRAF")
    targets = histology["targetable_markers"]["value"] if histology else None
    if targets is None:
        values["targeted_therapy_sensitive"] = None
    elif not targets:
        values["targeted_therapy_sensitive"] = False
    else:
        values["targeted_therapy_sensitive"] = marker(*(t.upper() for t in targets))
        carried = sorted(implied & {t.upper() for t in targets})
        if carried and not (listed and listed & set(carried)):
            notes["targeted_therapy_sensitive"] = (
                f"targeted_therapy_sensitive = yes: {values['primary_histology']} carries {', '.join(carried)} "
                "(histology data file), a target of its CNS-active agents"
            )


def _surrogates(values: dict[str, Any], facts: Facts, thresholds: dict[str, Any], rim_mm: Any) -> None:
    """Clinical mass_effect, post_operative and gross_total_resection, or the imaging evidence that can
    confirm them when their cells are empty (never deny them)."""
    notes = facts.derivations
    complete_from_imaging(values, facts.derivations, facts.thresholds, thresholds)
    cavity = values["resection_cavity_present"]
    if values["post_operative"] is None and cavity:
        values["post_operative"] = True
        notes["post_operative"] = (
            f"post_operative = yes: clinical post_operative empty; the segmentation holds a resection cavity "
            f"({values['resection_cavity_count'] or 'some'} component(s))"
        )
    elif values["post_operative"] is None and cavity is False:
        notes["post_operative"] = (
            "post_operative unknown: clinical post_operative empty; no resection cavity is segmented, which does "
            "not show that there was no operation"
        )
    rim = values["cavity_rim_enhancing_volume_ml"]
    operated = values["post_operative"] is not False  # a patient recorded as not operated has no resection
    if values["gross_total_resection"] is None and operated and cavity and rim is not None:
        if rim == 0:
            values["gross_total_resection"] = True
            notes["gross_total_resection"] = (
                f"gross_total_resection = yes: clinical gross_total_resection empty; no enhancing tissue in the rim "
                f"of the resection cavity (within features.cavity_rim_mm = {rim_mm} mm)"
            )
        else:
            notes["gross_total_resection"] = (
                f"gross_total_resection unknown: clinical gross_total_resection empty and {rim:.3g} mL of "
                f"enhancing tissue lies in the rim of the resection cavity (within {rim_mm} mm)"
            )


def _resected_lesion(values: dict[str, Any], facts: Facts, thresholds: dict[str, Any]) -> None:
    """Size and place of the resected metastasis: the resection cavity when the segmentation has one, else
    the clinical columns; never the lesions left after surgery."""
    notes, measure = facts.derivations, thresholds["size_diameter"]
    if values["post_operative"] is False:  # not operated: there is no resected lesion to describe
        values["resected_lesion_diameter_mm"] = values["resected_lesion_posterior_fossa"] = None
        values["resected_lesion_diameter_source"] = values["resected_lesion_location_source"] = None
        return
    count = values["resection_cavity_count"] or 0
    which = "the resection cavity" if count <= 1 else f"the largest of {count} resection-cavity components"
    clinical_diameter, clinical_location = values["resected_lesion_diameter_mm"], values["resected_lesion_location"]
    cavity_first = thresholds["resected_lesion_source"] == "cavity_first"
    if values["cavity_diameter_mm"] is not None and (cavity_first or clinical_diameter is None):
        values["resected_lesion_diameter_mm"] = values["cavity_diameter_mm"]
        values["resected_lesion_diameter_source"] = f"{which} ({measure})"
        facts.thresholds["resected_lesion_diameter_mm"] = ("size_diameter",)
        unused = (
            f"; the clinical resected_lesion_diameter_mm ({clinical_diameter}) is not used"
            if clinical_diameter is not None
            else ""
        )
        notes["resected_lesion_diameter_mm"] = (
            f"resected_lesion_diameter_mm = {values['cavity_diameter_mm']:.1f}: {measure} of {which}{unused}"
        )
    else:
        values["resected_lesion_diameter_source"] = None if clinical_diameter is None else "clinical table"
    if values["cavity_posterior_fossa"] is not None and (cavity_first or clinical_location is None):
        values["resected_lesion_posterior_fossa"] = values["cavity_posterior_fossa"]
        values["resected_lesion_location_source"] = f"{which}, located on the anatomical reference"
        unused = (
            f"; the clinical resected_lesion_location ({clinical_location}) is not used" if clinical_location else ""
        )
        notes["resected_lesion_posterior_fossa"] = (
            f"resected_lesion_posterior_fossa = {_yes(values['cavity_posterior_fossa'])}: {which} on the anatomical "
            f"reference{unused}"
        )
    else:
        values["resected_lesion_posterior_fossa"] = (
            None if clinical_location is None else clinical_location in INFRATENTORIAL
        )
        values["resected_lesion_location_source"] = None if clinical_location is None else "clinical table"
        if values["resection_cavity_present"] and clinical_location is None:
            facts.inputs["resected_lesion_posterior_fossa"] = (
                "anatomical reference (location of the resection cavity)",
                "resected_lesion_location",
            )
    for fact in ("resected_lesion_diameter_mm", "resected_lesion_posterior_fossa"):
        if values["resection_cavity_present"] or clinical_diameter is not None or clinical_location is not None:
            facts.thresholds[fact] = (*facts.thresholds.get(fact, ()), "resected_lesion_source")


def _contradictions(values: dict[str, Any], clinical: dict[str, Any], warnings: list[str]) -> None:
    """Clinical entries that the segmentation contradicts: both are kept (the clinical entry decides), and the
    reader is told to check them."""
    cavity = values["resection_cavity_present"]
    count = values["resection_cavity_count"]
    if cavity and clinical.get("post_operative") is False:
        warnings.append(
            f"the clinical post_operative is no, but the segmentation holds a resection cavity ({count} "
            "component(s)): check the clinical row or the label scheme"
        )
    if cavity and clinical.get("resected_lesion_count") == 0:
        warnings.append("the clinical resected_lesion_count is 0, but the segmentation holds a resection cavity")
    rim = values["cavity_rim_enhancing_volume_ml"]
    if clinical.get("gross_total_resection") and cavity and rim:
        warnings.append(
            f"the clinical gross_total_resection is yes, but {rim:.3g} mL of enhancing tissue lies in the rim of "
            "the resection cavity (residual tumour, or post-operative enhancement?)"
        )
    imaging = values["mass_effect_on_imaging"]
    if clinical.get("mass_effect") is False and imaging:
        warnings.append(
            "the clinical mass_effect is no, but imaging shows it (mass_effect_on_imaging yes): the clinical value "
            "is used; check the row"
        )
    if clinical.get("hydrocephalus") is False and values["hydrocephalus_on_imaging"]:
        warnings.append(
            "the clinical hydrocephalus is no, but imaging shows ventriculomegaly with a lesion touching the 4th or "
            "3rd ventricle (hydrocephalus_on_imaging yes): the clinical value is used; check the row"
        )


#: Clinical columns that cannot both hold: (column, value, other column, other value, why).
_EXCLUSIVE = [
    (
        "extracranial_disease",
        "none",
        "extracranial_metastases",
        True,
        "no extracranial disease, yet extracranial metastases",
    ),
    ("post_operative", False, "resected_lesion_count", "> 0", "not post-operative, yet metastases were resected"),
    ("post_operative", False, "gross_total_resection", "given", "not post-operative, yet a resection is graded"),
    (
        "post_operative",
        False,
        "local_recurrence_after_resection",
        True,
        "not post-operative, yet a recurrence after resection",
    ),
    ("symptomatic", False, "refractory_epilepsy", True, "asymptomatic, yet refractory epilepsy"),
    (
        "primary_controlled",
        True,
        "extracranial_disease",
        "progressive",
        "a controlled primary and progressive extracranial disease, with no extracranial metastases",
    ),
]


def _clinical_contradictions(clinical: dict[str, Any], warnings: list[str]) -> None:
    """Clinical entries that contradict each other: both are kept as given, and ``warnings`` names both values."""

    def holds(column: str, value: Any) -> bool:
        cell = clinical.get(column)
        if value == "given":
            return cell is not None
        if value == "> 0":
            return cell is not None and cell > 0
        return cell is not None and cell == value and type(cell) is type(value)

    for column, value, other, other_value, why in _EXCLUSIVE:
        if column == "primary_controlled" and clinical.get("extracranial_metastases") is not False:
            continue  # with extracranial metastases, the progressive disease may lie outside the primary
        if holds(column, value) and holds(other, other_value):
            warnings.append(
                f"the clinical {column} is {_cell(clinical[column])} but {other} is {_cell(clinical[other])} "
                f"({why}): check the clinical row (both are used as given)"
            )


def _cell(value: Any) -> str:
    return _yes(value) if isinstance(value, bool) else str(value)
