"""The study picture: each lesion's slice with its outlines, the same whatever the voxel axes' storage order;
the ideal midline plane and the midline shift when the features document records them."""

import copy

import numpy as np
import pytest
from PIL import Image, ImageDraw

from brainmets.figures.study_picture import COLOURS, MIDLINE_COLOURS, study_figure
from brainmets.io import LabelMap
from brainmets.measurement.parameters import FeatureParameters
from brainmets.study.features import measure_label_map

from .conftest import ball


def _picture(path, labels, affine, anatomy=..., study=None):
    """The study picture of ``labels``; given ``anatomy``, with the features document, its
    ``provenance.anatomy`` replaced by ``anatomy`` and ``study`` fields added."""
    params = FeatureParameters.from_config({"label_scheme": "brats-mets-2023", "min_lesion_volume_mm3": 0})
    result = measure_label_map(LabelMap(labels=labels, affine=affine, source="phantom"), params)
    document = None
    if anatomy is not ...:
        document = copy.deepcopy(result.document)
        document["study"].update(study or {})
        document["provenance"]["anatomy"] = anatomy
    study_figure(path, labels, affine, params.scheme, result.lesions, result.instances, title="phantom",
                 document=document)  # fmt: skip
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


# ---- the midline plane and shift -----------------------------------------------------------------------

SHAPE = (64, 60, 40)
HEADER, PICTURE_TOP = 28, 28 + 7  # the sheet's title band; a 64 x 60 slice is 240 x 225 px, centred in 240 x 240
PX_PER_VOXEL = 240 / 64


def _phantom(second_centre=(52, 12, 20)) -> np.ndarray:
    labels = np.zeros(SHAPE, np.uint8)
    labels[ball(SHAPE, (30, 30, 20), 12)] = 2
    labels[ball(SHAPE, (30, 30, 20), 7)] = 3
    labels[ball(SHAPE, second_centre, 3)] = 3
    return labels


def _coloured(picture, colour: str) -> np.ndarray:
    """(row, column) of the pixels of exactly that colour."""
    rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
    return np.argwhere(np.all(picture.astype(int) == rgb, axis=-1))


def _line_pixels(picture, panel: int = 0) -> np.ndarray:
    """The dashed line's pixels in a panel's picture (its own coordinates), below the "midline" tag at its top."""
    pixels = _coloured(picture, MIDLINE_COLOURS["plane"]) - [PICTURE_TOP, panel * 240]
    inside = (pixels[:, 0] >= 20) & (pixels[:, 0] < 225) & (pixels[:, 1] >= 0) & (pixels[:, 1] < 240)
    return pixels[inside]


def _flipped(labels, affine):
    """The same map stored with its first axis reversed and its last two swapped, the affine saying so."""
    stored = np.ascontiguousarray(np.flip(labels, axis=0).transpose(0, 2, 1))  # voxel (63 - i, k, j)
    move = np.zeros((4, 4))
    move[0, 0], move[0, 3] = -1.0, SHAPE[0] - 1
    move[1, 2] = move[2, 1] = move[3, 3] = 1.0
    return stored, affine @ move


def test_the_midline_plane_is_a_dashed_line_where_it_cuts_the_slice_whatever_the_storage_order(tmp_path):
    """The plane x = 5 mm (normal to the subject's right) on a 1 mm grid: in the radiological picture the
    patient's right is on the left, so the voxel column x = 5 is the 58th from the right edge (63 - 5) of a
    picture 3.75 px per voxel wide: the line is at pixel column floor((63.5 - 5) * 3.75) = 219, dashed, from
    the top to the bottom of the first panel. The second lesion's panel shows x from 7 mm: no line there. The
    same map stored flipped and transposed gives the same picture."""
    labels = _phantom()
    plane = {"normal_ras": [1.0, 0.0, 0.0], "point_ras_mm": [5.0, -20.0, 3.0], "shift_point_ras_mm": None}
    picture = _picture(tmp_path / "a.png", labels, np.eye(4), {"midline_plane": plane})
    line = _line_pixels(picture)
    expected = int((63.5 - 5) * PX_PER_VOXEL)
    assert expected == 219
    assert len(line) > 100 and np.all(np.abs(line[:, 1] - expected) <= 1)
    rows = set(line[:, 0])
    assert 0.5 < len(rows) / (225 - 20) < 0.75  # dashed: 6 px drawn, 4 skipped
    assert not len(_coloured(picture[:, 240:], MIDLINE_COLOURS["plane"]))  # outside the second panel's window
    assert not len(_coloured(picture, MIDLINE_COLOURS["shift"]))  # no shift point: no shift drawn

    stored, moved = _flipped(labels, np.eye(4))
    assert np.array_equal(_picture(tmp_path / "b.png", stored, moved, {"midline_plane": plane}), picture)


def test_the_midline_plane_is_projected_through_an_oblique_affine(tmp_path):
    """A grid turned 20 degrees about the vertical and tilted 10 degrees about the anterior axis (still closest
    to RAS), the lesion at the world origin: every pixel of the dashed line maps back (through the picture's
    convention and the affine, on the lesion's slice k = 20) to a world point on the plane x = 5 mm, within
    2 px; the line runs across the panel, not along a voxel column. Stored flipped, the same picture."""
    turn, tilt = np.deg2rad(20), np.deg2rad(10)
    about_z = np.array([[np.cos(turn), -np.sin(turn), 0], [np.sin(turn), np.cos(turn), 0], [0, 0, 1]])
    about_y = np.array([[np.cos(tilt), 0, np.sin(tilt)], [0, 1, 0], [-np.sin(tilt), 0, np.cos(tilt)]])
    affine = np.eye(4)
    affine[:3, :3] = about_y @ about_z
    affine[:3, 3] = -affine[:3, :3] @ [30, 30, 20]
    labels = _phantom()
    plane = {"normal_ras": [1.0, 0.0, 0.0], "point_ras_mm": [5.0, 0.0, 0.0], "shift_point_ras_mm": None}
    picture = _picture(tmp_path / "a.png", labels, affine, {"midline_plane": plane})
    line = _line_pixels(picture)
    assert len(line) > 100
    rows, columns = line[:, 0] + 0.5, line[:, 1] + 0.5  # pixel centres
    x, y = 63.5 - columns / PX_PER_VOXEL, 59.5 - rows / PX_PER_VOXEL  # voxel: right on the left, anterior up
    world = affine[:3, :3] @ np.stack([x, y, np.full_like(x, 20.0)]) + affine[:3, 3, None]
    assert np.all(np.abs(world[0] - 5.0) <= 2 / PX_PER_VOXEL)
    assert np.ptp(line[:, 1]) > 40  # oblique in the picture

    stored, moved = _flipped(labels, affine)
    assert np.array_equal(_picture(tmp_path / "b.png", stored, moved, {"midline_plane": plane}), picture)


@pytest.fixture
def drawn_texts(monkeypatch):
    """The strings drawn on the pictures (Pillow has no text artists to read back)."""
    texts = []
    original = ImageDraw.ImageDraw.text

    def text(self, xy, string, *args, **kwargs):
        texts.append(string)
        return original(self, xy, string, *args, **kwargs)

    monkeypatch.setattr(ImageDraw.ImageDraw, "text", text)
    return texts


def test_the_shift_is_marked_from_its_point_to_the_plane_with_its_length(tmp_path, drawn_texts):
    """The septum point displaced the most, 7.2 mm to the subject's right of the plane x = 5 mm (at x = 12.2,
    y = 40, on the lesions' slice): both panels show that slice, so both mark it: a segment along its row from
    the point's column (floor((63.5 - 12.2) * 3.75) = 192) to the plane's (219), and the label with the
    study's length and direction."""
    labels = _phantom()
    plane = {"normal_ras": [1.0, 0.0, 0.0], "point_ras_mm": [5.0, 0.0, 0.0], "shift_point_ras_mm": [12.2, 40.0, 20.0]}
    study = {"midline_shift_mm": 7.2, "midline_shift_towards": "right"}
    picture = _picture(tmp_path / "a.png", labels, np.eye(4), {"midline_plane": plane}, study)
    assert drawn_texts.count("midline shift 7.2 mm -> right") == 2
    assert drawn_texts.count("midline") == 1  # the line's tag, on the one panel it crosses
    shift = _coloured(picture[:, :240], MIDLINE_COLOURS["shift"]) - [PICTURE_TOP, 0]
    row = int((59.5 - 40) * PX_PER_VOXEL)
    on_row = shift[np.abs(shift[:, 0] - row) <= 1]
    assert set(range(int((63.5 - 12.2) * PX_PER_VOXEL) + 4, 219 - 1)) <= set(on_row[:, 1])  # the segment
    assert len(_coloured(picture[:, 240:], MIDLINE_COLOURS["shift"]))  # the second panel marks it too

    drawn_texts.clear()
    _picture(
        tmp_path / "b.png",
        labels,
        np.eye(4),
        {"midline_plane": plane},
        {"midline_shift_mm": 0.6, "midline_shift_towards": None},
    )
    assert drawn_texts.count("midline shift 0.6 mm") == 2  # under the direction threshold: the length alone
    drawn_texts.clear()
    _picture(tmp_path / "c.png", labels, np.eye(4), {"midline_plane": plane}, {"midline_shift_mm": None})
    assert drawn_texts.count("midline shift 7.2 mm") == 2  # no length in the study: the point's distance


def test_the_shift_is_marked_on_the_panel_of_the_slice_nearest_to_it(tmp_path, drawn_texts):
    """Two lesions on slices 20 and 30: a shift point on slice 28 is marked on the second lesion's panel only;
    the plane is drawn on both."""
    labels = _phantom(second_centre=(40, 30, 30))
    plane = {"normal_ras": [1.0, 0.0, 0.0], "point_ras_mm": [5.0, 0.0, 0.0], "shift_point_ras_mm": [12.0, 30.0, 28.0]}
    picture = _picture(tmp_path / "a.png", labels, np.eye(4), {"midline_plane": plane}, {"midline_shift_mm": 7.0})
    assert drawn_texts.count("midline shift 7.0 mm") == 1
    assert not len(_coloured(picture[:, :240], MIDLINE_COLOURS["shift"]))
    assert len(_coloured(picture[:, 240:], MIDLINE_COLOURS["shift"]))
    assert len(_line_pixels(picture, 0)) > 100 and len(_line_pixels(picture, 1)) > 100


@pytest.mark.parametrize("anatomy", [..., None, {"kind": "parcellation"}, {"midline_plane": None}], ids=repr)
def test_without_a_midline_plane_the_picture_is_unchanged(tmp_path, anatomy, drawn_texts):
    """No document, no anatomical reference, a document older than the midline, a plane not measured: the
    picture is the one drawn without a document, pixel for pixel, with nothing of the midline's colours."""
    labels = _phantom()
    plain = _picture(tmp_path / "plain.png", labels, np.eye(4))
    picture = _picture(tmp_path / "a.png", labels, np.eye(4), anatomy, {"midline_shift_mm": None})
    assert np.array_equal(picture, plain)
    assert not any(len(_coloured(picture, colour)) for colour in MIDLINE_COLOURS.values())
    assert not any("midline" in text for text in drawn_texts)
