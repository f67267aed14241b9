"""The lesion viewer page (brainmets.figures.viewer): one self-contained file, its embedded volumes and their
affines, its size; and, in Debian's headless chromium, NiiVue rendering it and a table row moving the crosshair
to the lesion's centroid."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import shutil
from importlib import resources

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from brainmets.figures import viewer
from brainmets.schemes import SCHEMES

SCHEME = SCHEMES["brats-mets-2023"]  # 1 necrotic, 2 edema, 3 enhancing, 4 cavity

# A flipped, permuted, anisotropic grid: voxel axis 0 runs inferior (2 mm), 1 to the left (0.9 mm), 2 anterior
# (1.1 mm): no axis of the storage order is the world's.
AFFINE = np.array(
    [
        [0.0, -0.9, 0.0, 40.0],
        [0.0, 0.0, 1.1, -45.0],
        [-2.0, 0.0, 0.0, 40.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
)
SHAPE = (40, 90, 80)


def _rotation(axis: int, degrees: float) -> np.ndarray:
    """A 4x4 rotation about a world axis."""
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    i, j = [a for a in range(3) if a != axis]
    out = np.eye(4)
    out[i, i], out[i, j], out[j, i], out[j, j] = c, -s, s, c
    return out


# the same grid tilted 15 degrees about x and 10 about z: no voxel axis is along a world axis
OBLIQUE = _rotation(2, 10) @ _rotation(0, 15) @ AFFINE
# centre (world RAS mm), core radius, necrotic radius (0: none)
LESIONS = [((-15.0, 10.0, 6.0), 8.0, 4.0), ((18.0, -20.0, -12.0), 6.0, 0.0), ((5.0, 22.0, 20.0), 4.5, 0.0)]


def phantom(affine=AFFINE):
    """Label map, instances, image and lesion rows of three spherical lesions with edema on ``affine``'s grid."""
    world = nib.affines.apply_affine(affine, np.indices(SHAPE).reshape(3, -1).T).reshape(*SHAPE, 3)
    labels = np.zeros(SHAPE, dtype=np.uint8)
    instances = np.zeros(SHAPE, dtype=np.int32)
    distances = [np.linalg.norm(world - np.array(c), axis=-1) for c, _, _ in LESIONS]
    for d, (_, r, _) in zip(distances, LESIONS):
        labels[(d <= r + 5) & (labels == 0)] = 2
    for k, (d, (_, r, nec)) in enumerate(zip(distances, LESIONS), start=1):
        labels[d <= r] = 3
        labels[d <= nec] = 1
        instances[d <= r] = k
    head = np.linalg.norm(world / np.array([36.0, 40.0, 32.0]), axis=-1) <= 1
    rng = np.random.default_rng(3)
    texture = 300 + 4 * world[..., 1] + 400 * ndimage.gaussian_filter(rng.normal(size=SHAPE), 1.5)
    image = np.where(head, texture, 0).astype(np.float32)
    image[labels == 3] += 300
    rows = []
    for k in range(1, len(LESIONS) + 1):
        vox = np.argwhere(instances == k)
        cx, cy, cz = nib.affines.apply_affine(affine, vox.mean(axis=0))
        i = int(round(np.median(vox[:, 0])))  # the axial voxel slice through the lesion (axis 0 is nearest z)
        z = float(nib.affines.apply_affine(affine, [i, *vox[:, 1:].mean(axis=0)])[2])
        r = LESIONS[k - 1][1]
        rows.append(
            {
                "lesion_id": k,
                "volume_ml": len(vox) * abs(np.linalg.det(affine[:3, :3])) / 1000,
                "max_diameter_3d_mm": 2 * r,
                "axial_longest_diameter_mm": 2 * r,
                "axial_perpendicular_diameter_mm": 2 * r - 1,
                "axial_plane_z_mm": z,
                "centroid_x_mm": cx,
                "centroid_y_mm": cy,
                "centroid_z_mm": cz,
                "location": "supratentorial",
                "hemisphere": "left" if cx < 0 else "right",
                "subject": "should-not-appear",
            }
        )
        if k < 3:  # lesion 3 has no caliper columns, as tables from before they were added
            u, p = (
                r * np.array([np.cos(np.pi / 5), np.sin(np.pi / 5)]),
                (r - 0.5) * np.array([-np.sin(np.pi / 5), np.cos(np.pi / 5)]),
            )
            rows[-1].update(
                axial_longest_x1_mm=cx - u[0], axial_longest_y1_mm=cy - u[1],
                axial_longest_x2_mm=cx + u[0], axial_longest_y2_mm=cy + u[1],
                axial_perpendicular_x1_mm=cx - p[0], axial_perpendicular_y1_mm=cy - p[1],
                axial_perpendicular_x2_mm=cx + p[0], axial_perpendicular_y2_mm=cy + p[1],
            )  # fmt: skip
    return labels, instances, image, rows


def page_data(path) -> dict:
    """The page's embedded JSON data."""
    text = path.read_text(encoding="utf-8")
    found = re.search(r'<script type="application/json" id="bm-data">(.*?)</script>', text, re.S)
    return json.loads(found.group(1))


def volume(data: dict, name: str) -> nib.Nifti1Image:
    """An embedded volume, decoded as a browser would: base64, gunzip, NIfTI."""
    (entry,) = [v for v in data["volumes"] if v["name"] == name]
    return nib.Nifti1Image.from_bytes(gzip.decompress(base64.b64decode(entry["b64"])))


def write(tmp_path, affine=AFFINE, **kwargs):
    labels, instances, image, rows = phantom(affine)
    path = tmp_path / "viewer.html"
    args = dict(labels=labels, affine=affine, scheme=SCHEME, lesions=rows, instances=instances, image=image)
    viewer.viewer_page(path, **(args | kwargs))
    return path, labels, instances, image, rows


def test_bundle_is_package_data():
    files = resources.files("brainmets").joinpath("data/viewer")
    assert files.joinpath("niivue.min.js.gz").is_file() and files.joinpath("NIIVUE_LICENSE").is_file()
    assert "BSD 2-Clause" in files.joinpath("NIIVUE_LICENSE").read_text()
    assert "0.69.0" in files.joinpath("README.md").read_text()
    assert "Niivue" in viewer.bundle_js()
    digest = hashlib.sha256(viewer.bundle_js().encode("utf-8")).hexdigest()
    assert f"`{digest}`" in files.joinpath("README.md").read_text()  # the build its README records


def test_page_is_one_self_contained_file(tmp_path):
    path, *_ = write(tmp_path, title="Study A", panels={1: b"\x89PNG fake"})
    text = path.read_text(encoding="utf-8")
    assert list(tmp_path.iterdir()) == [path]
    assert not re.search(r"<script[^>]*\bsrc=", text) and not re.search(r"<link[^>]*\bhref=", text)
    assert not re.search(r"""(fetch|import)\s*\(\s*["'`]https?:""", text)
    assert "Research use only" in text and "Study A" in text and "should-not-appear" not in text
    assert "Neurological convention" in text and "Radiological convention" in text
    data = page_data(path)
    assert [entry["id"] for entry in data["lesions"]] == [1, 2, 3]
    assert data["lesions"][0]["where"] == "supratentorial left" and data["panels"]["1"]
    assert set(data["lesions"][0]["caliper"]) == {"longest", "perpendicular"} and not data["lesions"][2]["caliper"]
    assert {c["name"] for c in data["classes"]} >= {"Enhancing tumour", "Edema (SNFH)", "Resection cavity"}


def test_labels_round_trip_exactly_on_a_cropped_grid(tmp_path):
    path, labels, instances, *_ = write(tmp_path)
    data = page_data(path)
    origin, shape = data["cropOrigin"], data["shape"]
    box = tuple(slice(o, o + n) for o, n in zip(origin, shape))
    assert shape != list(SHAPE)  # cropped to the head
    embedded = volume(data, "labels.nii.gz")
    codes = np.asarray(embedded.dataobj)
    assert codes.dtype == np.uint8 and codes.shape == tuple(shape)
    expected = np.select([labels[box] == 3, labels[box] == 1, labels[box] == 2, labels[box] == 4], [1, 2, 4, 5], 0)
    np.testing.assert_array_equal(codes, expected)
    assert int(embedded.header["sform_code"]) == 1
    # the cropped affine maps a lesion voxel to the same world point as the original grid
    voxel = np.argwhere(instances == 2)[0]
    np.testing.assert_allclose(
        nib.affines.apply_affine(embedded.affine, voxel - np.array(origin)),
        nib.affines.apply_affine(AFFINE, voxel),
        atol=1e-4,
    )
    image = volume(data, "image.nii.gz")
    assert np.asarray(image.dataobj).dtype == np.uint8 and np.allclose(image.affine, embedded.affine, atol=1e-4)


def test_calipers_are_drawn_on_their_axial_slice(tmp_path):
    path, _, _, _, rows = write(tmp_path)
    data = page_data(path)
    calipers = volume(data, "calipers.nii.gz")
    values = np.asarray(calipers.dataobj)
    assert set(np.unique(values)) == {0, 1, 2, 3, 4}  # lesions 1 and 2: longest 2k-1, perpendicular 2k
    for k in (1, 2):
        for value, which in ((2 * k - 1, "longest"), (2 * k, "perpendicular")):
            world = nib.affines.apply_affine(calipers.affine, np.argwhere(values == value))
            assert np.allclose(world[:, 2], rows[k - 1]["axial_plane_z_mm"], atol=1e-3)  # one voxel slice
            ends = [[rows[k - 1][f"axial_{which}_{c}{e}_mm"] for c in "xy"] for e in "12"]
            length = np.linalg.norm(np.subtract(*ends))
            extent = np.linalg.norm(world[:, :2].max(axis=0) - world[:, :2].min(axis=0))
            assert abs(extent - length) <= 1.2  # within a voxel spacing


def test_calipers_on_an_oblique_grid_lie_on_one_voxel_slice(tmp_path):
    path, _, _, _, rows = write(tmp_path, OBLIQUE)
    calipers = volume(page_data(path), "calipers.nii.gz")
    values = np.asarray(calipers.dataobj)
    for value in (1, 2, 3, 4):
        voxels = np.argwhere(values == value)
        assert len(set(voxels[:, 0])) == 1  # axis 0 is the one nearest world z
        k, which = (value + 1) // 2, ("longest", "perpendicular")[1 - value % 2]
        middle = np.mean([[rows[k - 1][f"axial_{which}_{c}{e}_mm"] for c in "xy"] for e in "12"], axis=0)
        world = nib.affines.apply_affine(calipers.affine, voxels)
        assert np.linalg.norm(world[:, :2].mean(axis=0) - middle) < 1.5


def test_volumes_on_different_grids_are_refused(tmp_path):
    labels, instances, image, rows = phantom()
    with pytest.raises(ValueError, match="one 3D grid"):
        viewer.viewer_page(tmp_path / "x.html", labels, AFFINE, SCHEME, rows, instances, image=image[:-1])


def test_downsampling_keeps_a_correct_affine():
    volume_ = np.arange(6 * 4 * 2, dtype=np.uint8).reshape(6, 4, 2)
    small, affine = viewer.downsample(volume_, AFFINE, 2)
    assert small.shape == (3, 2, 1)
    assert small[1, 1, 0] == int(np.rint(volume_[2:4, 2:4, 0:2].mean()))
    np.testing.assert_allclose(
        nib.affines.apply_affine(affine, [1, 1, 0]), nib.affines.apply_affine(AFFINE, [2.5, 2.5, 0.5])
    )


def test_a_full_size_study_fits_in_ten_megabytes(tmp_path):
    """240 x 240 x 155 of smooth noise everywhere (nothing to crop): the image is downsampled and says so,
    the labels are not."""
    rng = np.random.default_rng(0)
    shape = (240, 240, 155)
    image = ndimage.zoom(rng.normal(size=(60, 60, 39)).astype(np.float32), 4, order=1)[:240, :240, :155]
    image += rng.normal(scale=0.2, size=shape).astype(np.float32)
    labels = np.zeros(shape, dtype=np.uint8)
    labels[100:130, 100:130, 60:90] = 2
    labels[110:120, 110:120, 70:80] = 3
    instances = (labels == 3).astype(np.int32)
    rows = [{"lesion_id": 1, "volume_ml": 1.0, "max_diameter_3d_mm": 17.3, "axial_longest_diameter_mm": 14.1,
             "axial_perpendicular_diameter_mm": 10.0, "axial_plane_z_mm": None, "centroid_x_mm": 114.5,
             "centroid_y_mm": 114.5, "centroid_z_mm": 74.5}]  # fmt: skip
    path = tmp_path / "big.html"
    viewer.viewer_page(path, labels, np.eye(4), SCHEME, rows, instances, image=image)
    size = path.stat().st_size
    assert size < 10_000_000, size
    data = page_data(path)
    assert data["shape"] == list(shape) and data["imageFactor"] > 1
    assert "downsampled by" in path.read_text(encoding="utf-8")
    np.testing.assert_array_equal(
        np.asarray(volume(data, "labels.nii.gz").dataobj), viewer.overlay_codes(labels, SCHEME)
    )


# ---- in a browser ---------------------------------------------------------------------------------------


def _browser():
    """Debian's chromium driven by its chromedriver (skip where they are not installed), with WebGL2 from
    SwiftShader, the software renderer, as there is no GPU: ANGLE on SwiftShader, asked for explicitly as
    chromium no longer falls back to it by itself everywhere (``--use-gl=swiftshader`` gives no WebGL2 at all)."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("chromium and chromedriver are not installed (Debian packages chromium, chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--use-angle=swiftshader",
        "--enable-unsafe-swiftshader",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


@pytest.mark.slow
@pytest.mark.parametrize("affine", [AFFINE, OBLIQUE], ids=["flipped-permuted", "oblique"])
def test_page_renders_and_a_row_moves_the_crosshair_to_the_lesion(tmp_path, affine):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    path, labels, instances, image, rows = write(tmp_path, affine, title="Phantom")
    browser = _browser()
    try:
        browser.get(path.as_uri())
        if not browser.execute_script("return !!document.createElement('canvas').getContext('webgl2')"):
            pytest.skip("this chromium gives no WebGL2 context (SwiftShader missing?)")
        WebDriverWait(browser, 30).until(lambda b: b.execute_script("return !!(window.bmViewer && bmViewer.ready)"))
        assert browser.execute_script(
            "const c = document.getElementById('gl'); return !!c && !!bmViewer.nv.gl && c.width > 0"
        )
        assert browser.execute_script("return bmViewer.nv.volumes.length") == 3
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
        screenshot = tmp_path / "viewer.png"
        browser.find_element(By.ID, "gl").screenshot(str(screenshot))
        pixels = np.asarray(_png(screenshot))
        r, g, b = (pixels[..., i].astype(int) for i in range(3))
        red = (r > g + 60) & (r > b + 60)  # enhancing tumour over the grey image
        green = (g > r + 60) & (g > b + 40)  # edema
        assert red.sum() > 20 and green.sum() > 20, (red.sum(), green.sum())
        for row in rows:
            browser.find_element(By.CSS_SELECTOR, f"#rows tr[data-id='{row['lesion_id']}']").click()
            mm = browser.execute_script("return Array.from(bmViewer.nv.frac2mm(bmViewer.nv.scene.crosshairPos))")
            centroid = np.array([row[f"centroid_{c}_mm"] for c in "xyz"])
            assert np.linalg.norm(np.array(mm[:3]) - centroid) <= np.linalg.norm(affine[:3, :3], axis=0).max()
            assert f"Lesion {row['lesion_id']}" in browser.find_element(By.ID, "card").text
            # only this lesion's caliper values (2k-1, 2k) stay opaque in the caliper overlay's label colormap
            lut = browser.execute_script(
                "const c = bmViewer.nv.volumes[2].colormapLabel; return [c.min, Array.from(c.lut)]"
            )
            opaque = {lut[0] + i // 4 for i in range(3, len(lut[1]), 4) if lut[1][i] > 0}
            k = row["lesion_id"]
            assert opaque == ({2 * k - 1, 2 * k} if k < 3 else set())
        assert browser.execute_script("return bmViewer.nv.opts.isRadiologicalConvention")  # as the study figure
        assert "Radiological convention" in browser.find_element(By.ID, "convention").text
        browser.find_element(By.ID, "radio").click()
        assert not browser.execute_script("return bmViewer.nv.opts.isRadiologicalConvention")
        assert "Neurological convention" in browser.find_element(By.ID, "convention").text
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        browser.quit()


def _png(path):
    """A PNG's RGB pixels (matplotlib reads PNG without extra dependencies)."""
    import matplotlib.image

    return (matplotlib.image.imread(str(path))[..., :3] * 255).astype(np.uint8)


def test_a_noisy_background_is_cropped_away_as_zeros_are(tmp_path):
    """A scanner's image, not skull-stripped: a bright head in Rician-like background noise. The page keeps the
    head's box (and its margin), not the whole grid, and so needs no downsampling."""
    rng = np.random.default_rng(1)
    shape = (240, 240, 155)
    grid = np.indices(shape, dtype=np.float32)
    head = ((grid[0] - 120) / 70) ** 2 + ((grid[1] - 110) / 85) ** 2 + ((grid[2] - 80) / 60) ** 2 <= 1
    image = np.abs(rng.normal(scale=15, size=shape)).astype(np.float32)
    image[head] += 300 + 60 * np.sin(grid[0][head] / 5)
    labels = np.zeros(shape, dtype=np.uint8)
    labels[110:125, 100:115, 70:85] = 3
    instances = (labels == 3).astype(np.int32)
    rows = [{"lesion_id": 1, "volume_ml": 3.4, "centroid_x_mm": 117.0, "centroid_y_mm": 107.0, "centroid_z_mm": 77.0}]
    path = tmp_path / "scanner.html"
    viewer.viewer_page(path, labels, np.eye(4), SCHEME, rows, instances, image=image)
    data = page_data(path)
    assert data["imageFactor"] == 1
    first, last = np.array([50, 25, 20]), np.array([190, 195, 140])  # the head's voxels, the margin 4 around
    origin = np.array(data["cropOrigin"])
    end = origin + data["shape"] - 1
    assert np.all(np.abs(origin - (first - 4)) <= 2) and np.all(np.abs(end - (last + 4)) <= 2)  # a noise spike
    # touching the head may join it
