"""brainmets.workflow.plan and .jobs: a run's file names, logs and batches, and the exact arguments and output
names of each `brainmets batch` jobs document, for a small studies frame (with and without a session, a label
scheme, a parcellation, a prediction, dated sessions, study pictures on and off); no Snakemake."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from brainmets.config import validate_config
from brainmets.io import bids
from brainmets.workflow import jobs
from brainmets.workflow.plan import Plan, batches
from brainmets.workflow.studies import prepare

ROWS = [
    {"subject": "01", "session": "01", "segmentation": "/d/s01.nii.gz", "label_scheme": "brats-2021",
     "parcellation": "/d/aseg.nii.gz", "prediction": "/d/p01.nii.gz"},
    {"subject": "02", "segmentation": "/d/s02.nii.gz", "subject_image": "/d/t1.nii.gz", "template": "sri24",
     "atlas_dir": "/d/atlas"},
    {"subject": "10", "session": "01", "segmentation": "/d/s10a.nii.gz", "date": "2024-01-01"},
    {"subject": "10", "session": "02", "segmentation": "/d/s10b.nii.gz", "date": "2024-03-01",
     "transform": "/d/t.txt", "posterior_fossa_mask": "/d/pf.nii.gz"},
]  # fmt: skip


def make_plan(**config) -> Plan:
    settings = {"studies": "/d/studies.tsv", "results_dir": "res", "batch_size": 2, "clinical": "/d/clinical.tsv"}
    studies = prepare(pd.DataFrame(ROWS, dtype=str).fillna(""), "/d/studies.tsv")
    return Plan(validate_config({**settings, **config}), studies)


@pytest.fixture
def plan() -> Plan:
    return make_plan()


def sections(plan: Plan, *names: str) -> str:
    return json.dumps({name: plan.config[name] for name in names}, sort_keys=True)


def test_batches_keep_the_order_and_number_from_0001():
    assert batches(list("abcde"), 2) == {"0001": ["a", "b"], "0002": ["c", "d"], "0003": ["e"]}
    assert batches(list("abc"), 25) == {"0001": ["a", "b", "c"]}
    assert batches([], 3) == {}
    assert list(batches([str(n) for n in range(10_001)], 1))[-1] == "10001"


def test_the_plan_batches_studies_subjects_and_comparisons(plan):
    assert plan.names == ["sub-01_ses-01", "sub-02", "sub-10_ses-01", "sub-10_ses-02"]
    assert plan.study_batches == {"0001": ["sub-01_ses-01", "sub-02"], "0002": ["sub-10_ses-01", "sub-10_ses-02"]}
    assert plan.followed == {"10": ["sub-10_ses-01", "sub-10_ses-02"]}
    assert plan.latest == {"sub-10_ses-02": "10"}
    assert plan.subject_batches == {"0001": ["10"]}
    assert plan.compared == ["sub-01_ses-01"]
    assert plan.compare_batches == {"0001": ["sub-01_ses-01"]}
    assert make_plan(batch_size=1).study_batches["0004"] == ["sub-10_ses-02"]


def test_the_plan_names_every_file_and_log(plan):
    assert (
        plan.study_file("sub-01_ses-01", bids.STATUS)
        == "res/sub-01/ses-01/anat/sub-01_ses-01_desc-brainmets_status.json"
    )
    assert plan.study_file("sub-02", bids.OVERLAY) == "res/sub-02/anat/sub-02_desc-lesions_overlay.png"
    assert plan.all_study_files(bids.INDICATIONS)[1:3] == [
        "res/sub-02/anat/sub-02_desc-brainmets_indications.json",
        "res/sub-10/ses-01/anat/sub-10_ses-01_desc-brainmets_indications.json",
    ]
    assert plan.subject_file("10", bids.FOLLOWUP_STATUS) == "res/sub-10/sub-10_desc-followup_status.json"
    assert plan.followup_files(bids.SPIDER) == ["res/sub-10/sub-10_desc-followup_spider.png"]
    assert plan.study_log("features", "sub-01_ses-01") == "res/logs/features/sub-01/ses-01/sub-01_ses-01.log"
    assert plan.study_log("compare", "sub-02") == "res/logs/compare/sub-02/sub-02.log"
    assert plan.subject_log("followup", "10") == "res/logs/followup/sub-10.log"
    assert plan.batch_log("indications", "0002") == "res/logs/indications/batch-0002.log"
    assert plan.rule_log("cohort") == "res/logs/cohort.log"
    assert plan.group_file(bids.FRONT_PAGE) == "res/group/summary.rst"
    tables = plan.group_tables()
    assert len(tables) == 30 and tables["lesions_tsv"] == "res/group/lesions.tsv"
    assert tables["comparison_studies_parquet"] == "res/group/comparison_studies.parquet"
    assert tables["comparison_detection_tsv"] == "res/group/comparison_detection.tsv"
    assert tables["comparison_lesion_table_tsv"] == "res/group/comparison_lesion_table.tsv"
    assert plan.cohort_figures() == {name: f"res/group/{name}.png" for name in
                                     ("lesion_size", "volume_vs_count", "location", "indications", "swimmer", "comparison",
                                      "detection_by_size")}  # fmt: skip
    assert plan.dataset_files() == {"description": "res/dataset_description.json", "bidsignore": "res/.bidsignore",
                                    "readme": "res/README.md"}  # fmt: skip
    assert (
        Plan(plan.config, plan.studies, "elsewhere/").study_file("sub-02", bids.STATUS).startswith("elsewhere//sub-02/")
    )


def test_batch_messages_name_the_batch_its_span_and_its_logs(plan):
    assert plan.batch_message("features", "0001", ["sub-01_ses-01", "sub-02"]) == (
        "brainmets features, batch 0001: 2 studies (sub-01_ses-01 to sub-02); logs under res/logs/features/"
    )
    assert plan.batch_message("indications", "0002", ["sub-10_ses-01"]) == (
        "brainmets indicate, batch 0002: 1 studies (sub-10_ses-01); logs under res/logs/indications/"
    )
    assert plan.batch_message("followup", "0001", ["10", "11"]) == (
        "brainmets followup, batch 0001: 2 subjects (sub-10 to sub-11); logs under res/logs/followup/"
    )


def test_feature_jobs_give_each_study_its_arguments_and_outputs(plan):
    document = json.loads(jobs.feature_jobs(plan, ["sub-01_ses-01", "sub-02"], 3))
    assert document == {
        "command": "features",
        "common": ["--config-json", sections(plan, "anatomy", "dicom", "features"), "--threads", "3"],
        "studies": [
            {
                "args": [
                    "/d/s01.nii.gz", "--subject", "01", "--session", "01", "--scheme", "brats-2021",
                    "--parcellation", "/d/aseg.nii.gz",
                    "--out-json", "res/sub-01/ses-01/anat/sub-01_ses-01_desc-brainmets_features.json",
                    "--out-tsv", "res/sub-01/ses-01/anat/sub-01_ses-01_desc-lesions_features.tsv",
                    "--out-instances", "res/sub-01/ses-01/anat/sub-01_ses-01_desc-lesions_dseg.nii.gz",
                    "--out-figure", "res/sub-01/ses-01/anat/sub-01_ses-01_desc-lesions_overlay.png",
                    "--out-viewer", "res/sub-01/ses-01/anat/sub-01_ses-01_desc-lesions_viewer.html",
                    "--status-json", "res/sub-01/ses-01/anat/sub-01_ses-01_desc-brainmets_status.json",
                    "--figure-max-panels", "12",
                ],
                "log": "res/logs/features/sub-01/ses-01/sub-01_ses-01.log",
            },
            {
                "args": [
                    "/d/s02.nii.gz", "--subject", "02", "--subject-image", "/d/t1.nii.gz", "--atlas-dir", "/d/atlas",
                    "--template", "sri24", "--image", "/d/t1.nii.gz",
                    "--out-json", "res/sub-02/anat/sub-02_desc-brainmets_features.json",
                    "--out-tsv", "res/sub-02/anat/sub-02_desc-lesions_features.tsv",
                    "--out-instances", "res/sub-02/anat/sub-02_desc-lesions_dseg.nii.gz",
                    "--out-figure", "res/sub-02/anat/sub-02_desc-lesions_overlay.png",
                    "--out-viewer", "res/sub-02/anat/sub-02_desc-lesions_viewer.html",
                    "--status-json", "res/sub-02/anat/sub-02_desc-brainmets_status.json",
                    "--figure-max-panels", "12",
                ],
                "log": "res/logs/features/sub-02/sub-02.log",
            },
        ],
    }  # fmt: skip
    text = jobs.feature_jobs(plan, ["sub-02"], 1)
    assert ", " not in text.split('"studies"')[1]  # compact: a batch of 10,000 studies stays small


def test_feature_jobs_without_study_figures_draw_no_picture():
    plan = make_plan(study_figures=False)
    args = json.loads(jobs.feature_jobs(plan, ["sub-02"], 1))["studies"][0]["args"]
    assert "--out-figure" not in args and args[-2:] == [
        "--status-json",
        "res/sub-02/anat/sub-02_desc-brainmets_status.json",
    ]
    assert not any(a.endswith(".png") for a in args)


def test_feature_batches_depend_on_their_inputs_and_may_need_a_template(plan):
    assert jobs.batch_inputs(plan, ["sub-01_ses-01", "sub-02"]) == [
        "/d/s01.nii.gz", "/d/aseg.nii.gz", "/d/s02.nii.gz", "/d/t1.nii.gz",
    ]  # fmt: skip
    assert jobs.batch_inputs(plan, ["sub-10_ses-02"]) == ["/d/s10b.nii.gz", "/d/pf.nii.gz"]
    assert jobs.uses_template(plan, ["sub-01_ses-01"]) is False
    assert jobs.uses_template(plan, ["sub-01_ses-01", "sub-02"]) is True
    assert jobs.uses_template(make_plan(anatomy={"template": "sri24"}), ["sub-01_ses-01"]) is True


def test_indication_jobs_use_the_latest_sessions_follow_up_and_the_clinical_table(plan):
    document = json.loads(jobs.indication_jobs(plan, ["sub-10_ses-01", "sub-10_ses-02"]))
    assert document["command"] == "indicate"
    assert document["common"] == ["--clinical", "/d/clinical.tsv", "--config-json", sections(plan, "indications")]
    anat = "res/sub-10/ses-02/anat/sub-10_ses-02"
    assert document["studies"][1] == {
        "args": [
            "--subject", "10", "--session", "02", "--features", f"{anat}_desc-brainmets_features.json",
            "--features-status", f"{anat}_desc-brainmets_status.json", "--out-json",
            f"{anat}_desc-brainmets_indications.json", "--followup-status", "res/sub-10/sub-10_desc-followup_status.json",
        ],
        "log": "res/logs/indications/sub-10/ses-02/sub-10_ses-02.log",
    }  # fmt: skip
    assert "--followup-status" not in document["studies"][0]["args"]  # not the latest session
    assert jobs.indication_inputs(plan, ["sub-10_ses-01", "sub-10_ses-02"]) == {
        "status": [
            "res/sub-10/ses-01/anat/sub-10_ses-01_desc-brainmets_status.json",
            f"{anat}_desc-brainmets_status.json",
        ],
        "followup": ["res/sub-10/sub-10_desc-followup_status.json"],
        "clinical": ["/d/clinical.tsv"],
    }


def test_indication_jobs_without_a_clinical_table_or_follow_up():
    plan = make_plan(clinical=None)
    document = json.loads(jobs.indication_jobs(plan, ["sub-02"]))
    assert document["common"] == ["--config-json", sections(plan, "indications")]
    assert document["studies"] == [
        {
            "args": [
                "--subject", "02", "--features", "res/sub-02/anat/sub-02_desc-brainmets_features.json",
                "--features-status", "res/sub-02/anat/sub-02_desc-brainmets_status.json",
                "--out-json", "res/sub-02/anat/sub-02_desc-brainmets_indications.json",
            ],
            "log": "res/logs/indications/sub-02/sub-02.log",
        }
    ]  # fmt: skip
    assert jobs.indication_inputs(plan, ["sub-02"]) == {"status": ["res/sub-02/anat/sub-02_desc-brainmets_status.json"]}


@pytest.mark.parametrize("figures", [True, False])
def test_followup_jobs_read_the_sheet_for_each_subject(figures):
    plan = make_plan(study_figures=figures)
    document = json.loads(jobs.followup_jobs(plan, ["10"], 2))
    spider = ["--out-figure", "res/sub-10/sub-10_desc-followup_spider.png"] if figures else []
    assert document == {
        "command": "followup",
        "common": ["--config-json", sections(plan, "anatomy", "dicom", "features", "followup"), "--threads", "2"],
        "studies": [
            {
                "args": ["--timeline", "/d/studies.tsv", "--subject", "10",
                         "--out-json", "res/sub-10/sub-10_desc-followup.json", *spider,
                         "--status-json", "res/sub-10/sub-10_desc-followup_status.json"],
                "log": "res/logs/followup/sub-10.log",
            }
        ],
    }  # fmt: skip
    assert jobs.followup_inputs(plan, ["10"]) == [
        "/d/studies.tsv", "/d/s10a.nii.gz", "/d/s10b.nii.gz", "/d/pf.nii.gz", "/d/t.txt",
    ]  # fmt: skip


def test_compare_jobs_compare_the_prediction_with_the_segmentation(plan):
    document = json.loads(jobs.compare_jobs(plan, ["sub-01_ses-01"], 4))
    assert document == {
        "command": "compare",
        "common": [
            "--config-json", sections(plan, "anatomy", "dicom", "features", "followup", "indications"),
            "--threads", "4", "--metrics", "brats2025", "--detection-bins-mm3", "0,20,100,1000", "--clinical", "/d/clinical.tsv",
        ],
        "studies": [
            {
                "args": [
                    "--reference", "/d/s01.nii.gz", "--prediction", "/d/p01.nii.gz", "--subject", "01",
                    "--session", "01", "--scheme", "brats-2021", "--parcellation", "/d/aseg.nii.gz",
                    "--out-json", "res/sub-01/ses-01/anat/sub-01_ses-01_desc-brainmets_comparison.json",
                    "--status-json", "res/sub-01/ses-01/anat/sub-01_ses-01_desc-comparison_status.json",
                ],
                "log": "res/logs/compare/sub-01/ses-01/sub-01_ses-01.log",
            }
        ],
    }  # fmt: skip
    assert jobs.compare_inputs(plan, ["sub-01_ses-01"]) == [
        "/d/s01.nii.gz", "/d/p01.nii.gz", "/d/aseg.nii.gz", "/d/clinical.tsv",
    ]  # fmt: skip
    other = make_plan(clinical=None, compare_metrics="brats2023", compare_detection_bins_mm3=[0, 50, 500.5])
    assert json.loads(jobs.compare_jobs(other, ["sub-01_ses-01"], 1))["common"][-4:] == [
        "--metrics", "brats2023", "--detection-bins-mm3", "0,50,500.5",
    ]  # fmt: skip
    assert jobs.compare_inputs(other, ["sub-01_ses-01"])[-1] == "/d/aseg.nii.gz"


def test_every_jobs_document_parses_as_brainmets_batch_reads_it(plan):
    """The documents are what `brainmets batch` accepts, and every study's command line parses."""
    from brainmets.cli import build_parser
    from brainmets.cli.batch import _parse_jobs

    parser = build_parser()
    for text in (
        jobs.feature_jobs(plan, plan.names, 1),
        jobs.indication_jobs(plan, plan.names),
        jobs.followup_jobs(plan, list(plan.followed), 1),
        jobs.compare_jobs(plan, plan.compared, 1),
    ):
        command, common, studies = _parse_jobs(text)
        for study in studies:
            args = parser.parse_args([command, *study["args"], *common])
            assert args.command == command


def test_export_jobs_number_followed_studies_by_track_and_use_the_image_or_reference_series():
    plan = make_plan(export=["rtstruct", "dicom-seg"])
    assert (
        plan.exports == ["dicom-seg", "rtstruct"]
        and make_plan().exports == []
        and make_plan(export="rtstruct").exports == ["rtstruct"]
    )
    document = json.loads(jobs.export_jobs(plan, ["sub-02", "sub-10_ses-02"], "dicom-seg"))
    assert document["command"] == "export"
    assert document["common"] == ["--config-json", sections(plan, "features", "anatomy", "dicom")]
    first, followed = (s["args"] for s in document["studies"])
    assert first == ["/d/s02.nii.gz", "--subject", "02", "--format", "dicom-seg",
                     "--out", "res/sub-02/anat/sub-02_desc-lesions_seg.dcm", "--image", "/d/t1.nii.gz",
                     "--status-json", "res/sub-02/anat/sub-02_desc-dicomseg_status.json"]  # fmt: skip
    assert followed[followed.index("--followup") + 1] == "res/sub-10/sub-10_desc-followup.json"
    assert document["studies"][1]["log"] == "res/logs/export-dicom-seg/sub-10/ses-02/sub-10_ses-02.log"
    assert jobs.export_inputs(plan, ["sub-02", "sub-10_ses-02"]) == [
        "/d/s02.nii.gz", "/d/t1.nii.gz", "/d/s10b.nii.gz", "res/sub-10/sub-10_desc-followup_status.json",
    ]  # fmt: skip
    assert plan.batch_message("export-rtstruct", "0001", ["sub-02"]).startswith(
        "brainmets export --format rtstruct, batch 0001"
    )
