"""The study picture: for each lesion (largest first) the axial slice of its RANO-BM longest diameter with the
calipers drawn (:mod:`brainmets.figures.lesion_panel`), under a title and a legend naming every colour, drawn with
Pillow (quick to import: one per study). When the features document records the ideal midline plane (a subject
parcellation was the anatomical reference), the picture draws its intersection with each slice as a thin dashed
line, and marks the point displaced the most with the shift (a segment from it to the plane) and its length.
"""

from __future__ import annotations

import functools
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from brainmets.figures.lesion_panel import (
    COLOURS,
    MIN_FIELD_OF_VIEW_MM,
    PANEL_PX,
    PIXELS_PER_MM,
    PanelView,
    calipers_of,
    canonical,
    canonical_affine,
    cell_number,
    draw_panel,
    font,
    panel_view,
)
from brainmets.schemes import LabelScheme, Role

MAX_PANELS = 12
#: The ideal midline plane (dashed) and the midline shift (segment, point and label) in the study picture.
MIDLINE_COLOURS = {"plane": "#00e676", "shift": "#ff40ff"}
MIDLINE_DASH_PX = (6, 4)  # drawn, skipped
CAPTION_PX = 36  # two caption lines under each panel
COLUMNS = 4


@dataclass(frozen=True)
class Midline:
    """The ideal midline plane as the features document records it: unit ``normal`` (world RAS, to the
    subject's right), a ``point`` on it, the ``shift_point`` displaced the most (or None) and the shift's
    ``label`` (None without a shift point)."""

    normal: np.ndarray
    point: np.ndarray
    shift_point: np.ndarray | None
    label: str | None

    @property
    def foot(self) -> np.ndarray | None:
        """Where the perpendicular from the shift point meets the plane."""
        if self.shift_point is None:
            return None
        return self.shift_point - self.normal * float((self.shift_point - self.point) @ self.normal)


def _vector(value: Any) -> np.ndarray | None:
    try:
        vector = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None
    return vector if vector.shape == (3,) and np.all(np.isfinite(vector)) else None


def midline_of(document: dict[str, Any] | None) -> Midline | None:
    """The midline plane of a features document; None when it records none (no document, no anatomical
    reference, a document older than the midline, a plane not measured or not readable)."""
    anatomy = ((document or {}).get("provenance") or {}).get("anatomy") or {}
    plane = anatomy.get("midline_plane") if isinstance(anatomy, dict) else None
    if not isinstance(plane, dict):
        return None
    normal, point = _vector(plane.get("normal_ras")), _vector(plane.get("point_ras_mm"))
    if normal is None or point is None or np.linalg.norm(normal) < 1e-9:
        return None
    normal = normal / np.linalg.norm(normal)
    shift_point = _vector(plane.get("shift_point_ras_mm"))
    label = None
    if shift_point is not None:
        study = document.get("study") or {}
        label = shift_label(study, abs(float((shift_point - point) @ normal)))
    return Midline(normal, point, shift_point, label)


def shift_label(study: dict[str, Any], distance_mm: float) -> str:
    """The shift's label, like ``midline shift 7.2 mm -> right``, from the study fields (the plane's distance
    to the shift point when the study has no length); the length alone when the shift has no direction (under
    the threshold)."""
    length = cell_number(study.get("midline_shift_mm"))
    towards = study.get("midline_shift_towards")
    text = f"midline shift {distance_mm if length is None else length:.1f} mm"
    return text + (f" -> {towards}" if towards in ("left", "right") else "")  # the default font has no arrow


def _shift_panels(views: list[PanelView], where: np.ndarray) -> set[int]:
    """The panels that mark the shift point (``where``, closest-RAS voxel coordinates): every panel when they
    all show one slice, else those showing the slice nearest to it whose window holds it (the first of them
    when none does)."""
    slices = [view.k for view in views]
    if len(set(slices)) == 1:
        return set(range(len(slices)))
    nearest = min(abs(k - where[2]) for k in slices)
    closest = [n for n, k in enumerate(slices) if abs(k - where[2]) == nearest]
    inside = [n for n in closest if np.all(where[:2] >= views[n].lo - 0.5) and np.all(where[:2] <= views[n].hi - 0.5)]
    return set(inside or closest[:1])


@dataclass(frozen=True)
class PlacedPanel:
    """A panel as placed on the sheet: the lesion it shows (None: the study's overview without a lesion), its
    view, and the sheet pixel of its picture's top-left corner."""

    lesion_id: int | None
    view: PanelView
    left: int
    top: int

    def to_sheet(self, world) -> np.ndarray:
        """Sheet pixel coordinates of a world point (mm), projected onto the panel's slice."""
        return self.view.to_picture(world) + [self.left, self.top]


def lesion_view(lesion: dict[str, Any], shape: tuple[int, ...], world_of: np.ndarray) -> PanelView:
    """A lesion's panel: the axial slice of its RANO-BM longest diameter (its centroid's slice when it has none),
    centred on it, wide enough to show it whole with some brain around."""
    centre = [lesion[f"centroid_{c}_mm"] for c in "xyz"]
    if lesion.get("axial_plane_z_mm") is not None:
        centre[2] = lesion["axial_plane_z_mm"]
    field = max(3 * (lesion.get("max_diameter_3d_mm") or 0.0) + 20, MIN_FIELD_OF_VIEW_MM)
    return panel_view(shape, world_of, centre, field, ppm=max(PANEL_PX / field, PIXELS_PER_MM))


def caption(lesion: dict[str, Any]) -> tuple[str, str]:
    """A panel's two caption lines: the lesion and its RANO-BM axial diameters (the ones drawn), then its 3D
    maximum diameter and volume (not drawn: they are not in one slice)."""
    first = f"lesion {lesion['lesion_id']}: RANO-BM axial {lesion['axial_longest_diameter_mm']:.1f} x "
    first += f"{lesion['axial_perpendicular_diameter_mm']:.1f} mm"
    return first, f"3D maximum diameter {lesion['max_diameter_3d_mm']:.1f} mm, {lesion['volume_ml']:.2f} mL"


def study_figure(
    path: str | Path,
    labels: np.ndarray,
    affine: np.ndarray,
    scheme: LabelScheme,
    lesions: list[dict[str, Any]],
    instances: np.ndarray,
    image: np.ndarray | None = None,
    title: str = "",
    document: dict[str, Any] | None = None,
    max_panels: int = MAX_PANELS,
) -> list[PlacedPanel]:
    """The study picture: a panel for each of the first ``max_panels`` lesions (the table's order: largest
    first), then a tile saying how many more; one overview panel saying so when there is no lesion. On
    ``image`` (same grid) when given, else on the label map. When the features ``document`` records the ideal
    midline plane, its intersection with each slice is a thin dashed green line, and the point displaced the
    most is marked (with the segment to the plane and the shift's length) on the panel of the slice nearest to
    it (on every panel when they all show one slice). Returns the panels as placed, for who reads the picture
    back (tests, the viewer)."""
    from PIL import Image, ImageDraw

    shown = lesions[:max_panels]
    views, pictures = _panels(labels, affine, scheme, shown, instances, image, document)
    more = len(lesions) - len(shown)
    cell = (max(p.width for p in pictures), max(p.height for p in pictures) + CAPTION_PX)
    columns = min(len(pictures) + (more > 0), COLUMNS)
    rows = math.ceil((len(pictures) + (more > 0)) / columns)
    width = max(columns * cell[0], 760)
    entries = legend_entries(scheme, midline_of(document))
    legend_rows = _legend_rows(entries, width)
    header = 30 + 20 * len(legend_rows)
    sheet = Image.new("RGB", (width, header + rows * cell[1]), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((8, 6), title, fill="black", font=font(15))
    _draw_legend(draw, legend_rows, top=30)
    placed = []
    for n, (view, picture) in enumerate(zip(views, pictures)):
        left = (n % columns) * cell[0] + (cell[0] - picture.width) // 2
        top = header + (n // columns) * cell[1] + (cell[1] - CAPTION_PX - picture.height) // 2
        sheet.paste(picture, (left, top))
        lines = (
            caption(shown[n]) if shown else ("no lesion in this study", "the axial slice through the image's middle")
        )
        for line, text in enumerate(lines):
            draw.text(((n % columns) * cell[0] + 6, top + picture.height + 3 + 16 * line), text, fill="black",
                      font=font(13 if line == 0 else 12))  # fmt: skip
        placed.append(PlacedPanel(shown[n]["lesion_id"] if shown else None, view, left, top))
    if more:
        n = len(pictures)
        x, y = (n % columns) * cell[0] + 20, header + (n // columns) * cell[1] + cell[1] // 2 - 30
        draw.text((x, y), f"+{more} more", fill="black", font=font(28))
        draw.text((x, y + 36), f"smaller lesion{'s' * (more > 1)}: every lesion is in the lesion table", fill="#444444",
                  font=font(12))  # fmt: skip
    sheet.save(path, format="PNG")  # optimize=True: 0.13 s more per study for a file 6 % smaller
    return placed


def _panels(labels, affine, scheme, shown, instances, image, document) -> tuple[list[PanelView], list]:
    """The views and pictures of the ``shown`` lesions' panels (one overview panel when there is none)."""
    background = canonical(image if image is not None else labels, affine)  # as float per panel, not whole
    canon, ids = canonical(labels, affine), canonical(instances, affine)
    world_of = canonical_affine(affine, labels.shape)
    if shown:
        views = [lesion_view(lesion, canon.shape, world_of) for lesion in shown]
    else:
        middle = world_of @ np.append((np.array(canon.shape[:3]) - 1) / 2, 1.0)
        views = [panel_view(canon.shape, world_of, middle[:3], None)]
    midline = midline_of(document)
    marked = set()
    if midline is not None and midline.shift_point is not None:
        marked = _shift_panels(views, views[0].voxel(midline.shift_point))
    pictures = []
    for n, view in enumerate(views):
        lesion = shown[n] if shown else None
        underlay = overlay = None
        if midline is not None:
            underlay = functools.partial(_draw_midline, midline=midline)
            overlay = functools.partial(_draw_shift, midline=midline) if n in marked else None
        picture = draw_panel(background, canon, scheme, ids, view, image is not None,
                             calipers_of(lesion) if lesion else [], lesion["lesion_id"] if lesion else None,
                             underlay, overlay)  # fmt: skip
        if lesion is None:
            _say_no_lesion(picture, image is not None)
        pictures.append(picture)
    return views, pictures


def lesion_panel_pngs(
    labels: np.ndarray,
    affine: np.ndarray,
    scheme: LabelScheme,
    lesions: list[dict[str, Any]],
    instances: np.ndarray,
    image: np.ndarray | None = None,
    document: dict[str, Any] | None = None,
) -> dict[int, bytes]:
    """Each lesion's panel of the study picture with its caption, as PNG bytes by lesion id (for the viewer's
    lesion card: the measurement as the figure draws it)."""
    from PIL import Image, ImageDraw

    out = {}
    for lesion, picture in zip(lesions, _panels(labels, affine, scheme, lesions, instances, image, document)[1]):
        card = Image.new("RGB", (picture.width, picture.height + CAPTION_PX), "white")
        card.paste(picture, (0, 0))
        draw = ImageDraw.Draw(card)
        for line, text in enumerate(caption(lesion)):
            draw.text((6, picture.height + 3 + 16 * line), text, fill="black", font=font(13 if line == 0 else 12))
        buffer = io.BytesIO()
        card.save(buffer, format="PNG")
        out[int(lesion["lesion_id"])] = buffer.getvalue()
    return out


def _say_no_lesion(picture, has_image: bool) -> None:
    """The overview panel of a study without lesions says so across its middle."""
    from PIL import ImageDraw

    draw = ImageDraw.Draw(picture)
    text = "no lesion found" + ("" if has_image else " (no image given)")
    width = draw.textlength(text, font=font(24))
    draw.text(((picture.width - width) / 2, picture.height / 2 - 12), text, fill="white", font=font(24),
              stroke_width=2, stroke_fill="black")  # fmt: skip


def legend_entries(scheme: LabelScheme, midline: Midline | None) -> list[tuple[str, str, str]]:
    """The legend: (how it is drawn: line, fill or dash; colour; what it means) for what the picture can show."""
    entries = []
    if scheme.has(Role.EDEMA):
        entries.append(("line", COLOURS["whole"], "whole tumour outline (core + edema)"))
    entries.append(("line", COLOURS["core"], "tumour core outline"))
    if scheme.has(Role.ENHANCING):
        entries.append(("fill", COLOURS["enhancing"], "enhancing tumour"))
    entries += [
        ("line", COLOURS["longest"], "RANO-BM longest axial diameter"),
        ("line", COLOURS["perpendicular"], "perpendicular diameter"),
    ]
    if midline is not None:
        entries.append(("dash", MIDLINE_COLOURS["plane"], "ideal midline"))
        if midline.shift_point is not None:
            entries.append(("line", MIDLINE_COLOURS["shift"], "midline shift"))
    entries.append(("text", "black", "numbers: lesion ids of the lesion table; patient's right on the left"))
    return entries


def _legend_rows(entries, width: int) -> list[list[tuple[str, str, str]]]:
    rows, used = [[]], 8
    for entry in entries:
        needed = 34 + font(12).getlength(entry[2]) + 16
        if rows[-1] and used + needed > width:
            rows.append([])
            used = 8
        rows[-1].append(entry)
        used += needed
    return rows


def _draw_legend(draw, rows, top: int) -> None:
    for n, row in enumerate(rows):
        x, y = 8, top + 20 * n
        for kind, colour, text in row:
            if kind == "fill":
                draw.rectangle([x, y + 3, x + 24, y + 13], fill=colour)
            elif kind == "dash":
                for start in range(0, 24, sum(MIDLINE_DASH_PX)):
                    draw.line([(x + start, y + 8), (x + start + MIDLINE_DASH_PX[0] - 1, y + 8)], fill=colour, width=2)
            elif kind == "line":
                draw.line([(x, y + 8), (x + 24, y + 8)], fill=colour, width=3)
            x += 0 if kind == "text" else 30
            draw.text((x, y + 1), text, fill="#222222", font=font(12))
            x += int(font(12).getlength(text)) + 20


def midline_segment(midline: Midline, view: PanelView) -> tuple[np.ndarray, np.ndarray] | None:
    """The ideal midline plane's intersection with the view's slice in picture pixel coordinates, clipped to the
    picture; None when the plane misses the picture or is parallel to the slice. The plane n . (w - p) = 0 with
    w = A (x, y, k) + t (the closest-RAS voxel-to-world affine) is the line a x + b y + c = 0 in the slice,
    which ``view.pixels`` takes to the picture."""
    world_of, size = view.world_of, view.size
    a, b = midline.normal @ world_of[:3, 0], midline.normal @ world_of[:3, 1]
    c = midline.normal @ (world_of[:3, 2] * view.k + world_of[:3, 3] - midline.point)
    if math.hypot(a, b) < 1e-9:
        return None
    # a point of the line and its direction, in voxels, then in pixels (``pixels`` is affine)
    through = -c * np.array([a, b]) / (a * a + b * b)
    start = view.pixels @ np.array([*through, 1.0])
    direction = view.pixels[:, :2] @ np.array([-b, a])
    low, high = -np.inf, np.inf  # clip start + t direction to [0, width] x [0, height] (Liang-Barsky)
    for axis, limit in ((0, size[0]), (1, size[1])):
        if abs(direction[axis]) < 1e-12:
            if not 0 <= start[axis] <= limit:
                return None
            continue
        t0, t1 = sorted(((0 - start[axis]) / direction[axis], (limit - start[axis]) / direction[axis]))
        low, high = max(low, t0), min(high, t1)
    if not low < high:
        return None
    return start + low * direction, start + high * direction


def _pixel(point: np.ndarray, size) -> tuple[int, int]:
    """The pixel holding a point of the picture (Pillow truncates coordinates; this rounds down, kept inside)."""
    return int(np.clip(math.floor(point[0]), 0, size[0] - 1)), int(np.clip(math.floor(point[1]), 0, size[1] - 1))


def _draw_midline(draw, view: PanelView, midline: Midline) -> None:
    """The ideal midline plane's intersection with the slice: a thin dashed line, tagged "midline" at its top."""
    segment = midline_segment(midline, view)
    if segment is None:
        return
    size = view.size
    start, end = sorted(segment, key=lambda p: p[1])
    length = float(np.linalg.norm(end - start))
    step = (end - start) / max(length, 1e-9)
    on, off = MIDLINE_DASH_PX
    position = 0.0
    while position < length:
        stop = min(position + on - 1, length)
        draw.line([_pixel(start + position * step, size), _pixel(start + stop * step, size)],
                  fill=MIDLINE_COLOURS["plane"], width=1)  # fmt: skip
        position += on + off
    x, y = _pixel(start, size)
    width = draw.textlength("midline", font=font(11))
    left = x + 3 if x + 3 + width <= size[0] - 2 else max(x - 3 - width, 2)  # beside the line's top, inside
    draw.text(
        (left, y + 18), "midline", fill=MIDLINE_COLOURS["plane"], font=font(11), stroke_width=2, stroke_fill="black"
    )


def _draw_shift(draw, view: PanelView, midline: Midline) -> None:
    """The point displaced the most (a ring), the segment from it to the plane (the shift) and its label."""
    point, foot = view.to_picture(midline.shift_point), view.to_picture(midline.foot)
    colour, size = MIDLINE_COLOURS["shift"], view.size
    x, y = math.floor(point[0]), math.floor(point[1])  # off the picture when the window does not hold it
    draw.line([(x, y), (math.floor(foot[0]), math.floor(foot[1]))], fill=colour, width=2)
    draw.ellipse([x - 3, y - 3, x + 3, y + 3], outline=colour, width=1)
    # the label above the foot of the picture (the scale bar is at the right, the lesion in the middle)
    face = next(
        (f for f in map(font, (12, 11, 10)) if draw.textlength(midline.label, font=f) <= size[0] - 36), font(10)
    )
    left = max((size[0] - draw.textlength(midline.label, font=face)) / 2, 2)
    draw.text((left, size[1] - 34), midline.label, fill=colour, font=face, stroke_width=2, stroke_fill="black")
