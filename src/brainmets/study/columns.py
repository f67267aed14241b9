"""The columns of the features document and its tables: every per-lesion, edema-only, cavity and study field,
with its unit and description (the data dictionaries written beside the TSV files)."""

from __future__ import annotations

from brainmets.fields import BOOLEAN, Field

#: Upper edges (mm) of the lesion-size classes counted in the study summary, by maximum 3D diameter.
DIAMETER_CLASSES = (
    ("lesions_diameter_lt_10mm", "< 10 mm", lambda d: d < 10),
    ("lesions_diameter_10_20mm", ">= 10 and < 20 mm", lambda d: 10 <= d < 20),
    ("lesions_diameter_20_30mm", ">= 20 and < 30 mm", lambda d: 20 <= d < 30),
    ("lesions_diameter_30_40mm", ">= 30 and <= 40 mm", lambda d: 30 <= d <= 40),
    ("lesions_diameter_gt_40mm", "> 40 mm", lambda d: d > 40),
)


#: The ASTRO 2022 size tiers (Gondi V et al., Pract Radiat Oncol 2022;12:265-282), by the core's maximum 3D
#: diameter D and the default edges 20, 30, 40 mm; what the guideline recommends for each (strength in brackets).
ASTRO2022_TIERS = {
    "under_20mm": "D < 20 mm: single-fraction SRS 20-24 Gy (strong)",
    "20_to_under_30mm": "20 <= D < 30 mm: single-fraction SRS 18 Gy, or multifraction 27 Gy/3 or 30 Gy/5 (conditional)",
    "30_to_40mm": "30 <= D <= 40 mm: multifraction SRS 27 Gy/3 or 30 Gy/5 (conditional); single fraction up to 15 Gy",
    "over_40mm": "D > 40 mm: surgery conditionally recommended; if not feasible, multifraction SRS preferred",
}


#: The pre-operative predictors of hydrocephalus after resection of a posterior-fossa metastasis (J Neurooncol
#: 2024, PMID 39607570: 14 of 130 patients; multivariable odds ratios), as listed in the features document.
PF_HYDROCEPHALUS_RISK_FACTORS = {
    "fourth_ventricle_to_tumour_volume_ratio_low": "4th-ventricle / tumour volume <= anatomy.pf_hydrocephalus_ventricle_ratio_max (0.02; OR 33.1)",
    "edema_to_tumour_volume_ratio_low": "edema / tumour volume <= anatomy.pf_hydrocephalus_edema_ratio_max (0.85; OR 10.6: little edema is the risk)",
    "fourth_ventricle_contact": "the tumour touches the 4th ventricle (fourth_ventricle_contact; OR 5)",
    "multiple_metastases": "more than one lesion (OR 2.4)",
}


LOCATION_LEVELS = {
    "supratentorial": "above the tentorium: posterior_fossa_fraction <= anatomy.mixed_margin (0.1)",
    "infratentorial": "in the posterior fossa: posterior_fossa_fraction >= 1 - anatomy.mixed_margin",
    "mixed": "straddling the tentorium: in between",
}


_BBOX = [
    Field(
        f"bbox_{axis}_{end}",
        "voxel",
        f"{'first' if end == 'min' else 'last'} voxel index of the core along array axis {axis} (0-based, inclusive)",
    )
    for axis in "ijk"
    for end in ("min", "max")
]


_CENTROID = [
    Field(
        f"centroid_{c}_mm",
        "mm",
        f"{c.upper()} world coordinate (RAS+: x to the Left→Right, y Posterior→Anterior, z Inferior→Superior) of the centre of mass of the core voxel centres",
    )
    for c in "xyz"
]


_OWN = "n/a without the subject's own parcellation"
_SIDES = {"left": "the subject's left", "right": "the subject's right"}

#: Per-lesion fields measured on the subject's own parcellation (FreeSurfer aseg labels; docs/methods.md).
_SUBJECT_PARCELLATION_LESION_FIELDS = [
    Field(
        "hemisphere",
        None,
        f"side of the ideal midline plane (see midline_shift_mm) the core's centroid lies on; {_OWN} or when the plane cannot be placed",
        _SIDES,
    ),
    Field(
        "distance_to_brainstem_mm",
        "mm",
        f"shortest distance between the centres of a core voxel and a brainstem voxel (aseg 16): 0 when they overlap, one voxel spacing when face-adjacent; {_OWN} or when it has no label 16",
    ),
    Field(
        "fourth_ventricle_contact",
        None,
        f"the same distance to the 4th ventricle (aseg 15) is <= anatomy.fourth_ventricle_contact_mm (1 mm); {_OWN}",
        BOOLEAN,
    ),
    Field(
        "third_ventricle_contact",
        None,
        f"the same distance to the 3rd ventricle (aseg 14) is <= anatomy.fourth_ventricle_contact_mm (1 mm); {_OWN}",
        BOOLEAN,
    ),
    Field(
        "distance_to_optic_chiasm_mm",
        "mm",
        f"shortest distance between the centres of a core voxel and an optic-chiasm voxel (aseg 85; the label covers the chiasm only, not the optic nerves and tracts); {_OWN} or when it has no label 85",
    ),
    Field(
        "near_optic_chiasm",
        None,
        "distance_to_optic_chiasm_mm <= anatomy.optic_chiasm_near_mm (3 mm; the nerves and tracts are not labelled, so a lesion near them is not flagged)",
        BOOLEAN,
    ),
]


LESION_FIELDS: list[Field] = [
    Field("lesion_id", None, "lesion number, 1 = largest core volume; ties ordered by centroid position (x, y, z)"),
    Field("voxel_count", "voxel", "number of core (enhancing + necrotic/non-enhancing) voxels"),
    Field("volume_ml", "mL", "core volume: voxel count x voxel volume (|det| of the affine)"),
    Field(
        "mesh_volume_ml",
        "mL",
        "volume enclosed by the marching-cubes surface (level 0.5) of the core, IBSI 'volume' (RNU0)",
    ),
    Field(
        "enhancing_volume_ml",
        "mL",
        "enhancing-tumour voxels of the lesion x voxel volume; n/a when the scheme has no enhancing label",
    ),
    Field(
        "necrotic_volume_ml",
        "mL",
        "necrotic / non-enhancing core voxels of the lesion x voxel volume; n/a when the scheme has no such label",
    ),
    Field(
        "edema_volume_ml",
        "mL",
        "edema voxels attributed to this lesion (nearest core within the connected core+edema region) x voxel volume; n/a when the scheme has no edema label",
    ),
    Field("edema_ratio", None, "edema_volume_ml / volume_ml (0 = no edema)"),
    Field("edema_index", None, "(edema_volume_ml + volume_ml) / volume_ml (1 = no edema)"),
    Field(
        "max_diameter_3d_mm",
        "mm",
        "IBSI maximum 3D diameter: largest distance between two vertices of the core surface mesh (found among convex-hull vertices)",
    ),
    Field(
        "axial_longest_diameter_mm",
        "mm",
        "RANO-BM longest diameter: largest distance between two points of the core outline within one patient-axial plane (see README)",
    ),
    Field(
        "axial_perpendicular_diameter_mm",
        "mm",
        "longest chord inside the core outline perpendicular to the longest diameter, in the same axial plane",
    ),
    Field(
        "axial_slice_count",
        "slice",
        "number of patient-axial planes that cut the core (acquired slices for an axial acquisition)",
    ),
    Field("axial_plane_z_mm", "mm", "world z (RAS) of the axial plane where the longest diameter was found"),
    *(
        Field(
            f"axial_{caliper}_{c}{end}_mm",
            "mm",
            f"world {c} (RAS) of end {end} of the {caliper} diameter, in the plane z = axial_plane_z_mm (the "
            "caliper drawn on the study figure; ends in x-then-y order)",
        )
        for caliper in ("longest", "perpendicular")
        for end in (1, 2)
        for c in "xy"
    ),
    Field(
        "necrotic_fraction",
        None,
        "necrotic / (necrotic + enhancing) core volume; 0 without necrosis; n/a when the scheme has no necrotic or "
        "no enhancing label, or the core holds neither (a core-only label)",
    ),
    Field(
        "rtog9005_dose_level_gy",
        "Gy",
        "research surrogate, never a prescription: the RTOG 90-05 single-fraction dose level for the core's maximum "
        "3D diameter D (24 Gy for D <= 20 mm, 18 Gy for 20 < D <= 30 mm, 15 Gy for 30 < D <= 40 mm; Shaw E et al., "
        "Int J Radiat Oncol Biol Phys 2000;47:291-298, a dose-escalation trial in previously irradiated recurrent "
        "tumours, in which the maximum tolerated dose for D <= 20 mm was not reached); n/a for D beyond the last "
        "level (40 mm), which the trial did not treat; levels configurable",
        long_name="RTOG 90-05 dose level",
    ),
    Field(
        "astro2022_srs_tier",
        None,
        "research surrogate: the size tier of the ASTRO 2022 radiosurgery recommendations (Gondi V et al., Pract "
        "Radiat Oncol 2022;12:265-282) by the core's maximum 3D diameter D; edges configurable",
        ASTRO2022_TIERS,
        long_name="ASTRO 2022 SRS size tier",
    ),
    Field(
        "astro2022_srs_over_60mm",
        None,
        "D above 60 mm (configurable): ASTRO 2022 discourages SRS for such lesions",
        BOOLEAN,
        long_name="Above the ASTRO 2022 SRS size limit",
    ),
    Field(
        "rano_bm_measurable",
        None,
        "RANO-BM measurable: longest >= 10 mm, perpendicular >= 5 mm and on >= 2 axial slices (thresholds configurable)",
        BOOLEAN,
    ),
    Field(
        "rano_bm_target",
        None,
        "one of the up to 5 measurable lesions with the largest axial longest diameter (RANO-BM target lesions)",
        BOOLEAN,
    ),
    Field("equivalent_sphere_diameter_mm", "mm", "diameter of the sphere of volume volume_ml: (6 V / pi)^(1/3)"),
    Field("surface_area_mm2", "mm2", "area of the core surface mesh (IBSI C0JK)"),
    Field(
        "sphericity",
        None,
        "IBSI sphericity (QCFX): (36 pi V^2)^(1/3) / A, with V the mesh volume and A the mesh area; 1 for a sphere",
    ),
    *_CENTROID,
    *_BBOX,
    Field("extent_x_mm", "mm", "extent of the core surface along the world x (R-L) axis"),
    Field("extent_y_mm", "mm", "extent of the core surface along the world y (A-P) axis"),
    Field("extent_z_mm", "mm", "extent of the core surface along the world z (S-I) axis"),
    Field(
        "touches_image_border",
        None,
        "the core reaches the first or last voxel of an image axis (it may be cut off)",
        BOOLEAN,
    ),
    Field(
        "core_components",
        "count",
        "number of connected core components forming this lesion (> 1 only when merging by distance)",
    ),
    Field(
        "posterior_fossa_fraction",
        None,
        "fraction of the core voxels inside the reference's posterior fossa; n/a without an anatomical reference",
    ),
    Field(
        "location",
        None,
        "supratentorial (posterior_fossa_fraction <= 0.1), infratentorial (>= 0.9) or mixed (margin configurable); n/a without a reference",
        LOCATION_LEVELS,
    ),
    Field(
        "brainstem_fraction",
        None,
        "fraction of the core voxels inside the reference's brainstem; n/a when the reference has no brainstem",
    ),
    Field("brainstem_involved", None, "brainstem_fraction >= 0.05 (configurable) and > 0", BOOLEAN),
    Field(
        "eloquent_regions",
        None,
        "eloquent regions (names from the reference definition) holding >= 5 % (configurable) of the core voxels; [] in JSON, none in TSV tables, when there are none",
    ),
    Field(
        "distance_to_fourth_ventricle_mm",
        "mm",
        "shortest distance between a core voxel centre and a 4th-ventricle voxel centre (0 when they overlap); n/a when the reference has no 4th ventricle",
    ),
    *_SUBJECT_PARCELLATION_LESION_FIELDS,
]


EDEMA_ONLY_FIELDS: list[Field] = [
    Field("component_id", None, "edema-only component number, 1 = largest; ties ordered by centroid position"),
    Field("voxel_count", "voxel", "number of edema voxels in the component"),
    Field("volume_ml", "mL", "edema volume of the component"),
    Field("max_diameter_3d_mm", "mm", "largest distance between two vertices of the component's surface mesh"),
    *[
        Field(f.name, f.unit, f.description.replace("core voxel centres", "component's edema voxel centres"))
        for f in _CENTROID
    ],
    *[Field(f.name, f.unit, f.description.replace("of the core", "of the component")) for f in _BBOX],
    Field("touches_image_border", None, "the component reaches the first or last voxel of an image axis", BOOLEAN),
    Field(
        "adjacent_to_cavity",
        None,
        "the component touches resection-cavity voxels; n/a when the scheme has no cavity label",
        BOOLEAN,
    ),
]


CAVITY_FIELDS: list[Field] = [
    Field("component_id", None, "resection-cavity component number, 1 = largest; ties ordered by centroid position"),
    Field("voxel_count", "voxel", "number of resection-cavity voxels in the component"),
    Field("volume_ml", "mL", "volume of the component"),
    Field("max_diameter_3d_mm", "mm", "largest distance between two vertices of the component's surface mesh"),
    Field(
        "axial_longest_diameter_mm",
        "mm",
        "largest distance between two points of the component's outline within one patient-axial plane",
    ),
    *[
        Field(f.name, f.unit, f.description.replace("core voxel centres", "component's voxel centres"))
        for f in _CENTROID
    ],
    *[Field(f.name, f.unit, f.description.replace("of the core", "of the component")) for f in _BBOX],
    Field("touches_image_border", None, "the component reaches the first or last voxel of an image axis", BOOLEAN),
    Field(
        "rim_enhancing_volume_ml",
        "mL",
        "enhancing-tumour voxels in the cavity's rim (touching it, or within features.cavity_rim_mm of it) x voxel volume: residual enhancing tissue at the cavity; n/a when the scheme has no enhancing label",
    ),
    Field(
        "rim_lesion_ids",
        None,
        "lesions whose core reaches into the cavity's rim; [] in JSON, none in TSV tables, when there are none",
    ),
    Field(
        "posterior_fossa_fraction",
        None,
        "fraction of the cavity's voxels inside the reference's brain that lie in the posterior fossa (when more than anatomy.max_outside_brain_fraction of them fall outside it, an unlabelled hole, the tissue of the cavity's rim is counted too); n/a without an anatomical reference",
    ),
    Field(
        "location",
        None,
        "supratentorial, infratentorial or mixed, from posterior_fossa_fraction as for lesions; n/a without a reference",
        LOCATION_LEVELS,
    ),
    Field(
        "brainstem_fraction",
        None,
        "fraction of the same points inside the reference's brainstem; n/a when the reference has no brainstem",
    ),
    Field("brainstem_involved", None, "brainstem_fraction >= 0.05 (configurable) and > 0", BOOLEAN),
    Field(
        "eloquent_regions",
        None,
        "eloquent regions holding >= 5 % (configurable) of the same points; [] in JSON, none in TSV tables, when there are none",
    ),
    Field(
        "distance_to_fourth_ventricle_mm",
        "mm",
        "shortest distance between a cavity voxel centre and a 4th-ventricle voxel centre; n/a when the reference has no 4th ventricle",
    ),
]


STUDY_FIELDS: list[Field] = [
    Field("subject", None, "subject label, when given"),
    Field("session", None, "session label, when given"),
    Field("lesion_count", "count", "number of lesions"),
    Field("cumulative_tumor_volume_ml", "mL", "sum of the lesions' volume_ml"),
    Field(
        "cumulative_enhancing_volume_ml",
        "mL",
        "sum of the lesions' enhancing_volume_ml; n/a when the scheme has no enhancing label",
    ),
    Field(
        "total_edema_volume_ml",
        "mL",
        "all edema voxels of the map (attributed to lesions or in edema-only components) x voxel volume",
    ),
    Field("lesion_edema_volume_ml", "mL", "edema attributed to lesions (sum of edema_volume_ml)"),
    Field("edema_ratio", None, "total_edema_volume_ml / cumulative_tumor_volume_ml; n/a without lesions"),
    Field("largest_max_diameter_3d_mm", "mm", "largest max_diameter_3d_mm of any lesion; n/a without lesions"),
    Field("largest_axial_diameter_mm", "mm", "largest axial_longest_diameter_mm of any lesion; n/a without lesions"),
    Field("measurable_lesion_count", "count", "lesions with rano_bm_measurable"),
    Field("target_lesion_count", "count", "lesions with rano_bm_target"),
    Field(
        "sum_longest_diameters_mm",
        "mm",
        "RANO-BM sum of the axial longest diameters of the target lesions (0 when none)",
    ),
    *[Field(name, "count", f"lesions whose max_diameter_3d_mm is {text}") for name, text, _ in DIAMETER_CLASSES],
    Field(
        "edema_only_component_count",
        "count",
        "connected core+edema regions that hold edema but no lesion (reported apart, not as lesions)",
    ),
    Field("edema_only_volume_ml", "mL", "edema volume of the edema-only components"),
    Field(
        "resection_cavity_volume_ml",
        "mL",
        "resection-cavity voxels x voxel volume; n/a when the scheme has no cavity label",
    ),
    Field(
        "resection_cavity_count",
        "count",
        "connected components of resection-cavity voxels (see resection_cavities); n/a when the scheme has no cavity label",
    ),
    Field("discarded_core_component_count", "count", "core components below min_lesion_volume_mm3 (not lesions)"),
    Field("discarded_core_volume_ml", "mL", "their total volume"),
    Field("discarded_edema_component_count", "count", "edema-only components below min_edema_component_volume_mm3"),
    Field("discarded_edema_volume_ml", "mL", "their total volume"),
    Field(
        "location_reference",
        None,
        "the anatomical reference used to locate lesions (kind: definition name); n/a when none",
    ),
    Field("infratentorial_lesion_count", "count", "lesions whose location is infratentorial; n/a without a reference"),
    Field(
        "mixed_location_lesion_count",
        "count",
        "lesions straddling the tentorium (location mixed); n/a without a reference",
    ),
    Field(
        "brainstem_lesion_count", "count", "lesions with brainstem_involved; n/a when the reference has no brainstem"
    ),
    Field(
        "posterior_fossa_tumor_volume_ml",
        "mL",
        "core volume inside the posterior fossa, summed over the lesions; n/a without a reference",
    ),
    Field(
        "location_notes",
        None,
        "why location fields are n/a for this study (no reference, no subject parcellation, or labels they lack)",
    ),
    Field(
        "midline_shift_mm",
        "mm",
        "largest distance of the septum pellucidum (where lateral ventricles 4 and 43 face each other) or of the third ventricle (14) from the ideal midline plane, fitted to the interhemispheric fissure near the frontal and occipital poles; each point first smoothed by a running median within anatomy.midline_smoothing_mm (3 mm); a normal septum lies up to ~1.5 mm off; n/a without the subject's own parcellation (see midline_shift_reason)",
    ),
    Field(
        "midline_shift_towards",
        None,
        "the subject's side the septum or third ventricle is displaced to; n/a under anatomy.midline_shift_direction_min_mm (1 mm)",
        _SIDES,
    ),
    Field("midline_shift_reason", None, "why midline_shift_mm is n/a (n/a when it was measured)"),
    Field(
        "lateral_ventricle_volume_left_ml",
        "mL",
        f"left lateral ventricle (aseg 4 + 5) voxels x voxel volume; {_OWN} or when it has neither label",
    ),
    Field(
        "lateral_ventricle_volume_right_ml",
        "mL",
        f"right lateral ventricle (aseg 43 + 44) voxels x voxel volume; {_OWN} or when it has neither label",
    ),
    Field("third_ventricle_volume_ml", "mL", f"third ventricle (aseg 14) volume; {_OWN} or when it has no label 14"),
    Field("fourth_ventricle_volume_ml", "mL", f"fourth ventricle (aseg 15) volume; {_OWN} or when it has no label 15"),
    Field(
        "evans_index",
        None,
        "maximal width of the frontal horns (4 and 43 in front of the third ventricle) over the internal cranial width on the same axial slab, both along the midline plane's normal; the cranium is the parcellation's labelled extent (inside the inner table), which makes the index read high; > 0.3 is ventriculomegaly; "
        + _OWN,
    ),
    Field(
        "fourth_ventricle_to_tumour_volume_ratio",
        None,
        "fourth_ventricle_volume_ml / core volume of the largest posterior-fossa (infratentorial or mixed) lesion, taken to be the one operated on; n/a without a posterior-fossa lesion or the subject's own parcellation",
    ),
    Field(
        "edema_to_tumour_volume_ratio",
        None,
        "that lesion's edema_volume_ml / its core volume; n/a as above, or without an edema label",
    ),
    Field(
        "pf_postoperative_hydrocephalus_risk_factors",
        None,
        "the predictors of hydrocephalus after resection of a posterior-fossa metastasis (J Neurooncol 2024, PMID 39607570) that are present; they predict hydrocephalus after surgery, not hydrocephalus now; n/a as above; [] in JSON, none in TSV tables, when none is present",
        PF_HYDROCEPHALUS_RISK_FACTORS,
    ),
]


#: The features document's provenance keys and what each holds (docs/reference/output-fields.md shows them; a key
#: the code writes without a description here shows as undefined there, and tests/test_docs.py fails).
PROVENANCE_KEYS = {
    "brainmets_version": "the brainmets version that wrote the document",
    "software": "versions of Python, numpy, scipy, scikit-image, nibabel, SimpleITK, cc3d (and brainmets)",
    "input_format": "the input's format: nifti, the extension of an NRRD or MetaImage file (nrrd, nhdr, mha, mhd), "
    "dicom-series, dicom-seg or dicom-rtstruct",
    "shape": "the label map's shape (voxels along each array axis)",
    "stored_dtype": "the data type the input stores its labels in",
    "sform_code": "the NIfTI header's sform code (NIfTI only)",
    "qform_code": "the NIfTI header's qform code (NIfTI only)",
    "scaling_applied": "whether the NIfTI scaling factors were applied (NIfTI only)",
    "input_sha256": "SHA-256 of the input (of the files read, for DICOM: each file's digest, sorted; names play no "
    "part), never its name",
    "affine_ras": "the voxel-to-world affine (4x4, RAS, mm)",
    "orientation": "axis codes, e.g. LPS",
    "voxel_size_mm": "voxel size along each array axis",
    "voxel_volume_mm3": "voxel volume (|det| of the affine)",
    "axis_shear_deg": "shear of the voxel axes (0 for every grid whose axes are orthogonal)",
    "axial_obliquity_deg": "obliquity of the grid against the patient's axial planes",
    "axial_plane_spacing_mm": "spacing of the patient-axial planes the axial diameters are measured in",
    "axial_reference_axis": "the voxel axis that points most nearly superior",
    "label_scheme": "the label scheme the map was read with",
    "label_voxel_counts": "voxel count of every label value present",
    "parameters": "every parameter, as in the config",
    "warnings": "warnings (for instance sform/qform disagreement, a map read as binary, a poor registration)",
    "anatomy": "the reference's kind, definition, alignment, image hashes and shapes, assumptions, location "
    "parameters and, for templates, the registration's quality; null without a reference",
    "research_use_only": "always true",
    "dicom_object": "the DICOM object read (DICOM label series only)",
    "segmentation_type": "binary or fractional (DICOM SEG only)",
    "segments": "each segment's number, label and role (DICOM SEG only)",
    "fractional_threshold": "the threshold a fractional segment covers a voxel at (DICOM SEG only)",
    "grid": "which grid the SEG was placed on (DICOM SEG only)",
    "overlap_priority": "the order of roles a voxel in several segments or ROIs takes the first of (DICOM SEG and "
    "RTSTRUCT only)",
    "rois": "each ROI's number, name and role (DICOM RTSTRUCT only)",
    "rasterisation": "how the contours were rasterised (DICOM RTSTRUCT only)",
}
