"""The outputs do not change unless meant to: the demo workflow's results and the CLI's outputs on the bundled
maps, made afresh, equal the committed ones in ``tests/golden/`` (made by ``tests/golden/generate.py``).

JSON and TSV are compared value by value (numbers to 1e-9 relative), ignoring the version and the timings;
pictures by their pixels, label maps by their voxels and affine, Parquet tables by their contents. After a change
meant to alter outputs, run ``python tests/golden/generate.py`` and review the diff it leaves in git.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from brainmets import __version__

from .golden.generate import GOLDEN, generate

pytestmark = pytest.mark.workflow
#: Keys whose values say when or with what a file was made, not what was measured.
VOLATILE_KEYS = {"seconds", "brainmets_version", "Version"}
REL_TOL = 1e-9


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("golden"))


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.suffix != ".py"}


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8").replace(__version__, "<version>")


def _same_value(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
            return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-12) or (math.isnan(a) and math.isnan(b))
        return False
    return a == b


def _json_differences(a, b, where: str = "") -> list[str]:
    """Where two JSON values differ (at most a few paths), the volatile keys left out."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b), key=str):
            if key in VOLATILE_KEYS:
                continue
            if key not in a or key not in b:
                out.append(f"{where}/{key}: only in {'golden' if key in a else 'fresh'}")
            else:
                out += _json_differences(a[key], b[key], f"{where}/{key}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} items in golden, {len(b)} fresh"]
        return [d for k, (x, y) in enumerate(zip(a, b)) for d in _json_differences(x, y, f"{where}[{k}]")]
    return [] if _same_value(a, b) else [f"{where}: golden {a!r}, fresh {b!r}"]


def _cell(text: str):
    try:
        return float(text)
    except ValueError:
        return text


def _tsv_differences(golden: Path, fresh: Path) -> list[str]:
    rows = [list(csv.reader(_text(p).splitlines(), delimiter="\t")) for p in (golden, fresh)]
    if rows[0][:1] != rows[1][:1]:
        return [f"header: golden {rows[0][:1]}, fresh {rows[1][:1]}"]
    if len(rows[0]) != len(rows[1]):
        return [f"{len(rows[0]) - 1} rows in golden, {len(rows[1]) - 1} fresh"]
    header = rows[0][0] if rows[0] else []
    out = []
    for k, (a, b) in enumerate(zip(rows[0][1:], rows[1][1:]), start=2):
        for column, x, y in zip(header, a, b):
            if column not in VOLATILE_KEYS and not _same_value(_cell(x), _cell(y)):
                out.append(f"line {k}, {column}: golden {x!r}, fresh {y!r}")
    return out


def _differences(golden: Path, fresh: Path) -> list[str]:
    name = golden.name
    if name.endswith(".json"):
        return _json_differences(json.loads(_text(golden)), json.loads(_text(fresh)))
    if name.endswith(".tsv"):
        return _tsv_differences(golden, fresh)
    if name.endswith(".nii.gz"):
        a, b = nib.load(golden), nib.load(fresh)
        if not np.allclose(a.affine, b.affine):
            return ["affine differs"]
        if not np.array_equal(np.asarray(a.dataobj), np.asarray(b.dataobj)):
            return [f"{int((np.asarray(a.dataobj) != np.asarray(b.dataobj)).sum())} voxels differ"]
        return []
    if name.endswith(".png"):
        a, b = imread(golden), imread(fresh)
        if a.shape != b.shape:
            return [f"picture size: golden {a.shape}, fresh {b.shape}"]
        changed = np.abs(a.astype(float) - b.astype(float)).max(axis=-1) > 2 / 255
        return [f"{changed.mean():.2%} of the pixels differ"] if changed.mean() > 0.001 else []
    if name.endswith(".parquet"):
        a, b = pd.read_parquet(golden), pd.read_parquet(fresh)
        try:
            pd.testing.assert_frame_equal(a.drop(columns=[c for c in VOLATILE_KEYS if c in a]),
                                          b.drop(columns=[c for c in VOLATILE_KEYS if c in b]), rtol=REL_TOL)  # fmt: skip
        except AssertionError as exc:
            return [str(exc).splitlines()[0]]
        return []
    return [] if _text(golden) == _text(fresh) else ["text differs"]


@pytest.mark.parametrize("part", ["workflow", "cli"])
def test_outputs_equal_the_golden_ones(fresh, part):
    golden, made = GOLDEN / part, fresh / part
    assert _files(golden), f"no golden outputs under {golden}: run python tests/golden/generate.py"
    assert _files(made) == _files(golden), "the set of output files changed"
    changed = {name: diff for name in sorted(_files(golden)) if (diff := _differences(golden / name, made / name))}
    report = "\n".join(f"{name}: {'; '.join(diff[:5])}" for name, diff in changed.items())
    assert not changed, f"{len(changed)} outputs differ from tests/golden/{part} (run tests/golden/generate.py " \
        f"if that is meant):\n{report}"  # fmt: skip


def test_the_comparison_sees_a_changed_number(fresh, tmp_path):
    """The comparison is not blind: one changed measurement, one changed voxel and one changed table cell show."""
    features = next((fresh / "cli" / "features").glob("sphere_features.json"))
    document = json.loads(features.read_text())
    document["lesions"][0]["max_diameter_3d_mm"] *= 1.001
    assert any("max_diameter_3d_mm" in d for d in _json_differences(json.loads(features.read_text()), document))
    table = next((fresh / "cli" / "tables").glob("studies.tsv"))
    lines = table.read_text().splitlines()
    cells = lines[1].split("\t")
    cells[-1] = "changed"
    (tmp_path / "studies.tsv").write_text("\n".join([lines[0], "\t".join(cells), *lines[2:]]) + "\n")
    assert _tsv_differences(table, tmp_path / "studies.tsv")
    instances = fresh / "cli" / "features" / "sphere_instances.nii.gz"
    image = nib.load(instances)
    voxels = np.asarray(image.dataobj).copy()
    voxels.flat[0] += 1
    nib.save(nib.Nifti1Image(voxels, image.affine, image.header), tmp_path / "x.nii.gz")
    assert _differences(instances, tmp_path / "x.nii.gz") == ["1 voxels differ"]
