"""The study picture: each lesion's slice with its outlines, the same whatever the voxel axes' storage order."""

import numpy as np
from PIL import Image

from brainmets.figures.pictures import COLOURS, study_figure
from brainmets.io import LabelMap
from brainmets.measurement.parameters import FeatureParameters
from brainmets.study.features import measure_label_map

from .conftest import ball


def _picture(path, labels, affine):
    params = FeatureParameters.from_config({"label_scheme": "brats-mets-2023", "min_lesion_volume_mm3": 0})
    result = measure_label_map(LabelMap(labels=labels, affine=affine, source="phantom"), params)
    study_figure(path, labels, affine, params.scheme, result.lesions, result.instances, title="phantom")
    return np.asarray(Image.open(path).convert("RGB"))


def _has(picture, colour: str) -> bool:
    rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
    return bool(np.all(np.abs(picture.astype(int) - rgb) <= 2, axis=-1).any())


def test_the_picture_shows_each_role_and_does_not_depend_on_the_storage_order(tmp_path):
    """A lesion (necrotic centre, enhancing rim, edema shell) and a small one beside it: the core is outlined
    in yellow, the whole tumour in blue, the enhancing tumour filled in red; the same map stored with its
    first axis reversed and its last two swapped (the affine saying so) gives the same picture, pixel for
    pixel."""
    shape = (64, 60, 40)
    labels = np.zeros(shape, np.uint8)
    labels[ball(shape, (30, 30, 20), 12)] = 2  # edema
    labels[ball(shape, (30, 30, 20), 7)] = 3  # enhancing
    labels[ball(shape, (30, 30, 20), 3)] = 1  # necrotic
    labels[ball(shape, (52, 12, 20), 3)] = 3
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    picture = _picture(tmp_path / "a.png", labels, affine)
    assert all(_has(picture, COLOURS[role]) for role in ("core", "whole"))
    red_fill = 0.45 * 0.45 + 0.55 * np.array([1.0, 0.23, 0.19])  # over the label map's grey (0.45)
    assert _has(picture, "#" + "".join(f"{int(c * 255):02x}" for c in red_fill))

    stored = np.flip(labels, axis=0).transpose(0, 2, 1)  # voxel (i, k, j) of the new array
    moved = np.zeros((4, 4))
    moved[0, 0], moved[0, 3] = -1.0, shape[0] - 1  # i' = 63 - i
    moved[1, 2] = moved[2, 1] = 1.0  # y from the third index, z from the second
    moved[3, 3] = 1.0
    assert np.array_equal(_picture(tmp_path / "b.png", np.ascontiguousarray(stored), moved), picture)


def test_cohort_figures_count_each_patient_once_unless_asked():
    from brainmets.figures.pictures import chosen_sessions, of_sessions

    studies = [
        {"participant_id": "sub-10", "session_id": "ses-2"},
        {"participant_id": "sub-10", "session_id": "ses-10"},  # later than ses-2, though it sorts first as text
        {"participant_id": "sub-10", "session_id": "ses-1"},
        {"participant_id": "sub-01", "session_id": "n/a"},
    ]
    assert chosen_sessions(studies) == {("sub-10", "ses-10"), ("sub-01", "n/a")}
    assert chosen_sessions(studies, "baseline") == {("sub-10", "ses-1"), ("sub-01", "n/a")}
    assert len(chosen_sessions(studies, "all")) == 4
    lesions = [
        {"participant_id": "sub-10", "session_id": s, "lesion_id": k} for s in ("ses-1", "ses-10") for k in (1, 2)
    ]
    assert [r["session_id"] for r in of_sessions(lesions, chosen_sessions(studies))] == ["ses-10", "ses-10"]
