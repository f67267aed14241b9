import numpy as np
import pytest

from brainmets.errors import InputDataError, LabelSchemeError
from brainmets.io.core import as_integer_labels
from brainmets.schemes import (
    Role,
    check_values,
    count_values,
    custom_scheme,
    get_scheme,
    parse_custom_labels,
    role_mask,
    scheme_mismatch,
)


@pytest.mark.parametrize(
    "name, value, role",
    [
        ("brats-mets-2023", 1, Role.NECROTIC),
        ("brats-mets-2023", 2, Role.EDEMA),
        ("brats-mets-2023", 3, Role.ENHANCING),
        ("brats-mets-2023", 4, Role.CAVITY),
        ("brats-2021", 1, Role.NECROTIC),
        ("brats-2021", 2, Role.EDEMA),
        ("brats-2021", 4, Role.ENHANCING),
        ("brats-2015", 1, Role.NECROTIC),
        ("brats-2015", 2, Role.EDEMA),
        ("brats-2015", 3, Role.NECROTIC),
        ("brats-2015", 4, Role.ENHANCING),
        ("binary", 7, Role.CORE),
    ],
)
def test_scheme_roles(name, value, role):
    labels = np.array([[[0, value]]], dtype=np.uint8)
    scheme = get_scheme(name)
    check_values(count_values(labels.ravel()), scheme)
    assert role_mask(labels, scheme, role).tolist() == [[[False, True]]]
    others = [r for r in Role if r not in (role, Role.BACKGROUND)]
    assert not role_mask(labels, scheme, *others).any()


def test_unknown_value_is_an_error_naming_it():
    labels = np.array([0, 1, 3, 3, 9], dtype=np.int16)
    with pytest.raises(LabelSchemeError, match=r"3 \(2 voxels\), 9 \(1 voxels\).*brats-2021"):
        check_values(count_values(labels), get_scheme("brats-2021"))


def test_negative_values_are_unknown():
    with pytest.raises(LabelSchemeError, match="-1"):
        check_values(count_values(np.array([0, -1])), get_scheme("brats-mets-2023"))


def test_unknown_scheme_name():
    with pytest.raises(LabelSchemeError, match="unknown label scheme 'brats-1999'"):
        get_scheme("brats-1999")


def test_binary_scheme_has_no_edema_or_subregions():
    scheme = get_scheme("binary")
    assert scheme.has(Role.CORE) and not scheme.has(Role.EDEMA) and not scheme.has(Role.ENHANCING)


def test_custom_scheme_and_its_errors():
    scheme = custom_scheme({"enhancing": [5, 6], "edema": 7, "ignored": [9]})
    labels = np.array([0, 5, 6, 7, 9])
    check_values(count_values(labels), scheme)
    assert role_mask(labels, scheme, Role.ENHANCING).tolist() == [False, True, True, False, False]
    assert role_mask(labels, scheme, Role.EDEMA, Role.IGNORED).tolist() == [False, False, False, True, True]
    many = custom_scheme({"core": list(range(1, 20))})  # more than a few values: np.isin
    assert role_mask(np.arange(25), many, Role.CORE).sum() == 19
    with pytest.raises(LabelSchemeError, match="both 'enhancing' and 'edema'"):
        custom_scheme({"enhancing": [1], "edema": [1]})
    with pytest.raises(LabelSchemeError, match="unknown role 'tumour'"):
        custom_scheme({"tumour": [1]})
    with pytest.raises(LabelSchemeError, match="no tumour-core value"):
        custom_scheme({"edema": [2]})
    with pytest.raises(LabelSchemeError, match="integers >= 1"):
        custom_scheme({"enhancing": [0]})


def test_parse_custom_labels():
    assert parse_custom_labels("enhancing=3; necrotic=1,5;edema=2") == {
        "enhancing": [3],
        "necrotic": [1, 5],
        "edema": [2],
    }
    with pytest.raises(LabelSchemeError):
        parse_custom_labels("enhancing")
    with pytest.raises(LabelSchemeError):
        parse_custom_labels("enhancing=x")


def test_count_values_small_and_large_values():
    assert count_values(np.array([0, 0, 2, 4, 4, 4], dtype=np.uint8)) == {0: 2, 2: 1, 4: 3}
    assert count_values(np.array([0, 100000, -3], dtype=np.int64)) == {-3: 1, 0: 1, 100000: 1}


def test_float_labels_holding_whole_numbers_are_accepted():
    out = as_integer_labels(np.array([0.0, 1.0, 4.0], dtype=np.float32), "x.nii")
    assert np.issubdtype(out.dtype, np.integer) and out.tolist() == [0, 1, 4]


def test_fractional_labels_are_refused_with_examples():
    with pytest.raises(InputDataError, match=r"seg\.nii: .*fractional values \(0\.5, 1\.25\)"):
        as_integer_labels(np.array([0.0, 0.5, 1.25, 2.0]), "seg.nii")


def test_nan_labels_are_refused():
    with pytest.raises(InputDataError, match="NaN"):
        as_integer_labels(np.array([0.0, np.nan]), "seg.nii")


def _mismatch(labels, scheme="brats-mets-2023"):
    return scheme_mismatch(labels, count_values(labels.ravel()), get_scheme(scheme))


def test_a_brats_2021_map_read_as_brats_mets_2023_is_recognised():
    rim = np.zeros((12, 12, 12), np.uint8)
    rim[2:9, 2:9, 2:9] = 4  # enhancing rim (BraTS 2021) ...
    rim[4:7, 4:7, 4:7] = 1  # ... around necrosis
    assert "wraps around necrotic core" in _mismatch(rim)
    solid = np.zeros((12, 12, 12), np.uint8)
    solid[1:3, 1:3, 1:3] = solid[8:10, 8:10, 8:10] = 4  # two solid enhancing lesions
    assert "forms 2 components" in _mismatch(solid)
    cavity = np.zeros((12, 12, 12), np.uint8)
    cavity[1:4, 1:4, 1:4] = 4  # one resection cavity ...
    cavity[8:10, 8:10, 8:10] = 1  # ... and a core elsewhere: a post-operative brats-mets-2023 map
    assert _mismatch(cavity) is None
    rim[0, 0, 0] = 3  # enhancing tumour present: brats-mets-2023 after all
    assert _mismatch(rim) is None and _mismatch(solid, "brats-2021") is None


@pytest.mark.shared
def test_scheme_check_on_real_maps(shared):
    """No warning on the four real BraTS-METS reference maps; one on a real BraTS-2021-labelled fusion."""
    import nibabel as nib

    def labels(path):
        return np.asarray(nib.load(path).dataobj).astype(np.int16)

    for path in sorted((shared / "real" / "brats-evaluation-samples").glob("ref_*.nii.gz")):
        assert _mismatch(labels(path)) is None, path.name
    fusion = shared / "real" / "brainlesion-bratstoolkit" / "OtherEXampleFromTCIA" / "fusion_simple.nii.gz"
    assert "look like brats-2021" in _mismatch(labels(fusion))


# --- plausible misreadings: a binary mask, a sub-region map read as binary (issue 23) ---


def _two_cubes(core_value: int = 1) -> np.ndarray:
    labels = np.zeros((40, 40, 40), np.uint8)
    labels[5:15, 5:15, 5:15] = core_value
    labels[25:33, 25:33, 25:33] = core_value
    return labels


def test_a_map_of_0_and_1_with_no_scheme_chosen_is_read_as_binary_with_a_warning():
    from brainmets.io import LabelMap
    from brainmets.measurement.parameters import FeatureParameters
    from brainmets.study.features import measure_label_map

    params = FeatureParameters.from_config({})  # the default: auto
    assert params.scheme_chosen is False
    study = measure_label_map(LabelMap(_two_cubes(), np.eye(4), "mask.nii.gz"), params).document
    assert study["provenance"]["label_scheme"] == "binary"
    assert study["study"]["lesion_count"] == 2
    assert study["study"]["cumulative_tumor_volume_ml"] == pytest.approx((1000 + 512) / 1000)
    # unknown, not zero: a binary mask cannot tell enhancing tumour or edema
    assert study["study"]["cumulative_enhancing_volume_ml"] is None
    assert study["study"]["total_edema_volume_ml"] is None
    assert any("read as a binary tumour mask" in w and "--scheme" in w for w in study["provenance"]["warnings"])


def test_a_chosen_scheme_is_kept_for_a_binary_looking_map_but_the_user_is_warned():
    from brainmets.io import LabelMap
    from brainmets.measurement.parameters import FeatureParameters
    from brainmets.study.features import measure_label_map

    params = FeatureParameters.from_config({"label_scheme": "brats-mets-2023"})
    document = measure_label_map(LabelMap(_two_cubes(), np.eye(4), "mask.nii.gz"), params).document
    assert document["provenance"]["label_scheme"] == "brats-mets-2023"
    assert document["study"]["cumulative_enhancing_volume_ml"] == 0.0  # all necrotic, as chosen
    assert any("reads 1 as necrotic" in w for w in document["provenance"]["warnings"])


def test_a_sub_region_map_read_as_binary_is_warned_about():
    from brainmets.schemes import reading

    counts = {0: 100, 1: 10, 2: 50, 3: 20}
    scheme, warnings = reading(counts, get_scheme("binary"), chosen=True)
    assert scheme.name == "binary" and len(warnings) == 1
    assert "fit brats-mets-2023" in warnings[0] and "edema included" in warnings[0]


@pytest.mark.parametrize("counts", [{0: 9, 1: 3, 2: 4, 3: 5}, {0: 9}, {0: 9, 2: 4}])
def test_no_warning_when_nothing_suggests_a_misreading(counts):
    from brainmets.schemes import reading

    scheme, warnings = reading(counts, get_scheme("auto"), chosen=False)
    assert scheme.name == "brats-mets-2023" and warnings == []


def test_a_scheme_setting_is_a_name_or_the_custom_labels_form():
    from brainmets.schemes import scheme_setting

    assert scheme_setting(" brats-2021 ") == "brats-2021"
    assert scheme_setting("enhancing=3;necrotic=1;edema=2") == {"enhancing": [3], "necrotic": [1], "edema": [2]}
    with pytest.raises(LabelSchemeError, match="unknown label scheme 'brats'"):
        scheme_setting("brats", check=True)
    with pytest.raises(LabelSchemeError, match="unknown role 'tumour'"):
        scheme_setting("tumour=1", check=True)


def test_a_custom_scheme_for_a_0_1_map_is_the_users_statement_and_not_warned_about():
    from brainmets.schemes import reading

    scheme, warnings = reading({0: 9, 1: 3}, get_scheme({"enhancing": [1]}), chosen=True)
    assert scheme.name == "custom" and warnings == []
