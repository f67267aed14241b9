"""The Python API (brainmets.api): the same answers as the command line, DataFrames for notebooks, and the
README's Python example run as written."""

from __future__ import annotations

import ast
import json
import re

import pandas as pd
import pytest

import brainmets
from brainmets.cli import main
from brainmets.errors import ConfigError, InputDataError

from .conftest import PHANTOMS, ROOT, TEST_DATA

COHORT = TEST_DATA / "cohort"
SEG = COHORT / "sub-02_ses-01_dseg.nii.gz"
CLINICAL = COHORT / "clinical.tsv"


def test_measure_gives_the_documents_and_tables_of_the_command_line(tmp_path, expected):
    measurement = brainmets.measure(PHANTOMS / "sphere.nii.gz")
    truth = expected["sphere"]["lesions"][0]
    lesions = measurement.lesions
    assert isinstance(lesions, pd.DataFrame) and list(lesions.index) == [1]
    assert lesions.loc[1, "mesh_volume_ml"] == pytest.approx(truth["mesh_volume_ml"]["value"], rel=0.02)
    assert measurement.study["lesion_count"] == 1
    assert measurement.instances.shape == measurement.label_map.shape and measurement.instances.max() == 1
    out = tmp_path / "f.json"
    assert main(["features", str(PHANTOMS / "sphere.nii.gz"), "--out-json", str(out)]) == 0
    written = json.loads(out.read_text())
    from brainmets.io.writers import to_jsonable

    assert to_jsonable(measurement.document) == written  # as written: 6 significant digits


def test_measure_takes_config_keys_as_parameters_and_validates_them():
    small = brainmets.measure(SEG, subject="02", session="01", min_lesion_volume_mm3=1)
    large = brainmets.measure(SEG, min_lesion_volume_mm3=10_000, rano_bm={"max_target_lesions": 1})
    assert large.document["provenance"]["parameters"]["rano_bm"]["min_longest_diameter_mm"] == 10  # merged
    assert list(large.edema_only_components.columns)[:3] == ["component_id", "voxel_count", "volume_ml"]
    custom = {"features": {"label_scheme": {"necrotic": [1], "edema": [2], "enhancing": [3], "cavity": [4]}}}
    core_only = brainmets.measure(SEG, config=custom, label_scheme={"core": [1, 3], "ignored": [2, 4]})
    assert core_only.lesions["edema_volume_ml"].isna().all()  # the config's edema label was replaced, not merged
    assert small.lesions["edema_volume_ml"].notna().all()
    assert small.study["subject"] == "02" and small.study["lesion_count"] == 3
    assert large.study["lesion_count"] == 0 and large.lesions.empty
    assert list(large.lesions.columns) == list(small.lesions.columns)
    with pytest.raises(ConfigError, match="min_lesion_volume_mm3"):
        brainmets.measure(SEG, min_lesion_volume_mm3="large")
    with pytest.raises(ConfigError, match="no_such_parameter"):
        brainmets.measure(SEG, no_such_parameter=1)
    with pytest.raises(ConfigError, match="subject"):
        brainmets.measure(SEG, subject="../escape")
    with pytest.raises(InputDataError, match="no such file"):
        brainmets.measure(COHORT / "missing.nii.gz")


def test_locate_places_lesions_in_the_parcellation():
    measurement = brainmets.locate(SEG, parcellation=COHORT / "toy_aseg.nii.gz")
    assert measurement.study["location_reference"].startswith("parcellation")
    assert measurement.lesions["posterior_fossa_fraction"].notna().all()
    assert brainmets.measure(SEG).lesions["posterior_fossa_fraction"].isna().all()  # no reference: unknown, not False
    with pytest.raises(ConfigError, match="give a reference"):
        brainmets.locate(SEG)


def test_indicate_takes_a_row_a_table_or_a_file_with_the_same_verdicts():
    measurement = brainmets.measure(SEG, subject="02", session="01")
    table = pd.read_csv(CLINICAL, sep="\t", dtype=str, keep_default_na=False)
    row = table[table["subject"] == "02"].iloc[0].to_dict()
    from_file = brainmets.indicate(measurement, CLINICAL)
    from_frame = brainmets.indicate(measurement, table)
    from_row = brainmets.indicate(measurement.document, row)
    imaging_only = brainmets.indicate(measurement)

    def verdicts(result):
        return {m: e["status"] for m, e in result["modalities"].items()}, result["missing_inputs"]

    assert verdicts(from_file) == verdicts(from_frame) == verdicts(from_row)
    assert from_file["provenance"]["clinical_row_found"] and from_row["provenance"]["clinical_row_found"]
    assert from_file["research_use_only"] is True
    assert "kps" in imaging_only["missing_inputs"] and "kps" not in from_file["missing_inputs"]
    series = table[table["subject"] == "02"].iloc[0]  # one row of a DataFrame
    anonymous = {k: v for k, v in row.items() if k not in ("subject", "session")}  # a row without identity
    labels = {c: (lambda v: f"{v:02d}") for c in ("subject", "session")}
    untyped = pd.read_csv(CLINICAL, sep="\t").transform(lambda c: c.map(labels[c.name]) if c.name in labels else c)
    for given in (series, anonymous, untyped):  # pandas's own reading: kps 70.0, NaN for empty cells
        assert verdicts(brainmets.indicate(measurement, given)) == verdicts(from_row)
    with pytest.raises(ConfigError, match="it is for subject '01'"):
        brainmets.indicate(measurement, {**row, "subject": "01"})
    with pytest.raises(InputDataError, match="kps"):
        brainmets.indicate(measurement, {**row, "kps": "seventy"})
    strict = brainmets.indicate(measurement, row, thresholds={"surgery_max_lesions": 1})
    assert '"thresholds": {"surgery_max_lesions": 1}' in json.dumps(strict)
    assert '"thresholds": {"surgery_max_lesions": 3}' in json.dumps(from_row)


def test_cohort_tables_are_dataframes_keyed_by_string_labels(tmp_path):
    documents = []
    for subject in ("01", "02"):
        path = tmp_path / f"{subject}.json"
        assert main(["features", str(COHORT / f"sub-{subject}_ses-01_dseg.nii.gz"), "--subject", subject,
                     "--session", "01", "--out-json", str(path)]) == 0  # fmt: skip
        documents.append(path)
    tables = brainmets.cohort(documents)
    assert brainmets.cohort(documents[0]).studies["participant_id"].tolist() == ["sub-01"]  # one path
    assert list(tables.studies["participant_id"]) == ["sub-01", "sub-02"]
    assert tables.studies["participant_id"].dtype == "string"
    assert tables.lesions.groupby("participant_id").size().to_dict() == {"sub-01": 1, "sub-02": 3}


def test_every_api_name_is_the_function_after_any_import():
    """A submodule named like an API function would replace it on the package once imported."""
    import importlib
    import pkgutil

    for module in pkgutil.walk_packages(brainmets.__path__, "brainmets."):
        if not module.name.endswith("__main__"):  # that one runs the command line
            importlib.import_module(module.name)
    for name in brainmets.__all__:
        assert not isinstance(getattr(brainmets, name), type(brainmets)), name


def test_the_package_has_no_import_cycles():
    """Every import between brainmets modules, function-level ones included, goes one way."""
    root = ROOT / "src" / "brainmets"
    modules = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root).with_suffix("").parts
        modules[".".join(("brainmets", *parts)).removesuffix(".__init__")] = path
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
                for alias in node.names:
                    child = f"{target}.{alias.name}"
                    graph[name].add(child if child in modules else target)
    graph = {n: {t for t in targets if t in modules and t != n} for n, targets in graph.items()}
    # a package's __init__ importing its own submodules is not a cycle with them
    cycles, state = [], {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in graph[node]:
            if nxt.startswith(node + ".") or node.startswith(nxt + "."):
                continue
            if state.get(nxt) == "open":
                cycles.append(trail[trail.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_the_readme_python_example_runs_as_written(tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("\n## Python\n") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(ROOT)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert isinstance(namespace["lesions"], pd.DataFrame) and len(namespace["lesions"]) == 3


def test_project_files_agree_on_version_licence_code_and_review():
    import tomllib

    import yaml

    from brainmets.citation import CODE_URL, REVIEW
    from brainmets.indications import RuleSet

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert project["license"]["text"] == citation["license"] == "Apache-2.0"
    assert "Apache License" in (ROOT / "LICENSE").read_text() and "Version 2.0" in (ROOT / "LICENSE").read_text()
    assert citation["version"] == brainmets.__version__
    assert f"## [{brainmets.__version__}]" in (ROOT / "CHANGELOG.md").read_text()
    assert project["urls"]["Source"] == citation["repository-code"] == CODE_URL
    review = citation["references"][0]
    assert review["title"] in REVIEW and all(a["family-names"] in REVIEW for a in review["authors"])
    assert RuleSet.load(None).table["source"] == REVIEW
    assert REVIEW in (ROOT / "README.md").read_text().replace("\n", " ").replace("*", "").replace("<", "").replace(
        ">", ""
    )
