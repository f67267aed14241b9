"""brainmets.workflow.studies: the studies sheet read into the studies frame (paths resolved, BIDS names,
duplicates and bad labels refused), BIDS-folder discovery, followed subjects and source datasets; no Snakemake."""

from __future__ import annotations

import json

import pytest

from brainmets.config import validate_config
from brainmets.errors import ConfigError
from brainmets.workflow.studies import (
    OPTIONAL_COLUMNS,
    discover_bids,
    followed_subjects,
    load_studies,
    prepare,
    read_studies,
    source_datasets,
    with_demo,
)
from tests.conftest import ROOT

SCHEMA = ROOT / "workflow" / "schemas" / "studies.schema.yaml"
PATTERNS = validate_config({})["bids"]


def write_sheet(folder, text: str):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "studies.tsv").write_text(text, encoding="utf-8")
    return folder / "studies.tsv"


def test_a_sheet_becomes_the_studies_frame_with_paths_resolved_and_bids_names(tmp_path):
    sheet = write_sheet(
        tmp_path / "sheets",
        "subject\tsession\tsegmentation\tparcellation\tatlas\tdate\n"
        "# a comment line\n"
        "01\t01\tseg/a.nii.gz\taseg.nii.gz\tsri24\t2024-01-01\n"
        "02\t\t/data/b.nii.gz\t\t\t\n",
    )
    studies = read_studies(sheet, SCHEMA)
    assert list(studies.index) == ["sub-01_ses-01", "sub-02"]
    assert list(studies["studydir"]) == ["sub-01/ses-01", "sub-02"]
    first, second = studies.loc["sub-01_ses-01"], studies.loc["sub-02"]
    assert first["segmentation"] == str(tmp_path / "sheets" / "seg" / "a.nii.gz")
    assert first["parcellation"] == str(tmp_path / "sheets" / "aseg.nii.gz")
    assert first["atlas"] == "sri24"  # a definition's name, not a file: left alone
    assert second["segmentation"] == "/data/b.nii.gz" and second["parcellation"] == ""
    assert all(column in studies for column in OPTIONAL_COLUMNS)
    assert second["session"] == "" and second["prediction"] == "" and second["template"] == ""


def test_a_sheet_listing_a_study_twice_is_refused(tmp_path):
    sheet = write_sheet(
        tmp_path, "subject\tsession\tsegmentation\n01\t01\ta.nii.gz\n01\t01\tb.nii.gz\n02\t\tc.nii.gz\n"
    )
    with pytest.raises(ValueError) as error:
        read_studies(sheet, SCHEMA)
    assert str(error.value) == f"{sheet}: studies listed more than once: sub-01_ses-01"


def test_a_bad_label_in_the_sheet_is_one_line_naming_row_and_column(tmp_path):
    sheet = write_sheet(tmp_path, "subject\tsegmentation\n01\ta.nii.gz\n0-3\tb.nii.gz\n")
    with pytest.raises(ConfigError) as error:
        read_studies(sheet, SCHEMA)
    assert str(error.value).startswith(f"{sheet}: row 2 (subject 0-3), column subject: '0-3' is not allowed")


def test_prepare_refuses_labels_that_are_not_bids_labels():
    import pandas as pd

    frame = pd.DataFrame([{"subject": "c_3", "segmentation": "a.nii.gz"}], dtype=str)
    with pytest.raises(ConfigError, match="^bids_dir: subject 'c_3' is not a BIDS label"):
        prepare(frame, "bids_dir")
    frame = pd.DataFrame([{"subject": "c3", "session": "pre.op", "segmentation": "a.nii.gz"}], dtype=str)
    with pytest.raises(ConfigError, match="^s.tsv: session 'pre.op' is not a BIDS label"):
        prepare(frame, "s.tsv")


def _bids_folder(root):
    """sub-a1 with a session (segmentation, parcellation, T1), sub-b2 without one, sub-c3 without a segmentation."""
    files = [
        "sub-a1/ses-pre/anat/sub-a1_ses-pre_dseg.nii.gz",
        "sub-a1/ses-pre/anat/sub-a1_ses-pre_desc-aseg_dseg.nii.gz",
        "sub-a1/ses-pre/anat/sub-a1_ses-pre_T1w.nii.gz",
        "sub-b2/anat/sub-b2_dseg.nii.gz",
        "sub-c3/anat/sub-c3_T1w.nii.gz",
        "derivatives/sub-x/anat/sub-x_dseg.nii.gz",  # not a study folder
    ]
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")
    return root


def test_bids_discovery_finds_one_study_per_anat_folder(tmp_path):
    root = _bids_folder(tmp_path / "bids")
    found = discover_bids(root, PATTERNS)
    anat = root / "sub-a1" / "ses-pre" / "anat"
    assert found.to_dict("records") == [
        {
            "subject": "a1",
            "session": "pre",
            "segmentation": str(anat / "sub-a1_ses-pre_dseg.nii.gz"),
            "parcellation": str(anat / "sub-a1_ses-pre_desc-aseg_dseg.nii.gz"),
            "subject_image": str(anat / "sub-a1_ses-pre_T1w.nii.gz"),
        },
        {
            "subject": "b2",
            "session": "",
            "segmentation": str(root / "sub-b2" / "anat" / "sub-b2_dseg.nii.gz"),
            "parcellation": "",
            "subject_image": "",
        },
    ]
    studies = load_studies(validate_config({"bids_dir": str(root)}), SCHEMA)
    assert list(studies.index) == ["sub-a1_ses-pre", "sub-b2"]
    assert list(studies["studydir"]) == ["sub-a1/ses-pre", "sub-b2"]


def test_bids_discovery_refuses_two_segmentations_and_an_empty_folder(tmp_path):
    root = _bids_folder(tmp_path / "bids")
    (root / "sub-b2" / "anat" / "sub-b2_desc-other_dseg.nii.gz").write_bytes(b"")
    with pytest.raises(ValueError) as error:
        discover_bids(root, PATTERNS)
    assert str(error.value) == (
        f"{root / 'sub-b2' / 'anat'}: more than one segmentation matches '*_dseg.nii.gz': "
        "sub-b2_desc-other_dseg.nii.gz, sub-b2_dseg.nii.gz"
    )
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"no segmentation matching '\*_dseg.nii.gz' in sub-\*/\[ses-\*/\]anat/"):
        discover_bids(tmp_path / "empty", PATTERNS)


def test_the_config_names_either_a_sheet_or_a_bids_folder(tmp_path):
    message = "config: give either `studies` (a studies sheet) or `bids_dir` (a BIDS-like folder)"
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_studies(validate_config({}), SCHEMA)
    with pytest.raises(ValueError, match="give either"):
        load_studies(validate_config({"studies": "s.tsv", "bids_dir": "b"}), SCHEMA)


def test_followed_subjects_are_those_with_two_dated_sessions(tmp_path):
    sheet = write_sheet(
        tmp_path,
        "subject\tsession\tsegmentation\tdate\n"
        "10\t02\ta.nii.gz\t2024-03-01\n"
        "10\t01\ta.nii.gz\t2024-01-01\n"
        "11\t01\ta.nii.gz\t2024-01-01\n"
        "11\t02\ta.nii.gz\t\n"
        "12\t\ta.nii.gz\t\n"
        "13\t01\ta.nii.gz\t2024-01-01\n"
        "13\t02\ta.nii.gz\t2024-02-01\n"
        "13\t03\ta.nii.gz\t2024-03-01\n",
    )
    config = validate_config({"studies": str(sheet)})
    studies = load_studies(config, SCHEMA)
    assert followed_subjects(config, studies) == {
        "10": ["sub-10_ses-02", "sub-10_ses-01"],  # sheet order: the follow-up sorts them by date
        "13": ["sub-13_ses-01", "sub-13_ses-02", "sub-13_ses-03"],
    }
    assert followed_subjects({**config, "studies": None, "bids_dir": "b"}, studies) == {}  # no dates


def test_source_datasets_add_a_bids_folders_doi(tmp_path):
    config = validate_config({"bids_dir": str(tmp_path), "source_datasets": ["https://example.org/data"]})
    assert source_datasets(config) == ["https://example.org/data"]
    (tmp_path / "dataset_description.json").write_text(json.dumps({"DatasetDOI": "10.1234/abc"}))
    assert source_datasets(config) == ["https://example.org/data", "doi:10.1234/abc"]
    (tmp_path / "dataset_description.json").write_text(json.dumps({"DatasetDOI": "doi:10.1234/abc"}))
    assert source_datasets(config) == ["https://example.org/data", "doi:10.1234/abc"]
    (tmp_path / "dataset_description.json").write_text("{not json")
    with pytest.raises(ValueError, match="dataset_description.json: not valid JSON"):
        source_datasets(config)
    assert source_datasets(validate_config({"studies": "s.tsv"})) == []


def test_the_demo_fills_only_a_config_without_studies(tmp_path):
    demo = tmp_path / "demo.yaml"
    demo.write_text("studies: test_data/cohort/studies.tsv\nclinical: test_data/cohort/clinical.tsv\n")
    config = {"studies": None, "bids_dir": None, "clinical": "mine.tsv"}
    assert with_demo(config, demo) is True
    assert config == {"studies": "test_data/cohort/studies.tsv", "bids_dir": None, "clinical": "mine.tsv"}
    mine = {"studies": "my.tsv", "clinical": None}
    assert with_demo(mine, demo) is False and mine == {"studies": "my.tsv", "clinical": None}
    assert with_demo({"studies": None}, tmp_path / "absent.yaml") is False
