"""A self-contained interactive lesion viewer page per study (NiiVue, WebGL2), one HTML file.

The page inlines the NiiVue bundle (package data, built by ``tools/build_niivue_bundle.sh``) and the volumes as
base64 gzipped NIfTI, so it opens from ``file://`` with no network. Volumes keep their storage order and their
affine in the NIfTI header (NiiVue reorients them itself), cropped to the brain / non-zero box with the crop
offset in the affine, so world (RAS mm) coordinates stay right. Labels are never downsampled; only the
intensity image is, by an integer factor, when the page would exceed its byte budget.
"""

from __future__ import annotations

import base64
import functools
import gzip
import html
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import nibabel as nib
import numpy as np

from brainmets.fields import cell_number
from brainmets.figures.lesion_panel import COLOURS, caliper_ends
from brainmets.measurement.geometry import bounding_box, crop_affine
from brainmets.schemes import LabelScheme, Role, role_mask

#: Codes of the embedded overlay volume: (code, role, name, RGB). Tumour core is the undifferentiated core of
#: schemes such as ``binary``.
CLASSES = (
    (1, Role.ENHANCING, "Enhancing tumour", (230, 40, 40)),
    (2, Role.NECROTIC, "Necrotic / non-enhancing core", (250, 200, 20)),
    (3, Role.CORE, "Tumour core", (240, 120, 20)),
    (4, Role.EDEMA, "Edema (SNFH)", (40, 200, 90)),
    (5, Role.CAVITY, "Resection cavity", (70, 130, 250)),
)
#: Colours of the caliper overlay: RANO-BM longest axial diameter and its perpendicular, as the study figure's.
CALIPER_COLOURS = {
    name: tuple(int(COLOURS[name][i : i + 2], 16) for i in (1, 3, 5)) for name in ("longest", "perpendicular")
}
MARGIN_VOXELS = 4
MAX_FACTOR = 8


def overlay_codes(labels: np.ndarray, scheme: LabelScheme) -> np.ndarray:
    """The label map as the page's overlay codes (uint8, :data:`CLASSES`): one colour per role, whatever the
    scheme's own label values are."""
    codes = np.zeros(labels.shape, dtype=np.uint8)
    for code, role, _name, _rgb in CLASSES:
        codes[role_mask(labels, scheme, role)] = code
    return codes


@functools.lru_cache(maxsize=1)
def bundle_js() -> str:
    """The NiiVue bundle shipped (gzipped) as package data (see ``data/viewer/README.md``); read once per process,
    as a batch writes many pages."""
    packed = resources.files("brainmets").joinpath("data/viewer/niivue.min.js.gz").read_bytes()
    return gzip.decompress(packed).decode("utf-8")


def _crop_box(labels: np.ndarray, instances: np.ndarray, image: np.ndarray | None) -> tuple[slice, ...]:
    """The box of the labels, lesions and the head in the image (:func:`head_mask`), widened by a margin; the
    whole grid if empty."""
    mask = (labels != 0) | (instances != 0)
    if image is not None:
        mask |= head_mask(image)
    box = bounding_box(mask)
    if box is None:
        return tuple(slice(0, n) for n in labels.shape)
    return tuple(
        slice(max(s.start - MARGIN_VOXELS, 0), min(s.stop + MARGIN_VOXELS, n)) for s, n in zip(box, labels.shape)
    )


def head_mask(image: np.ndarray) -> np.ndarray:
    """The head in an intensity image: its largest connected part brighter than half Otsu's threshold (of a
    sample of the finite voxels), so that a scanner's noisy background is cropped away as a skull-stripped
    image's zeros are."""
    import cc3d
    from skimage.filters import threshold_otsu

    values = np.asarray(image, dtype=np.float32)
    sample = values[::3, ::3, ::3]
    sample = sample[np.isfinite(sample)]
    if sample.size < 2 or np.ptp(sample) == 0:
        return np.isfinite(values) & (values != 0)
    bright = np.isfinite(values) & (values > 0.5 * threshold_otsu(sample))
    return cc3d.largest_k(bright, k=1, connectivity=6) > 0


def quantise(image: np.ndarray, low: float = 0.5, high: float = 99.5) -> np.ndarray:
    """Intensities as uint8 between robust percentiles of the non-zero voxels (0 stays black where 0 is the
    floor): a quarter of float32's bytes, and what the eye sees of it."""
    values = np.asarray(image, dtype=np.float32)
    finite = np.isfinite(values)
    sample = values[finite & (values != 0)]
    if not sample.size:
        sample = values[finite]
    if not sample.size:
        return np.zeros(values.shape, dtype=np.uint8)
    lo, hi = (float(v) for v in np.percentile(sample, [low, high]))
    if hi <= lo:
        hi = lo + 1.0
    scaled = np.clip((np.where(finite, values, lo) - lo) / (hi - lo), 0.0, 1.0)
    return np.rint(scaled * 255).astype(np.uint8)


def downsample(volume: np.ndarray, affine: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Block means of ``factor`` voxels a side (edges padded) and the affine of the coarser grid, whose voxel
    centres are the blocks' centres."""
    if factor == 1:
        return volume, affine
    pad = [(0, (-n) % factor) for n in volume.shape]
    padded = np.pad(volume.astype(np.float32), pad, mode="edge")
    nx, ny, nz = (n // factor for n in padded.shape)
    blocks = padded.reshape(nx, factor, ny, factor, nz, factor).mean(axis=(1, 3, 5))
    scale = np.diag([factor, factor, factor, 1.0])
    scale[:3, 3] = (factor - 1) / 2
    return np.rint(blocks).astype(volume.dtype), affine @ scale


def nifti_base64(data: np.ndarray, affine: np.ndarray) -> str:
    """A volume as base64 of a gzipped NIfTI-1 with ``affine`` as its sform (scanner RAS, mm)."""
    img = nib.Nifti1Image(np.asarray(data), affine)
    img.set_sform(affine, code=1)
    img.set_qform(None, code=0)
    img.header.set_xyzt_units("mm", "sec")
    return base64.b64encode(gzip.compress(img.to_bytes(), compresslevel=9, mtime=0)).decode("ascii")


def draw_caliper(volume: np.ndarray, affine: np.ndarray, start: np.ndarray, end: np.ndarray, value: int) -> None:
    """Rasterise the world segment ``start``-``end`` into ``volume`` (on ``affine``'s grid) on one voxel slice:
    the slice along the grid axis nearest world z that holds the segment's midpoint, as an axial measurement is
    taken on a voxel slice even when the grid is oblique."""
    to_vox = np.linalg.inv(affine)
    ends = nib.affines.apply_affine(to_vox, np.stack([start, end]))
    axis = int(np.argmax(np.abs(affine[2, :3]) / np.linalg.norm(affine[:3, :3], axis=0)))
    steps = max(int(np.ceil(np.abs(ends[1] - ends[0]).max() * 4)), 1) + 1
    points = ends[0] + np.linspace(0.0, 1.0, steps)[:, None] * (ends[1] - ends[0])
    points[:, axis] = (ends[0, axis] + ends[1, axis]) / 2
    voxels = np.rint(points).astype(int)
    inside = np.all((voxels >= 0) & (voxels < np.array(volume.shape)), axis=1)
    voxels = voxels[inside]
    volume[voxels[:, 0], voxels[:, 1], voxels[:, 2]] = value


@dataclass(frozen=True)
class ViewerVolumes:
    """The page's volumes on the cropped grid: overlay codes, calipers, display image and their affines."""

    origin: tuple[int, int, int]  # first voxel of the crop in the input grid
    affine: np.ndarray  # of the cropped label grid
    overlay: np.ndarray  # uint8 codes (CLASSES), full resolution
    calipers: np.ndarray  # lesion k: 2k-1 longest, 2k perpendicular (0 elsewhere)
    image: np.ndarray | None  # uint8, full resolution (before any downsampling)
    background: np.ndarray  # a neutral uint8 background made from the labels, same grid


def viewer_volumes(
    labels: np.ndarray,
    affine: np.ndarray,
    scheme: LabelScheme,
    lesions: list[dict],
    instances: np.ndarray,
    image: np.ndarray | None = None,
) -> ViewerVolumes:
    """Crop every volume to the brain / non-zero box, map the labels to overlay codes and draw the calipers."""
    box = _crop_box(labels, instances, image)
    origin = tuple(int(s.start) for s in box)
    cropped_affine = crop_affine(np.asarray(affine, dtype=float), origin)
    overlay = overlay_codes(labels[box], scheme)
    ids = [int(r["lesion_id"]) for r in lesions]
    dtype = np.uint8 if 2 * max(ids, default=0) <= 255 else np.uint16
    calipers = np.zeros(overlay.shape, dtype=dtype)
    for row in lesions:
        k = int(row["lesion_id"])
        for value, which in ((2 * k - 1, "longest"), (2 * k, "perpendicular")):
            ends = caliper_ends(row, which)
            if ends is not None:
                draw_caliper(calipers, cropped_affine, *ends, value)
    background = np.where(labels[box] != 0, 60, 0).astype(np.uint8)
    shown = quantise(image[box]) if image is not None else None
    return ViewerVolumes(origin, cropped_affine, overlay, calipers, shown, background)


def _lut(entries: list[tuple[int, tuple[int, int, int], str]]) -> dict:
    """A NiiVue label colormap (``{R, G, B, A, I, labels}``) with 0 transparent."""
    entries = [(0, (0, 0, 0), "")] + entries
    return {
        "R": [e[1][0] for e in entries],
        "G": [e[1][1] for e in entries],
        "B": [e[1][2] for e in entries],
        "A": [0] + [255] * (len(entries) - 1),
        "I": [e[0] for e in entries],
        "labels": [e[2] for e in entries],
    }


def _row(row: dict, vox: ViewerVolumes, instances_box: np.ndarray) -> dict:
    """What the page shows of a lesion row (and its centroid in world mm, from the instances when absent)."""
    k = int(row["lesion_id"])
    centroid = [cell_number(row.get(f"centroid_{c}_mm")) for c in "xyz"]
    if any(v is None for v in centroid):
        where = np.argwhere(instances_box == k)
        centroid = [float(v) for v in nib.affines.apply_affine(vox.affine, where.mean(axis=0))] if where.size else None
    where = " ".join(str(row[key]) for key in ("location", "hemisphere") if row.get(key) not in (None, "", "n/a"))
    segments = {w: caliper_ends(row, w) for w in ("longest", "perpendicular")}
    return {
        "id": k,
        "volume_ml": cell_number(row.get("volume_ml")),
        "max3d": cell_number(row.get("max_diameter_3d_mm")),
        "longest": cell_number(row.get("axial_longest_diameter_mm")),
        "perpendicular": cell_number(row.get("axial_perpendicular_diameter_mm")),
        "plane_z": cell_number(row.get("axial_plane_z_mm")),
        "centroid": centroid,
        "where": where,
        "caliper": {w: ends.tolist() for w, ends in segments.items() if ends is not None},
    }


def viewer_page(
    path: str | Path,
    labels: np.ndarray,
    affine: np.ndarray,
    scheme: LabelScheme,
    lesions: list[dict],
    instances: np.ndarray,
    image: np.ndarray | None = None,
    title: str = "",
    panels: dict[int, bytes] | None = None,
    max_bytes: int = 10_000_000,
) -> None:
    """Write one self-contained HTML page: the study in NiiVue (axial, coronal, sagittal), its lesion/edema
    overlay with a legend, the lesion table; a row moves the crosshair to the lesion's centroid and shows its
    RANO-BM caliper (overlay and ``panels`` picture). The intensity image is downsampled by the smallest integer
    factor that keeps the page under ``max_bytes`` (labels never are)."""
    labels = np.asarray(labels)
    instances = np.asarray(instances)
    affine = np.asarray(affine, dtype=float)
    grids = [labels.shape, instances.shape] + ([np.shape(image)] if image is not None else [])
    if labels.ndim != 3 or len(set(grids)) != 1 or affine.shape != (4, 4):
        raise ValueError(f"viewer_page: labels, instances and image must share one 3D grid, got {grids}")
    vox = viewer_volumes(labels, affine, scheme, lesions, instances, image)
    box = tuple(slice(o, o + n) for o, n in zip(vox.origin, vox.overlay.shape))
    rows = [_row(r, vox, instances[box]) for r in sorted(lesions, key=lambda r: int(r["lesion_id"]))]
    present = set(np.unique(vox.overlay).tolist())
    classes = [(c, rgb, name) for c, role, name, rgb in CLASSES if scheme.has(role) or c in present]
    caliper_lut = [
        (2 * r["id"] - 1 + i, CALIPER_COLOURS[w], f"lesion {r['id']} {w}")
        for r in rows
        for i, w in enumerate(("longest", "perpendicular"))
        if w in r["caliper"]
    ]
    fixed = [
        {"name": "labels.nii.gz", "b64": nifti_base64(vox.overlay, vox.affine), "lut": _lut(classes), "opacity": 0.55},
        {"name": "calipers.nii.gz", "b64": nifti_base64(vox.calipers, vox.affine), "lut": _lut(caliper_lut), "opacity": 1},
    ]  # fmt: skip
    pictures = {str(k): base64.b64encode(v).decode("ascii") for k, v in (panels or {}).items()}
    common = {
        "lesions": rows,
        "panels": pictures,
        "classes": [{"code": c, "rgb": rgb, "name": n} for c, rgb, n in classes],
        "caliperColours": CALIPER_COLOURS,
        "cropOrigin": list(vox.origin),
        "shape": list(vox.overlay.shape),
    }
    js = bundle_js()
    factor, page = 1, ""
    while True:
        if vox.image is None:
            base = [{"name": "background.nii.gz", "b64": nifti_base64(vox.background, vox.affine), "cal": [0, 255]}]
        elif factor == 1:
            base = [{"name": "image.nii.gz", "b64": nifti_base64(vox.image, vox.affine), "cal": [0, 255]}]
        else:  # volume 0 sets NiiVue's grid: a full-resolution blank one, so the labels are shown at theirs
            coarse, coarse_affine = downsample(vox.image, vox.affine, factor)
            base = [
                {"name": "grid.nii.gz", "b64": nifti_base64(np.zeros_like(vox.background), vox.affine), "cal": [0, 255]},
                {"name": "image.nii.gz", "b64": nifti_base64(coarse, coarse_affine), "cal": [0, 255], "opacity": 1},
            ]  # fmt: skip
        data = dict(common, volumes=base + fixed, imageFactor=factor, hasImage=vox.image is not None)
        page = _html(title, data, js)
        if len(page.encode("utf-8")) <= max_bytes or vox.image is None or factor >= MAX_FACTOR:
            break
        factor += 1
    Path(path).write_text(page, encoding="utf-8")


def failure_page(path: str | Path, title: str, message: str) -> None:
    """The page that stands in for a failed study's viewer (so the report's link says why)."""
    Path(path).write_text(
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p><p>Research use only.</p></body></html>\n",
        encoding="utf-8",
    )


def _script_json(data: dict) -> str:
    """JSON safe inside a ``<script>`` element."""
    return json.dumps(data, separators=(",", ":")).replace("</", "<\\/")


def _html(title: str, data: dict, js: str) -> str:
    """The page: styles, layout, the NiiVue bundle, the data and the script that wires them."""
    heading = html.escape(title) if title else "Lesion viewer"
    note = ""
    if data["imageFactor"] > 1:
        f = data["imageFactor"]
        note = (
            f'<p class="note">The image is shown downsampled by {f} along each axis (block means of {f}&times;{f}'
            f"&times;{f} voxels) to keep this page small; the labels and calipers are at full resolution.</p>"
        )
    elif not data["hasImage"]:
        note = '<p class="note">No image was given: the grey background is the labelled region itself.</p>'
    return (
        _TEMPLATE.replace("@@TITLE@@", heading)
        .replace("@@NOTE@@", note)
        .replace("@@DATA@@", _script_json(data))
        .replace("@@NIIVUE@@", js.replace("</script", "<\\/script"))
    )


_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>@@TITLE@@</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:0;background:#111;color:#ddd;font-size:14px}
header{padding:8px 14px;background:#222;display:flex;gap:18px;align-items:baseline;flex-wrap:wrap}
header h1{font-size:18px;margin:0}.ruo{color:#f90;font-weight:bold}
main{display:flex;gap:12px;padding:10px;flex-wrap:wrap}
#view{flex:1 1 640px;min-width:480px}#canvasbox{height:620px;background:#000}
#side{flex:0 1 480px;min-width:340px}
table{border-collapse:collapse;width:100%}th,td{padding:3px 6px;border-bottom:1px solid #333;text-align:right}
th:first-child,td:first-child,td.where{text-align:left}tbody tr{cursor:pointer}tbody tr:hover{background:#2a2a3a}
tr.selected{background:#334}.legend span.sw{display:inline-block;width:12px;height:12px;margin:0 4px -1px 10px}
.card{background:#1c1c24;border:1px solid #333;padding:8px;margin-top:10px}.card img{max-width:100%}
.note{color:#fc6}#location{font-family:monospace;color:#9cf;min-height:1.2em}button{margin:4px 6px 0 0}
</style></head><body>
<header><h1>@@TITLE@@</h1><span class="ruo">Research use only</span>
<span>not for diagnosis or treatment decisions</span></header>
<main><section id="view">
<div id="canvasbox"><canvas id="gl"></canvas></div>
<div id="location"></div>
<div class="legend" id="legend"></div>
<p id="convention"></p>
<label><input type="checkbox" id="radio" checked> radiological convention</label>
@@NOTE@@
<p>Click a view to move the crosshair; scroll to change slice; right-drag to adjust contrast.
World coordinates are RAS millimetres (x to the subject's right, y anterior, z superior).</p>
</section><section id="side">
<table><thead><tr><th>Lesion</th><th>Volume (mL)</th><th>Max 3D (mm)</th><th>RANO-BM axial (mm)</th>
<th>Location</th></tr></thead><tbody id="rows"></tbody></table>
<div class="card" id="card">Click a lesion's row to go to its centroid and show its caliper.</div>
</section></main>
<script>@@NIIVUE@@</script>
<script type="application/json" id="bm-data">@@DATA@@</script>
<script>
"use strict";
const DATA = JSON.parse(document.getElementById("bm-data").textContent);
const fmt = (v, d) => (v === null || v === undefined ? "n/a" : v.toFixed(d));
const rgb = (c) => `rgb(${c[0]},${c[1]},${c[2]})`;
const lesionById = new Map(DATA.lesions.map((l) => [l.id, l]));
let nv = null, caliperVolume = null, caliperLut = null;
function convention() {
  const radio = document.getElementById("radio").checked;
  nv.setRadiologicalConvention(radio);
  document.getElementById("convention").textContent = radio
    ? "Radiological convention: the subject's right is on the screen's left (axial and coronal views)."
    : "Neurological convention: the subject's left is on the screen's left (axial and coronal views).";
}
function legend() {
  const parts = DATA.classes.map((c) => `<span class="sw" style="background:${rgb(c.rgb)}"></span>${c.name}`);
  parts.push(`<span class="sw" style="background:${rgb(DATA.caliperColours.longest)}"></span>axial longest diameter`);
  parts.push(`<span class="sw" style="background:${rgb(DATA.caliperColours.perpendicular)}"></span>perpendicular`);
  document.getElementById("legend").innerHTML = "Overlay:" + parts.join("");
}
function table() {
  const body = document.getElementById("rows");
  for (const l of DATA.lesions) {
    const tr = document.createElement("tr");
    tr.dataset.id = l.id;
    const axial = l.longest === null ? "n/a" : `${fmt(l.longest, 1)} &times; ${fmt(l.perpendicular, 1)}`;
    tr.innerHTML = `<td>${l.id}</td><td>${fmt(l.volume_ml, 3)}</td><td>${fmt(l.max3d, 1)}</td><td>${axial}</td>` +
      `<td class="where"></td>`;
    tr.querySelector(".where").textContent = l.where;
    tr.addEventListener("click", () => selectLesion(l.id));
    body.appendChild(tr);
  }
}
function moveTo(mm) {
  nv.scene.crosshairPos = nv.mm2frac(mm);
  nv.createOnLocationChange();
  nv.updateGLVolume();
}
function showCalipers(id) {
  // only the chosen lesion's two caliper values stay opaque in the caliper overlay's label colormap
  const keep = new Set(id === null ? [] : [2 * id - 1, 2 * id]);
  const lut = JSON.parse(JSON.stringify(caliperLut));
  lut.A = lut.I.map((v, i) => (v !== 0 && (id === null || keep.has(v)) ? 255 : 0));
  caliperVolume.setColormapLabel(lut);
}
function selectLesion(id) {
  const l = lesionById.get(id);
  for (const tr of document.querySelectorAll("#rows tr")) tr.classList.toggle("selected", Number(tr.dataset.id) === id);
  showCalipers(id);
  if (l.centroid) moveTo(l.centroid);
  const card = document.getElementById("card");
  let text = `<b>Lesion ${l.id}</b>: ${fmt(l.volume_ml, 3)} mL, maximum 3D diameter ${fmt(l.max3d, 1)} mm`;
  text += `<br>RANO-BM axial: longest ${fmt(l.longest, 1)} mm, perpendicular ${fmt(l.perpendicular, 1)} mm`;
  if (l.plane_z !== null) text += ` on the axial plane z = ${fmt(l.plane_z, 1)} mm`;
  if (l.centroid) text += `<br>Centroid (RAS mm): ${l.centroid.map((v) => fmt(v, 1)).join(", ")}`;
  if (l.caliper.longest) {
    text += `<br>The caliper is drawn in the overlay on its axial slice (orange: longest, violet: perpendicular).` +
      `<br><button id="goplane">Go to the caliper's slice</button>`;
  } else {
    text += "<br>No caliper endpoints in the lesion table.";
  }
  if (DATA.panels[String(l.id)]) text += `<br><img alt="lesion ${l.id} measurement" src="data:image/png;base64,${DATA.panels[String(l.id)]}">`;
  card.innerHTML = text;
  const go = document.getElementById("goplane");
  if (go) go.addEventListener("click", () => {
    const [a, b] = l.caliper.longest;
    moveTo([(a[0] + b[0]) / 2, (a[1] + b[1]) / 2, a[2]]);
  });
}
async function main() {
  nv = new niivue.Niivue({ backColor: [0, 0, 0, 1], show3Dcrosshair: true, isColorbar: false,
    multiplanarShowRender: niivue.SHOW_RENDER.NEVER, crosshairColor: [1, 0.2, 1, 0.7], logLevel: "warn" });
  await nv.attachTo("gl");
  const classes = new Map(DATA.classes.map((c) => [c.code, c.name]));
  nv.onLocationChange = (d) => {
    const label = d.values.find((v) => v.name === "labels.nii.gz");
    const what = label ? classes.get(Math.round(label.value)) : undefined;
    const mm = Array.from(d.mm).slice(0, 3).map((v) => v.toFixed(1)).join(", ");
    document.getElementById("location").textContent = `RAS ${mm} mm` + (what ? `: ${what}` : "");
  };
  for (const v of DATA.volumes) {
    const img = await niivue.NVImage.loadFromBase64({ base64: v.b64, name: v.name, colormap: "gray",
      opacity: v.opacity === undefined ? 1 : v.opacity, cal_min: v.cal ? v.cal[0] : NaN,
      cal_max: v.cal ? v.cal[1] : NaN, trustCalMinMax: true });
    if (v.lut) img.setColormapLabel(v.lut);
    if (v.name === "calipers.nii.gz") { caliperVolume = img; caliperLut = v.lut; }
    nv.addVolume(img);
  }
  nv.setSliceType(nv.sliceTypeMultiplanar);
  legend();
  table();
  convention();
  document.getElementById("radio").addEventListener("change", convention);
  nv.updateGLVolume();
  window.bmViewer = { nv, selectLesion, ready: true };
}
main().catch((e) => { console.error(e); document.getElementById("location").textContent = "Viewer error: " + e; });
</script></body></html>
"""
