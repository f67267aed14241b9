"""One panel of the study picture, drawn as a radiologist reads a measurement: the axial slice of a lesion's
RANO-BM longest diameter, its outlines, the calipers (longest diameter and its perpendicular, with their lengths),
every lesion's number as in the lesion table, orientation letters, a scale bar and the slice's position in mm.

Slices are shown in the radiological convention (patient's right on the left of the picture, anterior up) after
turning the arrays to the closest RAS orientation, and resampled to square pixels of a fixed size in mm, so the
picture is the same whatever the storage order of the voxel axes and lengths can be read off it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from brainmets.fields import cell_number
from brainmets.schemes import CORE_ROLES, LabelScheme, Role, role_mask

#: Whole tumour (core + edema) outlined in blue, enhancing tumour filled in red, core outlined in yellow; the
#: RANO-BM calipers: the longest diameter in orange, its perpendicular in violet.
COLOURS = {
    "whole": "#34c6ff",
    "enhancing": "#ff3b30",
    "core": "#ffd400",
    "longest": "#ff9f0a",
    "perpendicular": "#c77dff",
}
ENHANCING_TINT = (np.array([1.0, 0.23, 0.19]), 0.55)  # colour and weight of the enhancing fill
PIXELS_PER_MM = 4.0  # at least
#: A lesion's panel is PANEL_PX wide and shows three times the lesion's size and 20 mm more, at least
#: MIN_FIELD_OF_VIEW_MM; beyond PANEL_PX / PIXELS_PER_MM (a lesion over 20 mm) the panel grows instead.
PANEL_PX = 320
MIN_FIELD_OF_VIEW_MM = 50.0
SCALE_BAR_MM = 10.0


@functools.lru_cache(maxsize=8)
def font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def canonical(array: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """The array turned to the closest RAS orientation (a view: axes swapped and reversed, nothing copied)."""
    import nibabel as nib

    return nib.orientations.apply_orientation(array, nib.orientations.io_orientation(affine))


def canonical_affine(affine: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """World (RAS mm) of the closest-RAS array's voxel indices."""
    import nibabel as nib

    ornt = nib.orientations.io_orientation(affine)
    return affine @ nib.orientations.inv_ornt_aff(ornt, shape[:3])


@dataclass(frozen=True)
class PanelView:
    """What one panel shows: slice ``k`` of the closest-RAS arrays, voxels [lo, hi) in x and y, drawn in a picture
    of ``size`` pixels (width, height); ``pixels`` maps a closest-RAS voxel (x, y, 1) to picture pixel
    coordinates (a voxel's centre to its pixels' centre), ``world_of`` a closest-RAS voxel to world mm."""

    k: int
    lo: np.ndarray
    hi: np.ndarray
    size: tuple[int, int]
    pixels: np.ndarray
    world_of: np.ndarray

    def voxel(self, world) -> np.ndarray:
        """The closest-RAS voxel coordinates of a world point (mm)."""
        return np.linalg.solve(self.world_of[:3, :3], np.asarray(world, float) - self.world_of[:3, 3])

    def to_picture(self, world) -> np.ndarray:
        """Picture pixel coordinates of a world point, projected along the slice axis onto the panel."""
        voxel = self.voxel(world)
        return self.pixels @ np.array([voxel[0], voxel[1], 1.0])

    @property
    def pixel_mm(self) -> float:
        """The picture's pixel size in mm (along x; y differs by the rounding of the picture's size only)."""
        return float(np.linalg.norm(self.world_of[:3, 0]) / abs(self.pixels[0, 0]))


def panel_view(
    shape: tuple[int, ...], world_of: np.ndarray, centre_world, field_mm: float | None, ppm: float = PIXELS_PER_MM
) -> PanelView:
    """The panel around ``centre_world`` (its slice, and ``field_mm`` around it in x and y; the whole slice when
    None), at ``ppm`` pixels per mm."""
    spacing = np.linalg.norm(world_of[:3, :3], axis=0)
    centre = np.linalg.solve(world_of[:3, :3], np.asarray(centre_world, float) - world_of[:3, 3])
    k = int(np.clip(round(centre[2]), 0, shape[2] - 1))
    if field_mm is None:
        lo, hi = np.zeros(2, int), np.array(shape[:2])
    else:
        half = np.maximum((field_mm / 2 / spacing[:2]).astype(int), 1)
        middle = np.clip(np.round(centre[:2]).astype(int), 0, np.array(shape[:2]) - 1)
        lo, hi = np.maximum(middle - half, 0), np.minimum(middle + half + 1, shape[:2])
    counts = hi - lo
    size = tuple(int(max(round(n * s * ppm), 1)) for n, s in zip(counts, spacing[:2]))
    sx, sy = size[0] / counts[0], size[1] / counts[1]
    # screen column <- x reversed (the patient's right on the left), screen row <- y reversed (anterior up)
    pixels = np.array([[-sx, 0.0, (hi[0] - 0.5) * sx], [0.0, -sy, (hi[1] - 0.5) * sy]])
    return PanelView(k, lo, hi, size, pixels, world_of)


@dataclass(frozen=True)
class Caliper:
    """A drawn diameter: its world ends (mm) and its label."""

    ends: np.ndarray  # (2, 3)
    label: str
    colour: str


def caliper_ends(lesion: dict[str, Any], name: str) -> np.ndarray | None:
    """The world ends (RAS mm, shape (2, 3)) of a lesion's ``longest`` or ``perpendicular`` RANO-BM diameter, from
    the lesion table's columns: in the plane z = ``axial_plane_z_mm``; None when a column is missing or not a
    number (a lesion without an axial section, a row older than the columns)."""
    z = cell_number(lesion.get("axial_plane_z_mm"))
    x1, y1, x2, y2 = (cell_number(lesion.get(f"axial_{name}_{c}{end}_mm")) for end in (1, 2) for c in "xy")
    if any(v is None for v in (z, x1, y1, x2, y2)):
        return None
    return np.array([[x1, y1, z], [x2, y2, z]])


def calipers_of(lesion: dict[str, Any]) -> list[Caliper]:
    """The lesion's RANO-BM longest diameter and its perpendicular, as drawn (:func:`caliper_ends`)."""
    out = []
    for name in ("longest", "perpendicular"):
        ends, length = caliper_ends(lesion, name), cell_number(lesion.get(f"axial_{name}_diameter_mm"))
        if ends is not None and length is not None:
            out.append(Caliper(ends, f"{length:.1f} mm", COLOURS[name]))
    return out


def _tinted_slice(background, labels, scheme: LabelScheme, view: PanelView, is_image: bool):
    """The slice's grey background with the enhancing tumour tinted red, as screen-ordered RGB in [0, 1], and the
    core and whole-tumour masks in screen order."""
    window = (slice(view.lo[0], view.hi[0]), slice(view.lo[1], view.hi[1]), view.k)
    values = background[window].astype(np.float32)
    roles = labels[window]
    if is_image:
        low, high = np.percentile(values, [0.5, 99.5]) if values.size else (0.0, 1.0)
        grey = np.clip((values - low) / max(high - low, 1e-6), 0, 1)
    else:
        grey = (values > 0) * 0.45
    core = role_mask(roles, scheme, *CORE_ROLES)
    whole = core | role_mask(roles, scheme, Role.EDEMA)
    rgb = np.repeat(to_screen(grey)[..., None], 3, axis=2)
    tint, weight = ENHANCING_TINT
    enhancing = to_screen(role_mask(roles, scheme, Role.ENHANCING))
    rgb[enhancing] = (1 - weight) * rgb[enhancing] + weight * tint
    return rgb, to_screen(core), to_screen(whole)


def to_screen(array: np.ndarray) -> np.ndarray:
    """Screen (row, column) order of a slice indexed (x, y): anterior up, the patient's right on the left."""
    return np.asarray(array)[::-1, ::-1].T


def _outlined_text(draw, xy, text: str, fill: str, size: int) -> None:
    draw.text(xy, text, fill=fill, font=font(size), stroke_width=2, stroke_fill="black")


def draw_panel(
    background: np.ndarray,
    labels: np.ndarray,
    scheme: LabelScheme,
    ids: np.ndarray,
    view: PanelView,
    is_image: bool,
    calipers: list[Caliper] = (),
    own_id: int | None = None,
    underlay: Callable | None = None,
    overlay: Callable | None = None,
):
    """The panel's picture (Pillow): the slice, the enhancing tumour filled, the whole tumour and core outlined,
    the calipers with their lengths, each lesion's number (``own_id``'s larger), the orientation letters, a scale
    bar and the slice's position. ``underlay(draw, view)`` draws under the outlines, ``overlay`` on top."""
    from PIL import Image, ImageDraw
    from skimage.measure import find_contours

    rgb, core, whole = _tinted_slice(background, labels, scheme, view, is_image)
    picture = Image.fromarray((rgb * 255).astype(np.uint8)).resize(view.size, Image.NEAREST)
    draw = ImageDraw.Draw(picture)
    sx, sy = view.size[0] / rgb.shape[1], view.size[1] / rgb.shape[0]
    if underlay is not None:
        underlay(draw, view)
    for mask, colour in ((whole, COLOURS["whole"]), (core, COLOURS["core"])):
        for contour in find_contours(np.pad(mask.astype(float), 1), 0.5):
            draw.line([((c - 0.5) * sx, (r - 0.5) * sy) for r, c in contour], fill=colour, width=2)
    for n, caliper in enumerate(calipers):
        _draw_caliper(draw, view, caliper, label_end=1 - n % 2)
    _draw_lesion_numbers(draw, to_screen(ids[view.lo[0] : view.hi[0], view.lo[1] : view.hi[1], view.k]), sx, sy,
                         view.size, own_id)  # fmt: skip
    _draw_frame_marks(draw, view)
    if overlay is not None:
        overlay(draw, view)
    return picture


def _draw_caliper(draw, view: PanelView, caliper: Caliper, label_end: int) -> None:
    """A caliper: the segment between its ends, a short tick across each end, and its length just beyond end
    ``label_end`` (0 or 1: the longest diameter's and its perpendicular's on opposite sides), inside the picture."""
    ends = [view.to_picture(end) for end in caliper.ends]
    draw.line([tuple(ends[0]), tuple(ends[1])], fill=caliper.colour, width=2)
    along = (ends[1] - ends[0]) / max(float(np.linalg.norm(ends[1] - ends[0])), 1e-9)
    across = np.array([-along[1], along[0]]) * 5
    for end in ends:
        draw.line([tuple(end - across), tuple(end + across)], fill=caliper.colour, width=2)
    outward = along if label_end == 1 else -along
    width, height = draw.textlength(caliper.label, font=font(12)), 14
    x = ends[label_end][0] + (8 if outward[0] >= 0 else -8 - width)
    y = ends[label_end][1] + (4 if outward[1] >= 0 else -4 - height)
    where = np.clip([x, y], [2, 2], [view.size[0] - width - 2, view.size[1] - height - 2])
    _outlined_text(draw, tuple(where), caliper.label, caliper.colour, 12)


def _draw_lesion_numbers(draw, screen_ids: np.ndarray, sx: float, sy: float, size, own_id: int | None) -> None:
    """Each lesion's number (as in the lesion table) above its part in the window, kept inside the picture."""
    for lesion_id in np.unique(screen_ids[screen_ids > 0]):
        rows, cols = np.nonzero(screen_ids == lesion_id)
        text, face = str(int(lesion_id)), 16 if lesion_id == own_id else 13
        width = draw.textlength(text, font=font(face))
        x = float(np.clip((cols.mean() + 0.5) * sx - width / 2, 2, size[0] - width - 2))
        y = float(np.clip(rows.min() * sy - face - 4, 2, size[1] - face - 4))
        _outlined_text(draw, (x, y), text, "white", face)


def _draw_frame_marks(draw, view: PanelView) -> None:
    """R/L/A/P at the picture's edges (radiological convention), a scale bar at the bottom right and the slice's
    position (world z of the panel's centre, and the slice number) at the top left."""
    width, height = view.size
    for letter, (x, y) in {"R": (4, height / 2 - 7), "L": (width - 12, height / 2 - 7), "A": (width / 2 - 4, 3),
                           "P": (width / 2 - 4, height - 17)}.items():  # fmt: skip
        _outlined_text(draw, (x, y), letter, "white", 13)
    bar = SCALE_BAR_MM / view.pixel_mm
    right, base = width - 10, height - 12
    draw.line([(right - bar, base), (right, base)], fill="white", width=3)
    label = f"{SCALE_BAR_MM:g} mm"
    _outlined_text(draw, (right - bar / 2 - draw.textlength(label, font=font(11)) / 2, base - 16), label, "white", 11)
    middle = (view.lo + view.hi - 1) / 2
    z = float((view.world_of @ np.array([middle[0], middle[1], view.k, 1.0]))[2])
    _outlined_text(draw, (4, 3), f"axial, z {z:.1f} mm", "white", 11)
