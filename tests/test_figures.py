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


def _picture(path, labels, affine, anatomy=..., study=None, **options):
    """The study picture of ``labels`` and its panels as placed; given ``anatomy``, with the features document,
    its ``provenance.anatomy`` replaced by ``anatomy`` and ``study`` fields added."""
    params = FeatureParameters.from_config({"label_scheme": "brats-mets-2023", "min_lesion_volume_mm3": 0})
    result = measure_label_map(LabelMap(labels=labels, affine=affine, source="phantom"), params)
    document = None
    if anatomy is not ...:
        document = copy.deepcopy(result.document)
        document["study"].update(study or {})
        document["provenance"]["anatomy"] = anatomy
    placed = study_figure(path, labels, affine, params.scheme, result.lesions, result.instances, title="phantom",
                          document=document, **options)  # fmt: skip
    return np.asarray(Image.open(path).convert("RGB")), placed


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
    picture = _picture(tmp_path / "a.png", labels, affine)[0]
    assert all(_has(picture, COLOURS[role]) for role in ("core", "whole"))
    red_fill = 0.45 * 0.45 + 0.55 * np.array([1.0, 0.23, 0.19])  # over the label map's grey (0.45)
    assert _has(picture, "#" + "".join(f"{int(c * 255):02x}" for c in red_fill))

    stored = np.flip(labels, axis=0).transpose(0, 2, 1)  # voxel (i, k, j) of the new array
    moved = np.zeros((4, 4))
    moved[0, 0], moved[0, 3] = -1.0, shape[0] - 1  # i' = 63 - i
    moved[1, 2] = moved[2, 1] = 1.0  # y from the third index, z from the second
    moved[3, 3] = 1.0
    assert np.array_equal(_picture(tmp_path / "b.png", np.ascontiguousarray(stored), moved)[0], picture)


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


def _in_panel(pixels: np.ndarray, panel, skip_top: int = 0) -> np.ndarray:
    """The pixels (sheet row, column) inside a panel's picture, in its own coordinates, below ``skip_top`` rows."""
    width, height = panel.view.size
    local = pixels - [panel.top, panel.left]
    inside = (local[:, 0] >= skip_top) & (local[:, 0] < height) & (local[:, 1] >= 0) & (local[:, 1] < width)
    return local[inside]


def _line_pixels(picture, panel) -> np.ndarray:
    """The dashed line's pixels in a panel's picture (its own coordinates), below the "midline" tag near its top."""
    return _in_panel(_coloured(picture, MIDLINE_COLOURS["plane"]), panel, skip_top=36)


def _flipped(labels, affine):
    """The same map stored with its first axis reversed and its last two swapped, the affine saying so."""
    stored = np.ascontiguousarray(np.flip(labels, axis=0).transpose(0, 2, 1))  # voxel (63 - i, k, j)
    move = np.zeros((4, 4))
    move[0, 0], move[0, 3] = -1.0, labels.shape[0] - 1
    move[1, 2] = move[2, 1] = move[3, 3] = 1.0
    return stored, affine @ move


def test_the_midline_plane_is_a_dashed_line_where_it_cuts_the_slice_whatever_the_storage_order(tmp_path):
    """The plane x = 5 mm (normal to the subject's right) on a 1 mm grid: in the radiological picture the
    patient's right is on the left, so the line is the pixel column where the panel puts x = 5 mm, dashed, from
    the top to the bottom of the first panel. The second lesion's panel shows x from 7 mm: no line there. The
    same map stored flipped and transposed gives the same picture."""
    labels = _phantom()
    plane = {"normal_ras": [1.0, 0.0, 0.0], "point_ras_mm": [5.0, -20.0, 3.0], "shift_point_ras_mm": None}
    picture, placed = _picture(tmp_path / "a.png", labels, np.eye(4), {"midline_plane": plane})
    first = placed[0]
    expected = first.view.to_picture([5.0, 30.0, 20.0])[0]
    line = _line_pixels(picture, first)
    assert len(line) > 100 and np.all(np.abs(line[:, 1] - expected) <= 1)
    height = first.view.size[1]
    assert 0.5 < len(set(line[:, 0])) / (height - 36) < 0.75  # dashed: 6 px drawn, 4 skipped
    assert not len(_line_pixels(picture, placed[1]))  # outside the second panel's window
    assert not len(_coloured(picture, MIDLINE_COLOURS["shift"]))  # no shift point: no shift drawn

    stored, moved = _flipped(labels, np.eye(4))
    assert np.array_equal(_picture(tmp_path / "b.png", stored, moved, {"midline_plane": plane})[0], picture)


def test_the_midline_plane_is_projected_through_an_oblique_affine(tmp_path):
    """A grid turned 20 degrees about the vertical and tilted 10 degrees about the anterior axis (still closest
    to RAS), the lesion at the world origin: every pixel of the dashed line maps back (through the panel's
    pixel mapping and the affine, on the panel's slice) to a world point on the plane x = 5 mm, within 2 px;
    the line runs across the panel, not along a voxel column. Stored flipped, the same picture."""
    turn, tilt = np.deg2rad(20), np.deg2rad(10)
    about_z = np.array([[np.cos(turn), -np.sin(turn), 0], [np.sin(turn), np.cos(turn), 0], [0, 0, 1]])
    about_y = np.array([[np.cos(tilt), 0, np.sin(tilt)], [0, 1, 0], [-np.sin(tilt), 0, np.cos(tilt)]])
    affine = np.eye(4)
    affine[:3, :3] = about_y @ about_z
    affine[:3, 3] = -affine[:3, :3] @ [30, 30, 20]
    labels = _phantom()
    plane = {"normal_ras": [1.0, 0.0, 0.0], "point_ras_mm": [5.0, 0.0, 0.0], "shift_point_ras_mm": None}
    picture, placed = _picture(tmp_path / "a.png", labels, affine, {"midline_plane": plane})
    view = placed[0].view
    line = _line_pixels(picture, placed[0])
    assert len(line) > 100
    centres = np.stack([line[:, 1] + 0.5, line[:, 0] + 0.5])  # picture (x, y) of each pixel's centre
    voxel = np.linalg.solve(view.pixels[:, :2], centres - view.pixels[:, 2:])
    world = view.world_of[:3, :3] @ np.vstack([voxel, np.full(voxel.shape[1], view.k)]) + view.world_of[:3, 3:]
    assert np.all(np.abs(world[0] - 5.0) <= 2 * view.pixel_mm)
    assert np.ptp(line[:, 1]) > 40  # oblique in the picture

    stored, moved = _flipped(labels, affine)
    assert np.array_equal(_picture(tmp_path / "b.png", stored, moved, {"midline_plane": plane})[0], picture)


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
    the point to the plane, and the label with the study's length and direction."""
    labels = _phantom()
    plane = {"normal_ras": [1.0, 0.0, 0.0], "point_ras_mm": [5.0, 0.0, 0.0], "shift_point_ras_mm": [12.2, 40.0, 20.0]}
    study = {"midline_shift_mm": 7.2, "midline_shift_towards": "right"}
    picture, placed = _picture(tmp_path / "a.png", labels, np.eye(4), {"midline_plane": plane}, study)
    assert drawn_texts.count("midline shift 7.2 mm -> right") == 2
    assert drawn_texts.count("midline") == 1  # the line's tag, on the one panel it crosses
    shift = _in_panel(_coloured(picture, MIDLINE_COLOURS["shift"]), placed[0])
    point, foot = placed[0].view.to_picture([12.2, 40.0, 20.0]), placed[0].view.to_picture([5.0, 40.0, 20.0])
    on_row = shift[np.abs(shift[:, 0] - int(point[1])) <= 1]
    assert set(range(int(point[0]) + 4, int(foot[0]) - 1)) <= set(on_row[:, 1])  # the segment
    assert len(_in_panel(_coloured(picture, MIDLINE_COLOURS["shift"]), placed[1]))  # the second panel marks it too

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
    labels = _phantom(second_centre=(20, 45, 30))
    plane = {"normal_ras": [1.0, 0.0, 0.0], "point_ras_mm": [5.0, 0.0, 0.0], "shift_point_ras_mm": [12.0, 30.0, 28.0]}
    picture, placed = _picture(
        tmp_path / "a.png", labels, np.eye(4), {"midline_plane": plane}, {"midline_shift_mm": 7.0}
    )
    assert drawn_texts.count("midline shift 7.0 mm") == 1
    shift = _coloured(picture, MIDLINE_COLOURS["shift"])
    assert not len(_in_panel(shift, placed[0])) and len(_in_panel(shift, placed[1]))
    assert len(_line_pixels(picture, placed[0])) > 100 and len(_line_pixels(picture, placed[1])) > 100


@pytest.mark.parametrize("anatomy", [..., None, {"kind": "parcellation"}, {"midline_plane": None}], ids=repr)
def test_without_a_midline_plane_the_picture_is_unchanged(tmp_path, anatomy, drawn_texts):
    """No document, no anatomical reference, a document older than the midline, a plane not measured: the
    picture is the one drawn without a document, pixel for pixel, with nothing of the midline's colours."""
    labels = _phantom()
    plain = _picture(tmp_path / "plain.png", labels, np.eye(4))[0]
    picture = _picture(tmp_path / "a.png", labels, np.eye(4), anatomy, {"midline_shift_mm": None})[0]
    assert np.array_equal(picture, plain)
    assert not any(len(_coloured(picture, colour)) for colour in MIDLINE_COLOURS.values())
    assert not any("midline" in text for text in drawn_texts)


# ---- the calipers, legend, scale and orientation ------------------------------------------------------------


def _oval_lesions(shape=(70, 64, 24), spacing=(0.8, 0.8, 2.0)):
    """Two turned ellipsoidal lesions with edema on an anisotropic grid (world = voxel x spacing): their longest
    diameters are oblique in the picture and have one answer (no ties)."""
    world = np.indices(shape, dtype=float).transpose(1, 2, 3, 0) * spacing
    labels = np.zeros(shape, np.uint8)
    for centre, axes, turn in (((26, 26, 24), (11, 5, 6), 25), ((44, 36, 20), (5, 3, 4), -50)):
        d = world - centre
        a = np.deg2rad(turn)
        u, v = d[..., 0] * np.cos(a) + d[..., 1] * np.sin(a), -d[..., 0] * np.sin(a) + d[..., 1] * np.cos(a)
        r = (u / axes[0]) ** 2 + (v / axes[1]) ** 2 + (d[..., 2] / axes[2]) ** 2
        labels[(r <= 2.2) & (labels == 0)] = 2
        labels[r <= 1] = 3
    return labels, np.diag([*spacing, 1.0])


def test_the_calipers_are_drawn_between_points_of_the_lesion_outline(tmp_path, drawn_texts):
    """Each lesion's panel draws its longest diameter (orange) and the perpendicular (violet) from the lesion
    table's ends: both ends of each sit on the core's outline (yellow pixels within 3 px: the tick across an end
    covers the outline under it), the segment between
    them is drawn in its colour, and its length is written as the table has it."""
    labels, affine = _oval_lesions()
    picture, placed = _picture(tmp_path / "a.png", labels, affine)
    params = FeatureParameters.from_config({"label_scheme": "brats-mets-2023", "min_lesion_volume_mm3": 0})
    lesions = measure_label_map(LabelMap(labels=labels, affine=affine, source="phantom"), params).lesions
    assert [p.lesion_id for p in placed] == [r["lesion_id"] for r in lesions] == [1, 2]
    outline = _coloured(picture, COLOURS["core"])
    for panel, lesion in zip(placed, lesions):
        z = lesion["axial_plane_z_mm"]
        assert panel.view.world_of[2, 3] + panel.view.k * panel.view.world_of[2, 2] == pytest.approx(z, abs=1e-6)
        for name in ("longest", "perpendicular"):
            ends = [[lesion[f"axial_{name}_x{e}_mm"], lesion[f"axial_{name}_y{e}_mm"], z] for e in (1, 2)]
            assert np.linalg.norm(np.subtract(*ends)) == pytest.approx(lesion[f"axial_{name}_diameter_mm"], rel=1e-6)
            drawn = _coloured(picture, COLOURS[name])
            for end in ends:
                column, row = panel.to_sheet(end)
                assert np.min(np.hypot(*(outline - [row, column]).T)) <= 3.0, (lesion["lesion_id"], name)
            middle = panel.to_sheet(np.mean(ends, axis=0))
            assert np.min(np.hypot(*(drawn - middle[::-1]).T)) <= 1.5
            assert f"{lesion[f'axial_{name}_diameter_mm']:.1f} mm" in drawn_texts
        assert f"lesion {lesion['lesion_id']}: RANO-BM axial {lesion['axial_longest_diameter_mm']:.1f} x " in " ".join(
            drawn_texts
        )


def test_calipers_legend_and_scale_are_the_same_pixels_whatever_the_storage_order(tmp_path):
    """The anisotropic ovals stored with x reversed and the axes permuted give the same picture, pixel for pixel."""
    labels, affine = _oval_lesions()
    picture = _picture(tmp_path / "a.png", labels, affine)[0]
    stored = np.ascontiguousarray(np.flip(labels, axis=0).transpose(2, 0, 1))  # (z, 69 - x, y)
    move = np.zeros((4, 4))
    move[0, 1], move[0, 3] = -1.0, labels.shape[0] - 1
    move[1, 2] = move[2, 0] = move[3, 3] = 1.0
    assert np.array_equal(_picture(tmp_path / "b.png", stored, affine @ move)[0], picture)


def test_every_panel_reads_like_a_measurement(tmp_path, drawn_texts):
    """At least 4 pixels per mm; the orientation letters, a 10 mm scale bar (white, 3 px thick, as long as 10 mm
    at the panel's scale) and the slice's position on each panel; a legend naming each colour drawn (no edema
    line for a scheme without edema)."""
    labels, affine = _oval_lesions()
    picture, placed = _picture(tmp_path / "a.png", labels, affine)
    for text in ("whole tumour outline (core + edema)", "tumour core outline", "enhancing tumour",
                 "RANO-BM longest axial diameter", "perpendicular diameter"):  # fmt: skip
        assert text in drawn_texts
    for panel in placed:
        assert panel.view.pixel_mm <= 0.25 + 1e-9
        width, height = panel.view.size
        bar = 10 / panel.view.pixel_mm
        row = picture[panel.top + height - 12, panel.left + width - 14 - int(bar) : panel.left + width - 6]
        assert abs(np.all(row == 255, axis=-1).sum() - bar) <= 2
    assert drawn_texts.count("10 mm") == len(placed)
    assert all(drawn_texts.count(letter) == len(placed) for letter in "RLAP")
    assert sum(text.startswith("axial, z ") and text.endswith(" mm") for text in drawn_texts) == len(placed)

    drawn_texts.clear()
    binary = (labels == 3).astype(np.uint8)
    params = FeatureParameters.from_config({"label_scheme": "binary", "min_lesion_volume_mm3": 0})
    result = measure_label_map(LabelMap(labels=binary, affine=affine, source="phantom"), params)
    study_figure(tmp_path / "b.png", binary, affine, params.scheme, result.lesions, result.instances)
    assert "tumour core outline" in drawn_texts and "whole tumour outline (core + edema)" not in drawn_texts


def test_a_study_without_lesions_says_so_on_its_image(tmp_path, drawn_texts):
    """No lesion: one panel of the whole middle slice, on the image when given (anatomy, not a black square),
    saying so."""
    labels = np.zeros((40, 44, 30), np.uint8)
    image = np.indices(labels.shape).sum(axis=0).astype(np.float32)  # a ramp
    params = FeatureParameters.from_config({"label_scheme": "brats-mets-2023"})
    result = measure_label_map(LabelMap(labels=labels, affine=np.eye(4), source="phantom"), params)
    placed = study_figure(tmp_path / "a.png", labels, np.eye(4), params.scheme, [], result.instances, image)
    assert len(placed) == 1 and placed[0].lesion_id is None and placed[0].view.k == 14
    assert placed[0].view.size == (160, 176)  # the whole 40 x 44 mm slice at 4 px per mm
    assert "no lesion found" in drawn_texts and "no lesion in this study" in drawn_texts
    picture = np.asarray(Image.open(tmp_path / "a.png").convert("L"))
    inside = picture[placed[0].top + 30 : placed[0].top + 150, placed[0].left + 20 : placed[0].left + 140]
    assert inside.std() > 20  # the image's ramp, not a flat square


def test_the_picture_draws_the_largest_lesions_and_counts_the_others(tmp_path, drawn_texts):
    """Three lesions, two panels asked for: the two largest are drawn (table order), a tile says "+1 more"."""
    labels = np.zeros((80, 40, 30), np.uint8)
    for centre, radius in (((15, 20, 15), 6), ((40, 20, 15), 4), ((65, 20, 15), 3)):
        labels[ball(labels.shape, centre, radius)] = 3
    picture, placed = _picture(tmp_path / "a.png", labels, np.eye(4), max_panels=2)
    assert [p.lesion_id for p in placed] == [1, 2]
    assert "+1 more" in drawn_texts


@pytest.mark.parametrize("studies", [[], [{"lesion_count": 2, "cumulative_tumor_volume_ml": 1.0}]])
def test_tumour_burden_figure_keeps_its_15_ml_line_inside_without_a_layout_warning(tmp_path, monkeypatch, studies):
    """With no study, or only small volumes, the 15 mL line and its label stay inside the axes (matplotlib used
    to warn "Tight layout not applied": the label lay far above them)."""
    import warnings

    from brainmets.figures import pictures

    drawn, save = [], pictures._save
    monkeypatch.setattr(pictures, "_save", lambda figure, path: (drawn.append(figure), save(figure, path)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pictures.volume_against_count(tmp_path / "burden.png", studies)
    (axis,) = drawn[0].axes
    low, high = axis.get_ylim()
    assert low == 0 and high >= 17 and (tmp_path / "burden.png").stat().st_size > 0
