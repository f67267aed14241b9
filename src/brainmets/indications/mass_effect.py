"""Mass effect, ventriculomegaly and hydrocephalus as the subject's parcellation (or, without one, the lesions'
volume) shows them: each fact yes or unknown, never no, and the clinical value completed from it only when empty."""

from __future__ import annotations

from typing import Any


def yes_no(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


#: The study fields measured on the subject's parcellation (all null without one).
PARCELLATION_FIELDS = (
    "midline_shift_mm", "lateral_ventricle_volume_left_ml", "lateral_ventricle_volume_right_ml", "evans_index",
)  # fmt: skip


def parcellation_measured(study: dict[str, Any]) -> bool:
    """Whether the study's own parcellation was measured (older documents have none of its keys)."""
    return any(study.get(key) is not None for key in PARCELLATION_FIELDS)


def anatomy_facts(study, lesions, whole, thresholds) -> dict[str, Any]:
    """Mass effect, ventriculomegaly and hydrocephalus as imaging shows them: each yes or unknown, never no."""
    shift, evans = study.get("midline_shift_mm"), study.get("evans_index")
    volumes = {side: study.get(f"lateral_ventricle_volume_{side}_ml") for side in ("left", "right")}
    effaced = None
    for side, other in (("left", "right"), ("right", "left")):
        mine, theirs = volumes[side], volumes[other]
        lesion_there = any(lesion.get("hemisphere") == side for lesion in lesions)
        if lesion_there and mine is not None and theirs and mine <= thresholds["effaced_ventricle_ratio"] * theirs:
            effaced = side
    if parcellation_measured(study):
        mass = shift is not None and shift >= thresholds["mass_effect_midline_shift_mm"] or effaced is not None
    else:
        mass = any(v >= thresholds["mass_effect_lesion_volume_ml"] for v in whole)
    wide = evans is not None and evans > thresholds["ventriculomegaly_evans_index"]
    obstructing = any(
        lesion.get("fourth_ventricle_contact") or lesion.get("third_ventricle_contact") for lesion in lesions
    )
    return {
        "mass_effect_on_imaging": True if mass else None,
        "midline_shift_mm": shift,
        "effaced_ventricle_side": effaced,
        "evans_index": evans,
        "ventriculomegaly_on_imaging": True if wide else None,
        "hydrocephalus_on_imaging": True if wide and obstructing else None,
    }


def complete_from_imaging(
    values: dict[str, Any],
    notes: dict[str, str],
    fact_thresholds: dict[str, tuple[str, ...]],
    thresholds: dict[str, Any],
) -> None:
    """An empty clinical mass_effect or hydrocephalus made yes when imaging shows it; ``notes`` says which source
    decided and what imaging showed."""
    evidence, keys = _mass_effect_evidence(values, thresholds, fact_thresholds["mass_effect_on_imaging"])
    if values["mass_effect"] is None:
        fact_thresholds["mass_effect"] = keys
        if values["mass_effect_on_imaging"]:
            values["mass_effect"] = True
            notes["mass_effect"] = f"mass_effect = yes: clinical mass_effect empty; measured on imaging: {evidence}"
        else:
            notes["mass_effect"] = (
                f"mass_effect unknown: clinical mass_effect empty and imaging does not show it ({evidence}), "
                "which does not rule mass effect out"
            )
    else:
        notes["mass_effect"] = (
            f"mass_effect = {yes_no(values['mass_effect'])}: from the clinical table (imaging: {evidence})"
        )
    wide, evans = values["ventriculomegaly_on_imaging"], values["evans_index"]
    shown = "no Evans index measured" if evans is None else f"Evans index {evans:.2f}"
    if values["hydrocephalus"] is None:
        fact_thresholds["hydrocephalus"] = ("ventriculomegaly_evans_index",)
        if values["hydrocephalus_on_imaging"]:
            values["hydrocephalus"] = True
            notes["hydrocephalus"] = (
                f"hydrocephalus = yes: clinical hydrocephalus empty; measured on imaging: {shown} > "
                f"ventriculomegaly_evans_index ({thresholds['ventriculomegaly_evans_index']}) and a lesion touches the "
                "4th or 3rd ventricle"
            )
        else:
            why = "no lesion touches the 4th or 3rd ventricle" if wide else "no ventriculomegaly shown"
            notes["hydrocephalus"] = (
                f"hydrocephalus unknown: clinical hydrocephalus empty; imaging: {shown}, {why} (imaging confirms, "
                "it does not rule out)"
            )
    else:
        notes["hydrocephalus"] = (
            f"hydrocephalus = {yes_no(values['hydrocephalus'])}: from the clinical table (imaging: {shown})"
        )


def _mass_effect_evidence(values, thresholds, keys) -> tuple[str, tuple[str, ...]]:
    """What the imaging showed of mass effect, in words, and the thresholds it was judged by."""
    if "mass_effect_lesion_volume_ml" in keys:
        limit = thresholds["mass_effect_lesion_volume_ml"]
        reached = "reaches" if values["mass_effect_on_imaging"] else "does not reach"
        return (
            f"no subject parcellation; the volume surrogate: a lesion's core + edema {reached} "
            f"mass_effect_lesion_volume_ml ({limit} mL) (an assumption)",
            keys,
        )
    shift, side = values["midline_shift_mm"], values["effaced_ventricle_side"]
    parts = [
        "midline shift not measured"
        if shift is None
        else f"midline shift {shift:.1f} mm (mass_effect_midline_shift_mm {thresholds['mass_effect_midline_shift_mm']} mm)",
        f"the {side} lateral ventricle, on a lesion's side, is effaced (<= effaced_ventricle_ratio "
        f"{thresholds['effaced_ventricle_ratio']} x the other)"
        if side
        else "no lateral ventricle on a lesion's side is effaced",
    ]
    return "; ".join(parts), keys
