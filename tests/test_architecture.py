"""The package's architecture holds: its layers (the import-linter contract in pyproject.toml, run here), every
module in a layer, no module much over 500 lines, and no logic in the Snakemake files."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from .conftest import ROOT

PACKAGE = ROOT / "src" / "brainmets"
#: The longest a module may grow before it is split (the issue that set the layout asked for about 500 lines).
MAX_MODULE_LINES = 530


def _layers() -> list[list[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (contract,) = [c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    return [[name.strip() for name in re.split(r"[|:]", layer)] for layer in contract["layers"]]


def test_the_layers_are_kept():
    """lint-imports checks every import, function-level ones included, against the layers."""
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml")], capture_output=True, text=True,
                          cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "1 kept, 0 broken" in done.stdout


def test_every_module_is_in_a_layer():
    """A new top-level module or package must be placed in a layer, or the contract would not check it."""
    placed = {name for layer in _layers() for name in layer}
    present = {
        f"brainmets.{path.stem if path.is_file() else path.name}"
        for path in PACKAGE.iterdir()
        if (path.suffix == ".py" and path.stem not in ("__init__", "__main__")) or (path / "__init__.py").is_file()
    }
    assert present - placed == set(), "add these to [tool.importlinter] layers in pyproject.toml"
    assert placed - present == set(), "the contract names modules that no longer exist"


def test_a_broken_layer_is_caught(tmp_path):
    """The check is not blind: a low layer importing a high one breaks the contract."""
    config = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    edited = config.replace(
        '"brainmets.cli | brainmets.workflow",', '"brainmets.io",\n    "brainmets.cli | brainmets.workflow",', 1
    )
    edited = edited.replace('    "brainmets.io",\n    "brainmets.config', '    "brainmets.config', 1)
    assert edited != config
    (tmp_path / "pyproject.toml").write_text(edited)
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--config", str(tmp_path / "pyproject.toml")], capture_output=True, text=True,
                          cwd=ROOT)  # fmt: skip
    assert done.returncode != 0 and "BROKEN" in done.stdout


def test_no_module_is_much_over_500_lines():
    lengths = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {name: n for name, n in lengths.items() if n > MAX_MODULE_LINES} == {}
