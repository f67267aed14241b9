"""The Python API (brainmets.api): the same answers as the command line, DataFrames for notebooks, and the
README's Python example run as written."""

from __future__ import annotations

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


def test_cohort_gathers_comparison_documents_as_their_own_tables_show_them(tmp_path):
    """brainmets.cohort(comparison=...) holds the comparison's rows as the Comparison's own tables do (and as
    ``brainmets cohort --out-comparison-*`` writes them), keyed by string labels."""
    from brainmets.io.writers import write_json

    comparison = brainmets.compare(DEMO.segmentation, DEMO.prediction, subject="02", session="01")
    path = tmp_path / "comparison.json"
    write_json(path, comparison.document)
    tables = brainmets.cohort(comparison=path)
    assert repr(tables) == "<Cohort: 0 studies of 0 subjects, 0 lesions, 1 comparison>"
    assert tables.comparison_studies["participant_id"].tolist() == ["sub-02"]
    assert tables.comparison_studies["session_id"].dtype == "string"
    mine = comparison.studies.reset_index(drop=True)
    theirs = tables.comparison_studies.drop(columns=["participant_id", "session_id"])
    assert theirs.loc[0, "et_lesionwise_dice"] == mine.loc[0, "et_lesionwise_dice"]
    assert len(tables.comparison_lesions) == len(comparison.lesions) == len(comparison.document["lesions"])
    detection = comparison.detection_by_size.reset_index()
    assert tables.comparison_detection[["region", "bin", "reference_lesions", "detected", "false_positives"]].equals(
        detection[["region", "bin", "reference_lesions", "detected", "false_positives"]]
    )
    both_sides = comparison.lesion_table.reset_index()
    assert len(tables.comparison_lesion_table) == len(both_sides) == len(comparison.document["lesion_table"]) > 0
    assert tables.comparison_lesion_table["volume_mm3"].tolist() == both_sides["volume_mm3"].tolist()
    assert tables.comparison_detection["detected"].sum() == sum(
        e["detected"] for entries in comparison.document["metrics"]["detection_by_size"].values() for e in entries
    )


def test_every_api_name_is_the_function_after_any_import():
    """A submodule named like an API function would replace it on the package once imported."""
    import importlib
    import pkgutil

    for module in pkgutil.walk_packages(brainmets.__path__, "brainmets."):
        if not module.name.endswith("__main__"):  # that one runs the command line
            importlib.import_module(module.name)
    for name in brainmets.__all__:
        assert not isinstance(getattr(brainmets, name), type(brainmets)), name
    # the package's lazy list (kept so that `brainmets --version` imports no API) is the API's own
    assert set(brainmets.__all__) - {"__version__"} == set(brainmets.api.__all__)


def readme_python_example(page: str = "README.md") -> str:
    """The first Python example of the README (or of another page, e.g. docs/python-api.md), as written."""
    return re.search(r"```python\n(.*?)```", (ROOT / page).read_text(encoding="utf-8"), re.S).group(1)


def test_the_readme_python_example_runs_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # anywhere: the demo's paths are the package's
    exec(compile(readme_python_example(), "README.md", "exec"), {})
    assert capsys.readouterr().out == "<Measurement sub-02 ses-01: 3 lesions, 1.72 mL, scheme brats-mets-2023>\n"


def test_the_python_api_page_example_runs_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(readme_python_example("docs/python-api.md"), "docs/python-api.md", "exec"), namespace)
    assert isinstance(namespace["lesions"], pd.DataFrame) and len(namespace["lesions"]) == 3
    printed = capsys.readouterr().out
    assert printed.startswith("<Measurement sub-02 ses-01: 3 lesions, 1.72 mL, scheme brats-mets-2023>\n")
    assert "infratentorial" in printed and "PR" in printed


def test_project_files_agree_on_version_licence_code_and_review():
    import tomllib

    import yaml

    from brainmets.citation import CODE_URL, REVIEW
    from brainmets.indications import RuleSet

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert project["license"] == citation["license"] == "Apache-2.0"  # the SPDX string form (setuptools >= 77)
    assert not any(c.startswith("License ::") for c in project.get("classifiers", []))
    assert "Apache License" in (ROOT / "LICENSE").read_text() and "Version 2.0" in (ROOT / "LICENSE").read_text()
    assert citation["version"] == brainmets.__version__
    assert f"## [{brainmets.__version__}]" in (ROOT / "CHANGELOG.md").read_text()
    assert project["urls"]["Source"] == citation["repository-code"] == CODE_URL
    review = citation["references"][0]
    assert review["title"] in REVIEW and all(a["family-names"] in REVIEW for a in review["authors"])
    assert RuleSet.load(None).table["source"] == REVIEW
    # the README's citation of the review is the code's, word for word (Markdown emphasis and <link> aside)
    citation = (ROOT / "README.md").read_text(encoding="utf-8").split("\n## Citation\n", 1)[1].split("\n## ", 1)[0]
    assert REVIEW in re.sub(r"[*<>]", "", " ".join(citation.split()))


DEMO = brainmets.datasets.demo()
API_FUNCTIONS = ("measure", "locate", "indicate", "cohort", "follow_up", "compare", "load_config")


def _unrounded(value, out):
    """Every float of ``value`` (nested) that has more than the files' 6 significant digits."""
    if isinstance(value, dict):
        for v in value.values():
            _unrounded(v, out)
    elif isinstance(value, list | tuple):
        for v in value:
            _unrounded(v, out)
    elif isinstance(value, float) and value == value and value != float(f"{value:.6g}"):
        out.append(value)
    return out


def _frame_floats(frame: pd.DataFrame) -> list:
    cells = frame.reset_index().to_dict(orient="list")
    return _unrounded(cells, [])


def test_dir_lists_the_api_without_importing_it():
    import subprocess
    import sys

    code = (
        "import sys, brainmets; names = dir(brainmets); print(sorted(names)); "
        "print('brainmets.api' in sys.modules, 'brainmets.datasets' in sys.modules)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    names, imported = run.stdout.splitlines()
    for name in (*brainmets.__all__, "FollowUp", "Comparison", "datasets", "__version__", "__all__"):
        assert repr(name) in names, name
    assert imported == "False False"  # dir() alone imports neither (brainmets --version stays fast)
    assert set(brainmets.__all__) <= set(dir(brainmets)) and "datasets" not in brainmets.__all__
    assert brainmets.datasets.demo is brainmets.datasets.demo  # the submodule, reached as an attribute


def test_result_reprs_are_one_short_line_and_notebooks_show_the_lesions(tmp_path):
    measurement = brainmets.measure(DEMO.segmentation, subject="02", session="01")
    anonymous = brainmets.measure(DEMO.segmentation)
    document = tmp_path / "features.json"
    document.write_text(json.dumps(measurement.document))
    tables = brainmets.cohort([document])
    follow = brainmets.follow_up(DEMO.studies, subject="10")
    comparison = brainmets.compare(DEMO.segmentation, DEMO.prediction, subject="02", session="01")
    assert repr(measurement) == "<Measurement sub-02 ses-01: 3 lesions, 1.72 mL, scheme brats-mets-2023>"
    assert repr(anonymous) == "<Measurement sub-02_ses-01_dseg.nii.gz: 3 lesions, 1.72 mL, scheme brats-mets-2023>"
    assert repr(tables) == "<Cohort: 1 study of 1 subject, 3 lesions>"
    assert (
        repr(follow) == "<FollowUp sub-10: 2 sessions 2024-01-10 to 2024-03-20, 2 lesion tracks, RANO-BM PR at ses-02>"
    )
    assert repr(comparison).startswith(
        "<Comparison sub-02 ses-01: 3 reference vs 3 predicted lesions (2 matched, 1 invented, 1 missed); "
        "lesion-wise Dice et 0.439"
    )
    for result in (measurement, anonymous, tables, follow, comparison):
        text = repr(result)
        assert "\n" not in text and len(text) <= 200 and text.endswith(">"), text
        assert "array" not in text and "DataFrame" not in text
        page = result._repr_html_()
        assert page.startswith("<p><code>&lt;") and "<table" in page
    assert "<th>lesion_id</th>" in measurement._repr_html_() and "0.918" in measurement._repr_html_()
    assert "<th>track_id</th>" in follow._repr_html_() and "<th>agreement</th>" in comparison._repr_html_()
    from brainmets.display import one_line

    long = one_line("<Measurement " + "x" * 300 + ">")
    assert len(long) == 200 and long.endswith("...>")
    custom = brainmets.measure(DEMO.segmentation, label_scheme={"core": [1, 3], "edema": [2], "cavity": [4]})
    assert len(repr(custom)) <= 200 and "\n" not in repr(custom)


def test_indicate_takes_the_subject_from_the_clinical_row():
    anonymous = brainmets.measure(DEMO.segmentation)  # no subject, no session
    named = brainmets.measure(DEMO.segmentation, subject="02", session="01")
    table = pd.read_csv(DEMO.clinical, sep="\t", dtype=str, keep_default_na=False)
    expected = brainmets.indicate(named, DEMO.clinical)
    for row in (table.iloc[0], table.iloc[0].to_dict()):
        result = brainmets.indicate(anonymous, row)
        assert (result["subject"], result["session"]) == ("02", "01")
        assert result["provenance"]["clinical_row_found"] is True
        assert {m: e["status"] for m, e in result["modalities"].items()} == {
            m: e["status"] for m, e in expected["modalities"].items()
        }
        assert result["missing_inputs"] == expected["missing_inputs"] and "kps" not in result["missing_inputs"]
    with pytest.raises(ConfigError, match="give the subject"):  # a table: which row would be the study's?
        brainmets.indicate(anonymous, DEMO.clinical)
    with pytest.raises(ConfigError, match="give the subject"):  # a row naming no subject either
        brainmets.indicate(anonymous, {k: v for k, v in table.iloc[0].items() if k != "subject"})


def test_follow_up_of_a_sheet_of_several_subjects_asks_for_subject(tmp_path):
    sheet = tmp_path / "studies.tsv"
    sheet.write_text(DEMO.studies.read_text())  # it has a prediction column, as the workflow's sheet does
    rows = pd.read_csv(DEMO.studies, sep="\t", dtype=str, keep_default_na=False)
    rows["segmentation"] = [str(DEMO.folder / name) for name in rows["segmentation"]]  # rows: paths as given
    for timeline, source in ((DEMO.studies, str(DEMO.studies)), (sheet, str(sheet)), (rows, "timeline")):
        with pytest.raises(
            InputDataError, match=r"more than one subject in one timeline: 02, 10; .*subject="
        ) as caught:
            brainmets.follow_up(timeline)
        assert "prediction" not in str(caught.value) and caught.value.path == source
    assert brainmets.follow_up(rows, subject="10")["subject"] == "10"
    with pytest.raises(InputDataError, match="no session of subject '99'"):
        brainmets.follow_up(sheet, subject="99")


def test_follow_up_gives_an_object_with_its_document_and_tables():
    from brainmets.api import FollowUp
    from brainmets.io.writers import to_jsonable

    follow = brainmets.follow_up(DEMO.studies, subject="10")
    assert isinstance(follow, FollowUp) and isinstance(follow.document, dict)
    assert follow["tracks"] is follow.document["tracks"] and follow.get("nothing") is None
    assert follow == follow.document and dict(follow) == follow.document and "facts" in follow
    assert to_jsonable(follow) == to_jsonable(follow.document)  # what brainmets followup writes
    json.dumps(follow.document)
    lesions, tracks, responses, changes = follow.lesions, follow.tracks, follow.responses, follow.changes
    assert lesions.index.names == ["session", "track_id"] and len(lesions) == len(follow["lesions"]) == 4
    assert lesions.loc[("01", 1), "volume_ml"] == follow["lesions"][0]["volume_ml"] == 3.134
    assert lesions.loc[("02", 1), "event"] == "persisting"
    assert tracks.index.name == "track_id" and list(tracks.index) == [1, 2]
    assert tracks.loc[1, ["first_volume_ml", "last_volume_ml", "sessions"]].tolist() == [3.134, 0.5425, 2]
    assert tracks.loc[1, "volume_change_percent"] == pytest.approx(-82.69, abs=0.01)
    assert tracks.loc[1, "treatments"] == ["srs after 01"] and not tracks["grew_beyond_noise"].any()
    assert responses.index.name == "session" and list(responses.index) == ["01", "02"]
    assert responses["response"].tolist() == ["baseline", "PR"]
    assert responses["volumetric_response"].tolist() == [v["response"] for v in follow["volumetric_response"]]
    assert changes.index.names == ["track_id", "from_session", "to_session"] and len(changes) == 2
    assert changes.loc[(2, "01", "02"), "days"] == 70
    latest = brainmets.measure(DEMO.segmentations[-1], subject="10", session="02")
    assert brainmets.indicate(latest, followup=follow)["followup"]["session"] == "02"  # the object, as a document
    import pickle

    assert pickle.loads(pickle.dumps(follow)) == follow


def test_compare_gives_an_object_with_its_document_and_tables():
    from brainmets.api import Comparison

    result = brainmets.compare(DEMO.segmentation, DEMO.prediction, subject="02", session="01", clinical=DEMO.clinical)
    assert isinstance(result, Comparison) and result["metrics"]["mode"] == "brats2025"
    assert result == result.document and result["lesions"] is result.document["lesions"]
    lesions = result.lesions
    assert lesions.index.name == "group" and list(lesions.index) == [1, 2, 3, 4]
    assert lesions["agreement"].tolist() == [e["agreement"] for e in result["lesions"]]
    assert lesions.loc[4, "reference_lesion_ids"] == [2] and lesions.loc[2, "prediction_lesion_ids"] == [2]
    studies = result.studies
    assert studies.index.names == ["subject", "session"] and list(studies.index) == [("02", "01")]
    assert studies.loc[("02", "01"), "missed_lesion_count"] == 1
    assert studies.loc[("02", "01"), "verdict_changes"] == len(result["indications"]["changes"])
    assert studies.loc[("02", "01"), "et_f1"] == pytest.approx(result["metrics"]["regions"]["et"]["rq"])
    study = result.study
    assert list(study.columns) == ["reference", "prediction", "difference"]
    assert study.loc["lesion_count"].tolist() == [3, 3, 0]
    assert set(result.metrics.index) == set(result["metrics"]["regions"]) >= {"et", "tc", "wt"}
    assert result.metrics.loc["et", "tp"] == result["metrics"]["regions"]["et"]["tp"]


def test_dataframes_are_rounded_as_the_files_are():
    measurement = brainmets.measure(DEMO.segmentation, subject="02", session="01")
    follow = brainmets.follow_up(DEMO.studies, subject="10")
    comparison = brainmets.compare(DEMO.segmentation, DEMO.prediction, subject="02", session="01")
    # the documents keep full precision (the files round when written) ...
    assert _unrounded(measurement.document["lesions"], []) and _unrounded(follow.document["lesions"], [])
    assert _unrounded(comparison.document["study"], [])
    # ... the tables show what the files hold
    frames = [measurement.lesions, follow.lesions, follow.tracks, follow.changes, follow.responses]
    frames += [comparison.lesions, comparison.studies, comparison.study, comparison.metrics]
    for frame in frames:
        assert _frame_floats(frame) == [], frame.columns
    difference = comparison.document["study"]["total_edema_volume_ml"]["difference"]
    assert difference != -2.732 and comparison.study.loc["total_edema_volume_ml", "difference"] == -2.732
    assert measurement.lesions.loc[1, "mesh_volume_ml"] == 0.905333  # 0.9053333333333263 in the document


def test_cohort_documentation_names_every_table_it_returns():
    import dataclasses

    from brainmets.api import Cohort

    names = [f.name for f in dataclasses.fields(Cohort)]
    assert names == ["lesions", "studies", "indications", "status", "lesion_tracks", "responses",
                     "comparison_lesions", "comparison_studies", "comparison_detection", "comparison_lesion_table"]  # fmt: skip
    for name in names:
        assert f"``{name}``" in brainmets.cohort.__doc__ and f"``{name}``" in Cohort.__doc__, name
    assert "ten" in brainmets.cohort.__doc__ and "nine" not in brainmets.cohort.__doc__
    empty = brainmets.cohort()
    assert all(getattr(empty, n).empty for n in names) and "participant_id" in empty.lesion_tracks.columns


def test_every_public_function_documents_what_it_returns_and_raises_with_an_example_that_runs():
    import doctest

    from brainmets import api, datasets

    for name in API_FUNCTIONS:
        doc = getattr(api, name).__doc__
        assert "Returns:" in doc and "Raises:" in doc and "Example::" in doc and ">>> " in doc, name
    assert "Returns:" in datasets.demo.__doc__ and ">>> " in datasets.demo.__doc__
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    for module in (api, datasets):
        result = doctest.testmod(module, extraglobs={"brainmets": brainmets}, optionflags=flags, report=True)
        assert result.failed == 0 and result.attempted >= (20 if module is api else 3), module.__name__
