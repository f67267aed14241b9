"""Location of lesions against a parcellation, an atlas or a registered template."""

import math
from importlib import resources

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from brainmets.errors import ConfigError, InputDataError
from brainmets.io import LabelMap, load_segmentation
from brainmets.location.parameters import LocationParameters, RegistrationParameters
from brainmets.location.references import ReferenceChoice, ReferenceDefinition, build_reference
from brainmets.location.registration import resample_onto
from brainmets.measurement.parameters import FeatureParameters
from brainmets.study.features import measure_label_map

from .conftest import ball

PF_ASEG = [7, 8, 46, 47, 16, 15]


def save(path, data, affine):
    nib.save(nib.Nifti1Image(np.asarray(data), affine), str(path))
    return path


def locate_with(seg_path, choice: ReferenceChoice, **location):
    seg = load_segmentation(seg_path)
    reference = build_reference(choice, seg)
    params = FeatureParameters.from_config({"min_lesion_volume_mm3": 0})
    return measure_label_map(seg, params, reference=reference, location=LocationParameters(**location))


# ---- a synthetic parcellation with regions known exactly -------------------------------------------------


@pytest.fixture(scope="module")
def toy_parcellation(tmp_path_factory):
    """A 0.5 mm aseg-like parcellation (LPS-stored) of a 60 x 60 x 60 mm box centred on the origin:
    z < 0 cerebellum cortex (8), a brainstem column (16) at |x| < 5, |y| < 5, a 4th ventricle (15) box,
    z >= 0 cerebral cortex (3) with a precentral block (1024) at x > 15. Region borders fall half-way
    between voxel centres, exactly on the planes z = 0, |x| = 5, ..."""
    folder = tmp_path_factory.mktemp("toy")
    shape = (120, 120, 120)
    affine = np.diag([-0.5, -0.5, 0.5, 1.0])
    affine[:3, 3] = [29.75, 29.75, -29.75]
    ijk = np.indices(shape).reshape(3, -1).T
    x, y, z = nib.affines.apply_affine(affine, ijk).T
    labels = np.where(z < 0, 8, 3)
    labels[(np.abs(x) < 5) & (np.abs(y) < 5)] = 16
    labels[(z >= 0) & (x > 15)] = 1024
    labels[(np.abs(x) < 3) & (y > 8) & (y < 12) & (z > -10) & (z < -6)] = 15
    return save(folder / "aparc+aseg.nii.gz", labels.reshape(shape).astype(np.int16), affine)


def seg_with_balls(path, balls, shape=(60, 60, 60), affine=None):
    """A 1 mm RAS segmentation (origin at the box corner) with enhancing balls at world centres."""
    if affine is None:
        affine = np.eye(4)
        affine[:3, 3] = [-29.5, -29.5, -29.5]
    labels = np.zeros(shape, np.uint8)
    for centre, radius in balls:
        ijk_centre = nib.affines.apply_affine(np.linalg.inv(affine), centre)
        labels[ball(shape, ijk_centre, radius, nib.affines.voxel_sizes(affine))] = 3
    return save(path, labels, affine), labels, affine


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.7, 1.1, 2.5)])
def test_the_ventricle_distance_from_a_lesions_candidate_voxels_is_that_from_all_of_them(toy_parcellation, spacing):
    """Boundary voxels, and interior voxels whose cell holds a ventricle point, are the only ones that can
    be nearest: random blobs around and inside the 4th ventricle, on an anisotropic, flipped grid."""
    from brainmets.location.locate import nearest_candidates
    from brainmets.measurement.geometry import apply_affine

    reference = build_reference(ReferenceChoice(parcellation=str(toy_parcellation)), None)
    tree = reference.region_tree("fourth_ventricle")
    rng = np.random.default_rng(7)
    affine = np.diag([-spacing[0], spacing[1], spacing[2], 1.0])
    for trial in range(12):
        shape = tuple(int(n) for n in rng.integers(6, 16, size=3))
        mask = ndimage_blob(rng, shape)
        centre = [0, 10, -8] if trial % 3 == 0 else rng.uniform(-25, 25, size=3)  # a third hold the ventricle
        affine[:3, 3] = centre - affine[:3, :3] @ (np.asarray(shape) / 2)
        points = apply_affine(affine, np.argwhere(mask).astype(float))
        candidates = nearest_candidates(mask, affine, [tree])
        assert candidates is not None and not (candidates & ~mask).any()
        nearer = apply_affine(affine, np.argwhere(candidates).astype(float))
        assert tree.query(nearer)[0].min() == tree.query(points)[0].min(), trial
        assert candidates.sum() < mask.sum() or mask.sum() < 30  # the point: fewer voxels searched
    assert (
        nearest_candidates(mask, np.array([[1, 0.3, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]]), [tree]) is None
    )


def ndimage_blob(rng, shape) -> np.ndarray:
    """A random solid blob: smoothed noise above a threshold, never empty."""
    from scipy import ndimage

    field = ndimage.gaussian_filter(rng.normal(size=shape), 1.5)
    mask = field > np.quantile(field, 0.4)
    return ndimage.binary_fill_holes(mask)


def test_known_regions_of_a_synthetic_parcellation(tmp_path, toy_parcellation):
    balls = [((-15, -15, -15), 4), ((0, 0, -18), 3), ((-15, -15, 12), 4), ((-15, 10, 0), 5), ((22, -15, 10), 4)]
    seg, labels, affine = seg_with_balls(tmp_path / "seg.nii.gz", balls)
    result = locate_with(seg, ReferenceChoice(parcellation=str(toy_parcellation)))
    by_centre = {}
    for row in result.lesions:
        centre = (round(row["centroid_x_mm"]), round(row["centroid_y_mm"]), round(row["centroid_z_mm"]))
        by_centre[centre] = row
    cerebellum, brainstem, cerebrum, straddling, motor = (by_centre[tuple(c)] for c, _ in balls)
    assert (cerebellum["location"], cerebellum["posterior_fossa_fraction"]) == ("infratentorial", 1.0)
    assert not cerebellum["brainstem_involved"] and cerebellum["eloquent_regions"] == []
    assert brainstem["location"] == "infratentorial" and brainstem["brainstem_fraction"] == 1.0
    assert brainstem["brainstem_involved"] and brainstem["eloquent_regions"] == ["brainstem"]
    assert (cerebrum["location"], cerebrum["posterior_fossa_fraction"]) == ("supratentorial", 0.0)
    # straddling z = 0: the fraction is that of voxel centres below the plane
    ijk = np.argwhere(ball(labels.shape, nib.affines.apply_affine(np.linalg.inv(affine), (-15, 10, 0)), 5))
    below = (nib.affines.apply_affine(affine, ijk)[:, 2] < 0).mean()
    assert straddling["location"] == "mixed"
    assert straddling["posterior_fossa_fraction"] == pytest.approx(below, abs=1e-12)
    assert motor["eloquent_regions"] == ["primary_motor_cortex"]
    # the 4th ventricle box spans x in (-3, 3), y in (8, 12), z in (-10, -6); the lesion (centre (0, 0, -18),
    # radius 3) is nearest its edge at y = 8, z = -10: hypot(8, 8) - 3 mm, within a voxel
    assert brainstem["distance_to_fourth_ventricle_mm"] == pytest.approx(math.hypot(8, 8) - 3, abs=1.0)
    study = result.study
    assert study["infratentorial_lesion_count"] == 2 and study["mixed_location_lesion_count"] == 1
    assert study["brainstem_lesion_count"] == 1
    expected_pf = sum(r["posterior_fossa_fraction"] * r["volume_ml"] for r in result.lesions)
    assert study["posterior_fossa_tumor_volume_ml"] == pytest.approx(expected_pf)
    assert study["location_reference"] == "parcellation: freesurfer"
    assert not [note for note in study["location_notes"] if note.startswith("reference")]  # the regions are there
    assert any("no left lateral ventricle (4, 5) label" in note for note in study["location_notes"])  # no ventricles
    assert result.document["provenance"]["anatomy"]["alignment"] == "world"


def test_location_is_invariant_to_flipping_and_permuting_the_segmentation(tmp_path, toy_parcellation):
    balls = [((-15, 10, 0), 5), ((0, 0, -18), 3), ((22, -15, 10), 4)]
    seg, labels, affine = seg_with_balls(tmp_path / "a.nii.gz", balls)
    base = locate_with(seg, ReferenceChoice(parcellation=str(toy_parcellation)))
    flipped = np.flip(labels, axis=(0, 2)).transpose(1, 2, 0)
    flip = np.diag([-1.0, 1.0, -1.0, 1.0])
    flip[[0, 2], 3] = [labels.shape[0] - 1, labels.shape[2] - 1]
    perm = np.eye(4)
    perm[:3, :3] = np.eye(3)[:, (1, 2, 0)]
    other = save(tmp_path / "b.nii.gz", flipped, affine @ flip @ perm)
    moved = locate_with(other, ReferenceChoice(parcellation=str(toy_parcellation)))
    keys = (
        "posterior_fossa_fraction",
        "location",
        "brainstem_fraction",
        "brainstem_involved",
        "eloquent_regions",
        "distance_to_fourth_ventricle_mm",
        "centroid_x_mm",
    )
    assert [[r[k] for k in keys] for r in moved.lesions] == [[r[k] for k in keys] for r in base.lesions]


def test_no_reference_leaves_location_null_and_says_why(tmp_path):
    seg, _, _ = seg_with_balls(tmp_path / "seg.nii.gz", [((0, 0, 0), 4)])
    result = locate_with(seg, ReferenceChoice())
    row = result.lesions[0]
    assert row["location"] is None and row["posterior_fossa_fraction"] is None and row["eloquent_regions"] is None
    assert result.study["infratentorial_lesion_count"] is None
    assert result.study["posterior_fossa_tumor_volume_ml"] is None
    assert "no anatomical reference" in result.study["location_notes"][0]
    assert result.document["provenance"]["anatomy"] is None


def test_posterior_fossa_mask_gives_location_but_no_brainstem(tmp_path):
    seg, _, affine = seg_with_balls(tmp_path / "seg.nii.gz", [((0, 0, -10), 4), ((0, 0, 15), 4)])
    mask = np.zeros((60, 60, 60), np.uint8)
    mask[:, :, :30] = 1  # voxel centres z < 0
    mask_path = save(tmp_path / "pf.nii.gz", mask, affine)
    result = locate_with(seg, ReferenceChoice(posterior_fossa_mask=str(mask_path)))
    assert sorted(r["location"] for r in result.lesions) == ["infratentorial", "supratentorial"]
    assert all(r["brainstem_fraction"] is None and r["brainstem_involved"] is None for r in result.lesions)
    assert all(r["eloquent_regions"] is None for r in result.lesions)
    notes = " ".join(result.study["location_notes"])
    assert "no brainstem label" in notes and "no 4th-ventricle label" in notes
    assert result.study["brainstem_lesion_count"] is None


def test_mixed_margin_is_configurable(tmp_path, toy_parcellation):
    seg, _, _ = seg_with_balls(tmp_path / "seg.nii.gz", [((-15, 10, 1.5), 5)])
    strict = locate_with(seg, ReferenceChoice(parcellation=str(toy_parcellation))).lesions[0]
    assert strict["location"] == "mixed" and strict["posterior_fossa_fraction"] < 0.4
    loose = locate_with(seg, ReferenceChoice(parcellation=str(toy_parcellation)), mixed_margin=0.45).lesions[0]
    assert loose["location"] == "supratentorial"


def test_reference_that_does_not_cover_the_lesions_is_refused(tmp_path, toy_parcellation):
    seg, _, _ = seg_with_balls(tmp_path / "seg.nii.gz", [((0, 0, 0), 4)])
    far = nib.load(toy_parcellation)
    moved = far.affine.copy()
    moved[0, 3] += 200
    other = save(tmp_path / "elsewhere.nii.gz", np.asanyarray(far.dataobj), moved)
    with pytest.raises(
        InputDataError, match=r"seg\.nii\.gz, .*elsewhere\.nii\.gz: the anatomical reference does not cover"
    ):
        locate_with(seg, ReferenceChoice(parcellation=str(other)))


def test_reference_that_does_not_line_up_is_refused(tmp_path):
    seg, _, affine = seg_with_balls(tmp_path / "seg.nii.gz", [((0, 0, 0), 4)])
    parc = np.zeros((60, 60, 60), np.int16)
    parc[:5] = 3  # labelled brain far from the lesion
    path = save(tmp_path / "parc.nii.gz", parc, affine)
    with pytest.raises(InputDataError, match="does not line up.*--reference-alignment voxel"):
        locate_with(seg, ReferenceChoice(parcellation=str(path)))


def test_voxel_alignment_ignores_the_reference_header(tmp_path, toy_parcellation):
    seg, labels, affine = seg_with_balls(tmp_path / "seg.nii.gz", [((0, 0, -18), 3)])
    aseg = np.where(np.indices(labels.shape)[2] < 30, 16, 3).astype(np.int16)  # brainstem below voxel k = 30
    bad_header = np.diag([3.0, 3.0, 3.0, 1.0])
    bad_header[:3, 3] = 500
    path = save(tmp_path / "same_grid_bad_header.nii.gz", aseg, bad_header)
    with pytest.raises(InputDataError, match="does not cover"):
        locate_with(seg, ReferenceChoice(parcellation=str(path)))
    row = locate_with(seg, ReferenceChoice(parcellation=str(path), alignment="voxel")).lesions[0]
    assert row["location"] == "infratentorial" and row["brainstem_involved"]
    with pytest.raises(InputDataError, match="voxel-grid alignment needs the segmentation's grid"):
        locate_with(seg, ReferenceChoice(parcellation=str(toy_parcellation), alignment="voxel"))


def test_one_reference_at_a_time():
    with pytest.raises(ConfigError, match="choose one anatomical reference"):
        _ = ReferenceChoice(parcellation="a.nii.gz", atlas="sri24").kind


def test_reference_definitions_are_validated(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nimages: {labels: null}\nregions: {posterior_fossa: [{image: other, in: [1]}]}\n")
    with pytest.raises(ConfigError, match="unknown image"):
        ReferenceDefinition.load(bad)
    bad.write_text("name: x\nimages: {labels: null}\nregions: {brainstem: [{image: labels, in: [1]}]}\n")
    with pytest.raises(ConfigError, match="posterior_fossa"):
        ReferenceDefinition.load(bad)
    with pytest.raises(ConfigError, match="built-in definitions: freesurfer, sri24"):
        ReferenceDefinition.load(tmp_path / "missing.yaml")


def test_custom_definition_with_its_own_regions(tmp_path):
    seg, _, affine = seg_with_balls(tmp_path / "seg.nii.gz", [((0, 0, -10), 4)])
    labels = np.where(np.indices((60, 60, 60))[2] < 30, 5, 1).astype(np.int16)
    save(tmp_path / "mine.nii.gz", labels, affine)
    (tmp_path / "mine.yaml").write_text(
        "name: mine\nimages: {lab: mine.nii.gz}\n"
        "regions: {posterior_fossa: [{image: lab, in: [5]}], brainstem: [{image: lab, in: [6]}]}\n"
        "eloquent: {lower_half: [{image: lab, in: [5]}]}\n"
    )
    row = locate_with(seg, ReferenceChoice(atlas=str(tmp_path / "mine.yaml"))).lesions[0]
    assert row["location"] == "infratentorial" and row["brainstem_fraction"] == 0.0
    assert row["eloquent_regions"] == ["lower_half"]


# ---- real references (../shared) ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthseg(shared):
    return shared / "real/synthseg/training_seg_01.nii.gz"


EXPECTED_SITES = {
    "cerebellum": "infratentorial",
    "brainstem": "infratentorial",
    "occipital": "supratentorial",
    "tentorium": "mixed",
}


@pytest.fixture(scope="module")
def synthseg_sites(synthseg):
    """Deterministic lesion centres (voxel indices on the SynthSeg grid) and radii for four situations."""
    from scipy import ndimage

    aseg = np.asanyarray(nib.load(synthseg).dataobj).astype(np.int32)
    pf = np.isin(aseg, PF_ASEG)
    # search near the posterior fossa only (distance maps of the whole 256^3 grid are slow)
    box = tuple(slice(max(int(i.min()) - 20, 0), int(i.max()) + 21) for i in np.nonzero(pf))
    origin = np.array([b.start for b in box])
    crop, crop_pf = aseg[box], pf[box]
    cerebral = np.isin(crop, [2, 3, 41, 42])
    deep = lambda m: tuple(np.unravel_index(np.argmax(ndimage.distance_transform_edt(m)), m.shape) + origin)  # noqa: E731
    to_pf = ndimage.distance_transform_edt(~crop_pf)
    posterior = np.indices(crop.shape)[2] + origin[2] < 100  # the SynthSeg grid is LIA: low k = posterior
    above = np.argwhere(cerebral & (to_pf > 6.5) & (to_pf < 7.5) & posterior)
    above = tuple(above[np.argmax(above[:, 1])] + origin)  # the lowest (most inferior) such point
    border = np.argwhere(cerebral & (to_pf > 0.5) & (to_pf < 1.5) & posterior & (crop == 3))
    border = tuple(border[len(border) // 2] + origin)
    return (
        aseg,
        pf,
        {
            "cerebellum": (deep(crop == 8), 5),
            "brainstem": (deep(crop == 16), 6),
            "occipital": (above, 5),
            "tentorium": (border, 6),
        },
    )


def _located(labels: np.ndarray, affine: np.ndarray, reference) -> dict:
    seg = LabelMap(labels.astype(np.uint8) * 3, affine, "seg")
    params = FeatureParameters.from_config({"min_lesion_volume_mm3": 0})
    return measure_label_map(seg, params, reference=reference).lesions[0]


@pytest.mark.slow
@pytest.mark.shared
def test_synthseg_parcellation_on_its_own_grid(synthseg, synthseg_sites):
    """Lesions made on the parcellation's grid: fractions equal the overlap counted directly."""
    aseg, pf, sites = synthseg_sites
    affine = nib.load(synthseg).affine
    grid = LabelMap(np.zeros(aseg.shape, np.uint8), affine, "seg")
    reference = build_reference(ReferenceChoice(parcellation=str(synthseg)), grid)
    for name, (centre, radius) in sites.items():
        lesion = ball(aseg.shape, centre, radius)
        row = _located(lesion, affine, reference)
        assert row["posterior_fossa_fraction"] == pytest.approx(pf[lesion].mean(), abs=1e-12), name
        assert row["brainstem_fraction"] == pytest.approx((aseg[lesion] == 16).mean(), abs=1e-12), name
        assert row["location"] == EXPECTED_SITES[name], (name, row["posterior_fossa_fraction"])
        assert row["brainstem_involved"] is (name == "brainstem"), name


@pytest.mark.slow
@pytest.mark.shared
def test_synthseg_parcellation_on_another_grid(synthseg, synthseg_sites):
    """The same lesions drawn on a BraTS-like 0.9 x 0.9 x 1.2 mm LPS grid: the parcellation is sampled
    through both affines; fractions agree with the direct overlap within 0.08."""
    aseg, pf, sites = synthseg_sites
    parc_affine = nib.load(synthseg).affine
    shape = (200, 200, 120)
    seg_affine = np.diag([-0.9, -0.9, 1.2, 1.0])
    seg_affine[:3, 3] = [89.55, 89.55, -71.4]
    grid = LabelMap(np.zeros(shape, np.uint8), seg_affine, "seg")
    reference = build_reference(ReferenceChoice(parcellation=str(synthseg)), grid)
    for name, (centre, radius) in sites.items():
        world = nib.affines.apply_affine(parc_affine, centre)
        lesion = ball(shape, nib.affines.apply_affine(np.linalg.inv(seg_affine), world), radius, (0.9, 0.9, 1.2))
        row = _located(lesion, seg_affine, reference)
        direct = pf[ball(aseg.shape, centre, radius)].mean()
        assert row["posterior_fossa_fraction"] == pytest.approx(direct, abs=0.08), name
        assert row["location"] == EXPECTED_SITES[name], name


def _sri24_pf(shared) -> tuple[np.ndarray, np.ndarray]:
    folder = shared / "real/sri24-atlas"
    tissues = load_segmentation(folder / "tissues.nii.gz")
    suptent = load_segmentation(folder / "suptent.nii.gz")
    return (tissues.labels > 0) & (suptent.labels == 0), tissues.affine


@pytest.mark.slow
@pytest.mark.shared
def test_sri24_atlas_and_the_equivalent_parcellation_agree(tmp_path, shared):
    """A BraTS-space case (BRATS 2015 grid, LPS) located with the SRI24 atlas, and with a parcellation
    holding the same posterior fossa and brainstem in aseg labels: the same answers."""
    folder = shared / "real/sri24-atlas"
    pf, sri_affine = _sri24_pf(shared)
    lpba = load_segmentation(folder / "lpba40.nii.gz").labels
    brats = nib.load(shared / "real/deepmedic-brats2015/brats_2013_pat0005_1/OTMultiClass.nii.gz")
    labels = np.asanyarray(brats.dataobj).astype(np.uint8)
    # plant lesions: BraTS voxel (i, j, k) is SRI24 voxel (i, 239 - j, k)
    from scipy import ndimage

    deep_pf = np.unravel_index(np.argmax(ndimage.distance_transform_edt(pf & (lpba != 182))), pf.shape)
    deep_bs = np.unravel_index(np.argmax(ndimage.distance_transform_edt(pf & (lpba == 182))), pf.shape)
    for (i, j, k), r in ((deep_pf, 5), (deep_bs, 3)):
        labels[ball(labels.shape, (i, 239 - j, k), r)] = 4
    seg = save(tmp_path / "brats.nii.gz", labels, brats.affine)
    parcellation = np.where(pf, 8, np.where(lpba > 0, 3, 0)).astype(np.int16)
    parcellation[pf & (lpba == 182)] = 16
    parc = save(tmp_path / "sri24_as_aseg.nii.gz", parcellation, sri_affine)

    seg_map = load_segmentation(seg)
    params = FeatureParameters.from_config({"label_scheme": "brats-2015"})
    atlas = measure_label_map(
        seg_map, params, reference=build_reference(ReferenceChoice(atlas="sri24", atlas_dir=str(folder)), seg_map)
    )
    parcel = measure_label_map(
        seg_map, params, reference=build_reference(ReferenceChoice(parcellation=str(parc)), seg_map)
    )
    assert atlas.study["lesion_count"] == parcel.study["lesion_count"] == 3
    for a, b in zip(atlas.lesions, parcel.lesions):
        assert a["posterior_fossa_fraction"] == b["posterior_fossa_fraction"]
        assert a["location"] == b["location"]
    locations = sorted(r["location"] for r in atlas.lesions)
    assert locations == ["infratentorial", "infratentorial", "supratentorial"]
    assert atlas.study["brainstem_lesion_count"] == 1


@pytest.mark.shared
def test_aurora_case_needs_voxel_alignment(tmp_path, shared):
    """The AURORA output's header does not line up with SRI24 in world coordinates; its voxel grid does."""
    seg = load_segmentation(shared / "real/aurora-brats-met-00110/aurora_t1c_segmentation_modeloutput.nii.gz")
    params = FeatureParameters.from_config({"label_scheme": {"edema": [1], "enhancing": [2]}})
    folder = str(shared / "real/sri24-atlas")
    with pytest.raises(InputDataError, match="--reference-alignment"):
        reference = build_reference(ReferenceChoice(atlas="sri24", atlas_dir=folder), seg)
        measure_label_map(seg, params, reference=reference)
    reference = build_reference(ReferenceChoice(atlas="sri24", atlas_dir=folder, alignment="voxel"), seg)
    result = measure_label_map(seg, params, reference=reference)
    assert result.study["location_reference"] == "atlas: sri24"
    assert all(r["location"] in ("supratentorial", "infratentorial", "mixed") for r in result.lesions)
    assert result.document["provenance"]["anatomy"]["alignment"] == "voxel"


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * (a & b).sum() / (a.sum() + b.sum())


@pytest.mark.slow
@pytest.mark.shared
def test_registration_recovers_a_known_rigid_and_scaling_transform(tmp_path, shared):
    """The SRI24 template moved by a known similarity transform (rotation 10 deg, scale 1.08, shift): the
    posterior fossa brought back by registration matches the truth with Dice >= 0.85."""
    folder = shared / "real/sri24-atlas"
    template = sitk.ReadImage(str(folder / "spgr.nii.gz"), sitk.sitkFloat32)
    known = sitk.Similarity3DTransform()
    known.SetCenter(template.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in template.GetSize()]))
    known.SetRotation((1, 0.3, 0.2), math.radians(10))
    known.SetScale(1.08)
    known.SetTranslation((6, -4, 3))
    sitk.WriteImage(sitk.Resample(template, template, known, sitk.sitkLinear, 0), str(tmp_path / "subject.nii.gz"))
    pf, affine = _sri24_pf(shared)
    grid = LabelMap(np.zeros(pf.shape, np.uint8), affine, "grid")
    truth = resample_onto(LabelMap(pf.astype(np.uint8), affine, "pf"), grid, known).labels == 1

    seg = LabelMap(np.zeros(pf.shape, np.uint8), affine, str(tmp_path / "seg.nii.gz"))
    choice = ReferenceChoice(template="sri24", atlas_dir=str(folder), subject_image=str(tmp_path / "subject.nii.gz"))
    reference = build_reference(choice, seg, RegistrationParameters())
    recovered = reference.images["tissues"].labels > 0
    recovered &= reference.images["suptent"].labels == 0
    assert _dice(recovered, truth) >= 0.85
    quality = reference.provenance["registration"]
    assert quality["brain_mask_dice"] > 0.9 and not quality["poor"] and quality["seconds"] > 0


@pytest.mark.slow
@pytest.mark.shared
def test_registration_on_a_real_image(tmp_path, shared):
    """A real BRATS T1c (already in SRI24 space) whose header is moved by a known rigid transform: the
    registered SRI24 posterior fossa matches the one the original header implies (Dice >= 0.85)."""
    case = shared / "real/deepmedic-brats2015/brats_2013_pat0001_1"
    t1c = nib.load(case / "T1c_subtrMeanDivStd.nii.gz")
    angle = math.radians(6)
    rotation = np.eye(4)
    rotation[:2, :2] = [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
    rotation[:3, 3] = [8.0, -5.0, 4.0]
    moved_affine = rotation @ t1c.affine
    subject = save(tmp_path / "t1c.nii.gz", np.asanyarray(t1c.dataobj), moved_affine)
    pf, sri_affine = _sri24_pf(shared)
    # truth: the atlas's posterior fossa at the voxels of the original (SRI24-aligned) header
    truth_map = LabelMap(pf.astype(np.uint8), sri_affine, "pf")
    ijk = np.indices(t1c.shape).reshape(3, -1).T
    sri_ijk = np.rint(nib.affines.apply_affine(np.linalg.inv(sri_affine) @ t1c.affine, ijk)).astype(int)
    truth = truth_map.labels[tuple(sri_ijk.T)].reshape(t1c.shape) == 1

    seg = LabelMap(np.zeros(t1c.shape, np.uint8), moved_affine, "seg")
    choice = ReferenceChoice(template="sri24", atlas_dir=str(shared / "real/sri24-atlas"), subject_image=str(subject))
    reference = build_reference(choice, seg)
    recovered = (reference.images["tissues"].labels > 0) & (reference.images["suptent"].labels == 0)
    assert _dice(recovered, truth) >= 0.85


def test_a_reference_shared_by_studies_is_read_once_and_reread_when_it_changes(tmp_path, toy_parcellation):
    """A batch whose studies share a parcellation reads it (and finds its 4th-ventricle points) once; each
    study's answer is what a fresh read gives, and a changed file is read again."""
    seg, _, _ = seg_with_balls(tmp_path / "seg.nii.gz", [((0, 10, -8), 3), ((-15, -15, 12), 4)])
    parcellation = tmp_path / "aseg.nii.gz"
    parcellation.write_bytes(toy_parcellation.read_bytes())
    choice = ReferenceChoice(parcellation=str(parcellation))
    segmentation = load_segmentation(seg)
    first, second = build_reference(choice, segmentation), build_reference(choice, segmentation)
    assert first.images["labels"] is second.images["labels"]
    assert first.region_tree("fourth_ventricle") is second.region_tree("fourth_ventricle")
    first.provenance["images"]["labels"]["shape"] = "changed by one study"
    assert second.provenance["images"]["labels"]["shape"] == [120, 120, 120]  # each study's own
    cached = locate_with(seg, choice).lesions
    assert cached == locate_with(seg, ReferenceChoice(parcellation=str(toy_parcellation))).lesions

    image = nib.load(str(parcellation))
    labels = np.asarray(image.dataobj).copy()
    labels[labels == 15] = 8  # the 4th ventricle gone: the distances must change
    save(parcellation, labels, image.affine)
    assert build_reference(choice, segmentation).images["labels"] is not first.images["labels"]
    assert all(row["distance_to_fourth_ventricle_mm"] is None for row in locate_with(seg, choice).lesions)
    assert any(row["distance_to_fourth_ventricle_mm"] is not None for row in cached)


def test_the_shared_reference_follows_its_definition(tmp_path, toy_parcellation):
    """Two definitions of one name in one folder (an edited copy): each study gets its own's regions."""
    seg, _, _ = seg_with_balls(tmp_path / "seg.nii.gz", [((22, -15, 10), 4)])
    builtin = (resources.files("brainmets") / "data" / "references" / "freesurfer.yaml").read_text()
    folder = tmp_path / "definitions"
    folder.mkdir()
    (folder / "left.yaml").write_text(builtin)
    (folder / "right.yaml").write_text(builtin.replace("[1024, 2024]", "[1025, 2025]"))  # another motor label
    located = {}
    for name in ("left", "right", "left"):
        choice = ReferenceChoice(
            parcellation=str(toy_parcellation), parcellation_definition=str(folder / f"{name}.yaml")
        )
        located.setdefault(name, []).append(locate_with(seg, choice).lesions[0]["eloquent_regions"])
    assert located["left"][0] == located["left"][1] and located["left"][0] != located["right"][0]
