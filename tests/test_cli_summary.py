"""Each command's one-line summary on success (and -q), and `brainmets batch --jobs-file`, the workflow's way
of passing a batch's jobs document."""

import json
from pathlib import Path

import pytest

from brainmets.cli import main
from brainmets.cli.batch import jobs_file

from .conftest import PHANTOMS, TEST_DATA

COHORT = TEST_DATA / "cohort"
SPHERE = PHANTOMS / "sphere.nii.gz"


def _run(args, capsys) -> tuple[int, str]:
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def test_features_says_what_it_measured_and_wrote(tmp_path, capsys):
    out = [tmp_path / "f.json", tmp_path / "lesions.tsv"]
    code, err = _run(["features", SPHERE, "--subject", "01", "--session", "02", "--out-json", out[0],
                      "--out-tsv", out[1]], capsys)  # fmt: skip
    document = json.loads(out[0].read_text())["study"]
    assert code == 0
    volume = f"{round(document['cumulative_tumor_volume_ml'], 2):g}"
    assert err.splitlines() == [
        f"brainmets: sub-01 ses-02: 1 lesion, {volume} mL; wrote {out[0]}, {out[1]}, {tmp_path / 'lesions.json'}"
    ]


def test_quiet_silences_the_summary_but_not_errors(tmp_path, capsys):
    assert _run(["features", SPHERE, "-q", "--out-json", tmp_path / "f.json"], capsys) == (0, "")
    code, err = _run(["features", tmp_path / "missing.nii.gz", "--quiet", "--out-json", tmp_path / "g.json"], capsys)
    assert code == 1 and err.startswith("brainmets: error: ") and "wrote" not in err


def test_many_outputs_are_summed_up_by_folder(tmp_path, capsys):
    code, err = _run(["features", SPHERE, "--subject", "01", "--out-dir", tmp_path / "out"], capsys)
    assert code == 0
    assert err.strip() == (
        "brainmets: sub-01: 1 lesion, "
        + err.split("1 lesion, ")[1].split(";")[0]
        + f"; wrote 6 files in {tmp_path / 'out'}/ (sub-01_desc-brainmets_features.json, "
        "sub-01_desc-lesions_features.tsv, sub-01_desc-lesions_dseg.nii.gz, ...)"
    )


def test_indicate_followup_compare_and_cohort_each_say_one_line(tmp_path, capsys):
    features = tmp_path / "f.json"
    assert _run(["features", COHORT / "sub-02_ses-01_dseg.nii.gz", "-q", "--subject", "02", "--session", "01",
                 "--out-json", features], capsys) == (0, "")  # fmt: skip
    code, err = _run(["indicate", "--features", features, "--clinical", COHORT / "clinical.tsv",
                      "--out-json", tmp_path / "i.json"], capsys)  # fmt: skip
    document = json.loads((tmp_path / "i.json").read_text())
    indicated = [m for m, e in document["modalities"].items() if e["status"] == "indicated"]
    assert code == 0 and err.splitlines() == [
        line for line in err.splitlines() if line.startswith("brainmets: sub-02 ses-01: Table 1 indicated: ")
    ]
    assert f"indicated: {', '.join(indicated)}" in err and err.rstrip().endswith(f"wrote {tmp_path / 'i.json'}")

    code, err = _run(["followup", "--timeline", COHORT / "studies.tsv", "--subject", "12",
                      "--out-json", tmp_path / "fu.json"], capsys)  # fmt: skip
    assert code == 0 and err.strip() == f"brainmets: sub-12: 2 sessions, RANO-BM baseline, {_responses(tmp_path)}; " \
        f"wrote {tmp_path / 'fu.json'}"  # fmt: skip

    code, err = _run(["compare", "--reference", COHORT / "sub-02_ses-01_dseg.nii.gz", "--prediction",
                      COHORT / "sub-02_ses-01_desc-model_pred.nii.gz", "--subject", "02", "--session", "01",
                      "--out-json", tmp_path / "c.json"], capsys)  # fmt: skip
    assert code == 0 and err.startswith("brainmets: sub-02 ses-01: enhancing tumour lesion-wise Dice 0.")
    assert err.rstrip().endswith(f"(brats2025); wrote {tmp_path / 'c.json'}") and err.count("\n") == 1

    code, err = _run(["cohort", features, "--out-lesions", tmp_path / "l.tsv", "--out-studies", tmp_path / "s.tsv"],
                     capsys)  # fmt: skip
    lesions = json.loads(features.read_text())["study"]["lesion_count"]
    assert code == 0 and err.strip() == (
        f"brainmets: cohort of 1 study (0 failed), {lesions} lesions; wrote {tmp_path / 'l.tsv'}, "
        f"{tmp_path / 'l.json'}, {tmp_path / 's.tsv'}, {tmp_path / 's.json'}"
    )
    assert _run(["indicate", "-q", "--features", features, "--out-json", tmp_path / "j.json"], capsys) == (0, "")


def _responses(tmp_path) -> str:
    document = json.loads((tmp_path / "fu.json").read_text())
    return ", ".join(r["response"] for r in document["rano_bm"][1:])


def _jobs(tmp_path, name="good") -> dict:
    args = [str(SPHERE), "--subject", name, "--out-json", str(tmp_path / f"{name}.json"),
            "--status-json", str(tmp_path / f"{name}_status.json")]  # fmt: skip
    return {"command": "features", "common": ["--threads", "1"],
            "studies": [{"args": args, "log": str(tmp_path / "logs" / f"{name}.log")}]}  # fmt: skip


def test_in_a_batch_the_summary_goes_to_the_studys_log_not_the_console(tmp_path, capsys):
    path = jobs_file(json.dumps(_jobs(tmp_path)), "features_0001", tmp_path / "jobs")
    code, err = _run(["batch", "--jobs-file", path], capsys)
    assert code == 0 and "wrote" not in err and "features: 1 of 1 studies completed" in err
    log = (tmp_path / "logs" / "good.log").read_text()
    assert log.startswith("brainmets: sub-good: 1 lesion, ") and log.rstrip().endswith(
        f"wrote {tmp_path / 'good.json'}"
    )
    assert json.loads((tmp_path / "good_status.json").read_text())["status"] == "ok"


def test_a_jobs_file_is_written_once_and_named_by_its_content(tmp_path):
    text = json.dumps(_jobs(tmp_path))
    first = jobs_file(text, "features_0007", tmp_path / "jobs")
    assert Path(first).parent == tmp_path / "jobs" and Path(first).name.startswith("features_0007-")
    assert Path(first).read_text() == text
    stamp = Path(first).stat().st_mtime_ns
    assert jobs_file(text, "features_0007", tmp_path / "jobs") == first and Path(first).stat().st_mtime_ns == stamp
    other = jobs_file(json.dumps(_jobs(tmp_path, "other")), "features_0007", tmp_path / "jobs")
    assert other != first and Path(first).read_text() == text  # a changed document never replaces a file
    assert not list((tmp_path / "jobs").glob(".brainmets-*"))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--jobs-file", "{missing}"], "missing.json: no such file"),
        (["--jobs-file", "{bad}"], "bad.json: Expecting value"),
        (["--jobs-file", "{missing}", "--jobs-json", "{{}}"], "not allowed with argument"),
        ([], "one of the arguments --jobs-json --jobs-file is required"),
    ],
)
def test_a_jobs_file_that_cannot_be_read_is_a_one_line_usage_error(argv, message, tmp_path, capsys):
    (tmp_path / "bad.json").write_text("not json")
    argv = [a.format(missing=tmp_path / "missing.json", bad=tmp_path / "bad.json") for a in argv]
    try:
        code = main(["batch", *argv])
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
