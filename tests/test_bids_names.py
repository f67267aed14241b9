"""brainmets.io.bids: every derivative name, built in one place (the workflow and the CLI use it)."""

from __future__ import annotations

from brainmets.io import bids


def test_a_study_is_named_by_its_entities_with_or_without_a_session():
    assert bids.study_entities("01", "02") == "sub-01_ses-02"
    assert bids.study_entities("01") == bids.study_entities("01", "") == "sub-01"
    assert bids.study_dir("01", "02") == "sub-01/ses-02" and bids.study_dir("01", "") == "sub-01"
    assert (
        bids.study_file("res", "01", "02", bids.FEATURES)
        == "res/sub-01/ses-02/anat/sub-01_ses-02_desc-brainmets_features.json"
    )
    assert (
        bids.study_file("/abs/res", "7", None, bids.INSTANCES) == "/abs/res/sub-7/anat/sub-7_desc-lesions_dseg.nii.gz"
    )


def test_subject_log_and_group_names():
    assert bids.subject_file("res", "10", bids.FOLLOWUP) == "res/sub-10/sub-10_desc-followup.json"
    assert bids.file_name("sub-10", bids.LESION_TRACKS_TSV) == "sub-10_desc-lesiontracks_followup.tsv"
    assert bids.file_name("sub-10", bids.RESPONSES_TSV) == "sub-10_desc-responses_followup.tsv"
    assert bids.study_log("res", "features", "01", "02") == "res/logs/features/sub-01/ses-02/sub-01_ses-02.log"
    assert bids.study_log("res", "compare", "01") == "res/logs/compare/sub-01/sub-01.log"
    assert bids.subject_log("res", "followup", "10") == "res/logs/followup/sub-10.log"
    assert bids.batch_log("res", "features", "0003") == "res/logs/features/batch-0003.log"
    assert bids.rule_log("res", "cohort") == "res/logs/cohort.log"
    assert bids.group_file("res", bids.figure_name("swimmer")) == "res/group/swimmer.png"


def test_the_feature_suffixes_are_what_features_writes_beside_its_status_document():
    assert bids.FEATURE_SUFFIXES == (
        "desc-brainmets_features.json",
        "desc-lesions_features.tsv",
        "desc-lesions_features.json",
        "desc-lesions_dseg.nii.gz",
        "desc-lesions_dseg.tsv",
        "desc-lesions_dseg.json",
    )


def test_entities_are_read_back_from_a_name():
    assert bids.entities_of("sub-01_ses-01_desc-brainmets_status.json") == "sub-01_ses-01"
    assert bids.entities_of("sub-10_desc-followup_status.json") == "sub-10"
    assert bids.entities_of("notes.txt") == "notes.txt"


def test_the_name_patterns_match_the_names():
    import re

    for subject, session in (("01", "02"), ("a1", None)):
        assert re.fullmatch(bids.STUDY_PATTERN, bids.study_entities(subject, session))
        assert re.fullmatch(bids.STUDY_DIR_PATTERN, bids.study_dir(subject, session))
    assert not re.fullmatch(bids.STUDY_PATTERN, "sub-c_3")
