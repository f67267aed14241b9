"""The named facts the rules and scores read: from the features document, the clinical row, the histology
data file and the thresholds. Every fact is None when it cannot be known; none is ever guessed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Facts read from the imaging features (``brainmets features`` output), with their definitions.
IMAGING_FACTS = {
    "lesion_count": "number of lesions (study.lesion_count)",
    "largest_diameter_mm": "largest maximum 3D diameter of any lesion (0 without lesions)",
    "cumulative_tumor_volume_ml": "sum of the lesions' core volumes",
    "marked_edema_lesion_count": "lesions whose edema_ratio >= $marked_edema_ratio (unknown without edema labels)",
    "posterior_fossa_involved": "some lesion is infratentorial or mixed (unknown without an anatomical reference)",
    "eloquent_involved": "some lesion lies in an eloquent region or involves the brainstem (unknown without a reference)",
    "mass_effect_on_imaging": "some lesion's core + edema volume >= $mass_effect_lesion_volume_ml (an imaging surrogate)",
    "resection_cavity_present": "the segmentation holds resection-cavity voxels (unknown when its scheme has no cavity label)",
}
#: Facts derived from other facts, with how.
DERIVED_FACTS = {
    "poor_performance_status": "kps < $poor_performance_kps_below",
    "systemic_progression": "extracranial_disease is progressive",
    "systemic_disease_controlled": "extracranial_disease is none or controlled",
    "histology_chemosensitive": "primary_histology is exquisitely chemosensitive (histology data file)",
    "histology_radiosensitive": "primary_histology is radiosensitive (histology data file)",
    "histology_radioresistant": "primary_histology is resistant to conventional radiotherapy (histology data file)",
    "targeted_therapy_sensitive": "a molecular marker that the histology's CNS-active agents target is present",
    "egfr_or_alk_positive": "molecular_markers include EGFR or ALK",
    "braf_positive": "molecular_markers include BRAF",
    "breast_subtype": "breast subtype of primary_histology (basal, luminal_a, her2, luminal_b)",
    "mass_effect": "the clinical mass_effect; when empty, mass_effect_on_imaging (assumption)",
    "post_operative": "the clinical post_operative; when empty, resection_cavity_present",
    "primary_controlled": "the clinical primary_controlled; when empty, true if extracranial_disease is none or controlled, false if it is progressive with no extracranial metastases",
}


#: What a user must supply for a fact that is unknown: clinical columns, or what the imaging lacked.
FACT_INPUTS = {
    "poor_performance_status": ("kps",),
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
    "marked_edema_lesion_count": ("edema labels in the segmentation",),
    "mass_effect_on_imaging": ("edema labels in the segmentation",),
    "mass_effect": ("mass_effect",),
    "resection_cavity_present": ("resection-cavity label in the segmentation",),
    "post_operative": ("post_operative",),
}


def inputs_for(facts: list[str]) -> list[str]:
    """The inputs behind unknown facts, in order, without repeats."""
    out: list[str] = []
    for fact in facts:
        for name in FACT_INPUTS.get(fact, (fact,)):
            if name not in out:
                out.append(name)
    return out


#: Thresholds that derived facts depend on (reported with every criterion that reads the fact).
FACT_THRESHOLDS = {
    "marked_edema_lesion_count": ("marked_edema_ratio",),
    "mass_effect_on_imaging": ("mass_effect_lesion_volume_ml",),
    "poor_performance_status": ("poor_performance_kps_below",),
}


@dataclass
class Facts:
    """Fact values, and the notes on derived facts that were not read directly."""

    values: dict[str, Any]
    derivations: dict[str, str] = field(default_factory=dict)


def imaging_facts(document: dict[str, Any], thresholds: dict[str, float]) -> dict[str, Any]:
    """Facts from a ``brainmets features`` document."""
    study, lesions = document["study"], document["lesions"]
    count = study["lesion_count"]

    def any_lesion(field_name: str, test) -> bool | None:
        values = [lesion.get(field_name) for lesion in lesions]
        if any(v is not None and test(v) for v in values):
            return True
        return None if any(v is None for v in values) else False

    marked = [lesion.get("edema_ratio") for lesion in lesions]
    marked_count = None
    if all(r is not None for r in marked):
        marked_count = sum(r >= thresholds["marked_edema_ratio"] for r in marked)
    whole = [
        lesion["volume_ml"] + (lesion["edema_volume_ml"] if lesion.get("edema_volume_ml") is not None else 0.0)
        for lesion in lesions
    ]
    big = any(v >= thresholds["mass_effect_lesion_volume_ml"] for v in whole)
    edema_known = all(lesion.get("edema_volume_ml") is not None for lesion in lesions)
    cavity = study.get("resection_cavity_volume_ml")
    return {
        "lesion_count": count,
        "largest_diameter_mm": study["largest_max_diameter_3d_mm"] if count else 0.0,
        "cumulative_tumor_volume_ml": study["cumulative_tumor_volume_ml"],
        "marked_edema_lesion_count": marked_count,
        "posterior_fossa_involved": any_lesion("location", lambda v: v in ("infratentorial", "mixed")),
        "eloquent_involved": _eloquent(lesions),
        "mass_effect_on_imaging": True if big else (False if edema_known else None),
        "resection_cavity_present": None if cavity is None else cavity > 0,
    }


def _eloquent(lesions: list[dict[str, Any]]) -> bool | None:
    if any(lesion.get("eloquent_regions") or lesion.get("brainstem_involved") for lesion in lesions):
        return True
    if any(lesion.get("eloquent_regions") is None for lesion in lesions):
        return None
    return False


def build_facts(
    document: dict[str, Any],
    clinical: dict[str, Any] | None,
    histologies: dict[str, Any],
    thresholds: dict[str, float],
    clinical_columns: list[str],
) -> Facts:
    """Every fact for one study."""
    clinical = clinical or {}
    values: dict[str, Any] = {c: clinical.get(c) for c in clinical_columns if c not in ("subject", "session")}
    values.update(imaging_facts(document, thresholds))
    notes: dict[str, str] = {}

    kps, disease = values["kps"], values["extracranial_disease"]
    values["poor_performance_status"] = None if kps is None else kps < thresholds["poor_performance_kps_below"]
    values["systemic_progression"] = None if disease is None else disease == "progressive"
    values["systemic_disease_controlled"] = None if disease is None else disease in ("none", "controlled")

    histology = histologies.get(values["primary_histology"]) if values["primary_histology"] else None
    for prop in ("chemosensitive", "radiosensitive", "radioresistant"):
        values[f"histology_{prop}"] = histology[prop]["value"] if histology else None
    markers = values["molecular_markers"]
    positive = None if markers is None else {m.upper() for m in markers} - {"NONE"}
    values["egfr_or_alk_positive"] = None if positive is None else bool(positive & {"EGFR", "ALK"})
    values["braf_positive"] = None if positive is None else "BRAF" in positive
    targets = histology["targetable_markers"]["value"] if histology else None
    if targets is None:
        values["targeted_therapy_sensitive"] = None
    elif not targets:
        values["targeted_therapy_sensitive"] = False
    else:
        values["targeted_therapy_sensitive"] = None if positive is None else bool(positive & set(targets))
    values["breast_subtype"] = histology.get("breast_subtype") if histology else None

    if values["mass_effect"] is None and values["mass_effect_on_imaging"] is not None:
        values["mass_effect"] = values["mass_effect_on_imaging"]
        notes["mass_effect"] = (
            "clinical mass_effect empty: taken from imaging (a lesion with core + edema >= "
            f"{thresholds['mass_effect_lesion_volume_ml']} mL), an assumption"
        )
    if values["post_operative"] is None and values["resection_cavity_present"] is not None:
        values["post_operative"] = values["resection_cavity_present"]
        notes["post_operative"] = "clinical post_operative empty: taken from the segmentation's resection-cavity label"
    if values["primary_controlled"] is None and disease is not None:
        if disease in ("none", "controlled"):
            values["primary_controlled"] = True
        elif values["extracranial_metastases"] is False:
            values["primary_controlled"] = False
        if values["primary_controlled"] is not None:
            notes["primary_controlled"] = (
                f"clinical primary_controlled empty: derived from extracranial_disease ({disease})"
            )
    return Facts(values=values, derivations=notes)
