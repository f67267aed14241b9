import csv
import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from brainmets import __version__
from brainmets.cli import main

from .conftest import PHANTOMS


def _run(args: list[str], capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"brainmets {__version__}"


def test_console_script_is_installed():
    exe = shutil.which("brainmets") or str(__import__("pathlib").Path(sys.executable).with_name("brainmets"))
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"brainmets {__version__}"


def test_features_writes_json_tsv_dictionary_and_instances(tmp_path, capsys):
    seg = PHANTOMS / "two_lesions_shared_edema.nii.gz"
    code, _, err = _run(
        [
            "features",
            seg,
            "--out-json",
            tmp_path / "f.json",
            "--out-tsv",
            tmp_path / "l.tsv",
            "--out-instances",
            tmp_path / "i_dseg.nii.gz",
            "--subject",
            "07",
            "--session",
            "pre",
        ],
        capsys,
    )
    assert code == 0, err
    document = json.loads((tmp_path / "f.json").read_text())
    assert list(document) == ["edema_only_components", "lesions", "provenance", "resection_cavities", "study"]
    assert document["study"]["subject"] == "07" and document["study"]["lesion_count"] == 2
    with open(tmp_path / "l.tsv", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert [r["lesion_id"] for r in rows] == ["1", "2"]
    assert rows[0]["participant_id"] == "sub-07" and rows[0]["session_id"] == "ses-pre"
    assert float(rows[0]["volume_ml"]) == pytest.approx(document["lesions"][0]["volume_ml"])
    dictionary = json.loads((tmp_path / "l.json").read_text())
    assert set(rows[0]) == set(dictionary)  # every column described
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "f.json",
        "i_dseg.json",
        "i_dseg.nii.gz",
        "i_dseg.tsv",
        "l.json",
        "l.tsv",
    ]
    instances = nib.load(tmp_path / "i_dseg.nii.gz")
    data = np.asanyarray(instances.dataobj)
    assert instances.get_data_dtype() == np.uint8  # one byte per voxel for fewer than 256 lesions
    assert np.allclose(instances.affine, nib.load(seg).affine)
    for lesion in document["lesions"]:
        assert int((data == lesion["lesion_id"]).sum()) == lesion["voxel_count"]


def test_out_dir_uses_bids_like_names(tmp_path, capsys):
    code, _, _ = _run(
        ["features", PHANTOMS / "sphere.nii.gz", "--out-dir", tmp_path, "--subject", "3", "--session", "b"], capsys
    )
    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "sub-3_ses-b_desc-brainmets_features.json",
        "sub-3_ses-b_desc-lesions_dseg.json",
        "sub-3_ses-b_desc-lesions_dseg.nii.gz",
        "sub-3_ses-b_desc-lesions_dseg.tsv",
        "sub-3_ses-b_desc-lesions_features.json",
        "sub-3_ses-b_desc-lesions_features.tsv",
    ]
    assert (tmp_path / "sub-3_ses-b_desc-lesions_dseg.tsv").read_text() == "index\tname\n1\tlesion-1\n"
    sidecar = json.loads((tmp_path / "sub-3_ses-b_desc-lesions_dseg.json").read_text())
    assert "lesion_id" in sidecar["Description"] and sidecar["SpatialReference"] == "orig"
    assert nib.load(tmp_path / "sub-3_ses-b_desc-lesions_dseg.nii.gz").header.get_xyzt_units()[0] == "mm"
    code, _, _ = _run(["features", PHANTOMS / "sphere.nii.gz", "--out-dir", tmp_path / "x"], capsys)
    assert (tmp_path / "x" / "sphere_desc-brainmets_features.json").exists()


def test_options_and_config_file(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("features:\n  min_lesion_volume_mm3: 1000000\n  connectivity: 6\n")
    out = tmp_path / "f.json"
    assert _run(["features", PHANTOMS / "sphere.nii.gz", "--config", config, "--out-json", out], capsys)[0] == 0
    document = json.loads(out.read_text())
    assert document["study"]["lesion_count"] == 0
    assert document["provenance"]["parameters"]["connectivity"] == 6
    args = [
        "features",
        PHANTOMS / "sphere.nii.gz",
        "--config",
        config,
        "--min-lesion-volume-mm3",
        "0",
        "--out-json",
        out,
    ]
    assert _run(args, capsys)[0] == 0
    assert json.loads(out.read_text())["study"]["lesion_count"] == 1


def test_custom_labels_option(tmp_path, capsys):
    out = tmp_path / "f.json"
    args = [
        "features",
        PHANTOMS / "brats2021.nii.gz",
        "--custom-labels",
        "enhancing=4;necrotic=1;edema=2",
        "--out-json",
        out,
    ]
    assert _run(args, capsys)[0] == 0
    lesion = json.loads(out.read_text())["lesions"][0]
    assert lesion["necrotic_volume_ml"] > 0 and lesion["edema_volume_ml"] > 0


def _assert_one_line_error(err: str, *fragments: str):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize(
    "make, fragments",
    [
        (lambda d: d / "missing.nii.gz", ["missing.nii.gz", "no such file"]),
        (
            lambda d: (d / "junk.nii.gz").write_bytes(b"junk") and d / "junk.nii.gz",
            ["junk.nii.gz", "not a readable NIfTI"],
        ),
        (
            lambda d: shutil.copy(PHANTOMS / "postop.nii.gz", d / "wrong_scheme.nii.gz"),
            ["wrong_scheme.nii.gz", "label value(s) 3", "not in label scheme 'brats-2021'"],
        ),
    ],
    ids=["missing", "corrupt", "unknown-label"],
)
def test_bad_input_exits_nonzero_with_one_line_and_no_output(tmp_path, capsys, make, fragments):
    seg = make(tmp_path)
    out = tmp_path / "out"
    scheme = ["--scheme", "brats-2021"] if "wrong_scheme" in str(seg) else []
    code, stdout, err = _run(["features", seg, "--out-dir", out, *scheme], capsys)
    assert code == 1
    _assert_one_line_error(err, *fragments)
    assert not out.exists() or list(out.iterdir()) == []


def test_unknown_label_message_names_the_file(tmp_path, capsys):
    seg = tmp_path / "seg.nii.gz"
    shutil.copy(PHANTOMS / "postop.nii.gz", seg)
    code, _, err = _run(["features", seg, "--out-json", tmp_path / "x.json", "--scheme", "binary"], capsys)
    assert code == 0
    code, _, err = _run(["features", seg, "--out-json", tmp_path / "x.json", "--scheme", "brats-2021"], capsys)
    assert code == 1 and err.startswith(f"brainmets: error: {seg}: label value(s) 3")
    assert "the values present fit brats-mets-2023 or brats-2015 (--scheme NAME)" in err


def test_first_messages_name_what_is_wrong(tmp_path, capsys):
    """An unknown scheme lists the valid names; a missing document says so; a BraTS-2021 map read as
    brats-mets-2023 is measured with a warning naming the scheme that fits (a post-operative map is not)."""
    out = tmp_path / "x.json"
    code, _, err = _run(["features", PHANTOMS / "sphere.nii.gz", "--out-json", out, "--scheme", "brats2021"], capsys)
    assert (
        code == 2
        and "'brats2021' is not one of ['auto', 'brats-mets-2023', 'brats-2021', 'brats-2015', 'binary']" in err
    )
    code, _, err = _run(["indicate", "--features", tmp_path / "none.json", "--out-json", out], capsys)
    assert code == 1 and err.strip() == f"brainmets: error: {tmp_path / 'none.json'}: no such file"
    code, _, err = _run(["features", PHANTOMS / "brats2021.nii.gz", "--out-json", out], capsys)
    warnings = json.loads(out.read_text())["provenance"]["warnings"]  # and logged
    assert code == 0 and any("look like brats-2021" in w and "use --scheme brats-2021" in w for w in warnings)
    for scheme_fits in (["--scheme", "brats-2021"], []):
        seg = PHANTOMS / ("brats2021.nii.gz" if scheme_fits else "postop.nii.gz")
        assert _run(["features", seg, "--out-json", out, *scheme_fits], capsys)[0] == 0
        assert not any("look like" in w for w in json.loads(out.read_text())["provenance"]["warnings"])


def test_usage_errors(tmp_path, capsys):
    seg = tmp_path / "seg.nii.gz"
    shutil.copy(PHANTOMS / "sphere.nii.gz", seg)
    original = seg.read_bytes()
    code, _, err = _run(["features", seg, "--out-instances", seg], capsys)
    assert code == 2 and "refusing to overwrite the input" in err
    assert seg.read_bytes() == original
    assert _run(["features", seg], capsys)[0] == 2
    code, _, err = _run(
        ["features", seg, "--out-json", tmp_path / "a", "--scheme", "x", "--custom-labels", "core=1"], capsys
    )
    assert code == 2 and "either --scheme or --custom-labels" in err
    code, _, err = _run(["features", seg, "--out-json", tmp_path / "a", "--rano-min-slices", "0"], capsys)
    assert code == 2 and "min_axial_slices" in err
    code, _, err = _run(["features", seg, "--out-instances", tmp_path / ".nii.gz"], capsys)
    assert code == 2 and "name it <name>.nii.gz" in err
    code, _, err = _run(["features", seg, "--out-json", tmp_path / "a", "--threads", "0"], capsys)
    assert code == 2 and "--threads must be at least 1" in err
    plain = tmp_path / "plain"  # not a BIDS name: no label table beside it, so no clash with the lesion TSV
    code, _, err = _run(["features", seg, "--out-tsv", plain / "l.tsv", "--out-instances", plain / "l.nii.gz"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in plain.iterdir()) == ["l.json", "l.nii.gz", "l.tsv"]


def test_existing_output_is_kept_when_the_run_fails(tmp_path, capsys):
    out = tmp_path / "f.json"
    out.write_text("previous result")
    assert _run(["features", tmp_path / "missing.nii.gz", "--out-json", out], capsys)[0] == 1
    assert out.read_text() == "previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]


def test_cohort_tables(tmp_path, capsys):
    docs = []
    for i, case in enumerate(("sphere", "two_lesions_shared_edema", "empty"), start=1):
        doc = tmp_path / f"{case}.json"
        assert _run(["features", PHANTOMS / f"{case}.nii.gz", "--out-json", doc, "--subject", str(i)], capsys)[0] == 0
        docs.append(doc)
    code, _, err = _run(
        ["cohort", *docs, "--out-lesions", tmp_path / "g/lesions.tsv", "--out-studies", tmp_path / "g/studies.tsv"],
        capsys,
    )
    assert code == 0, err
    with open(tmp_path / "g/lesions.tsv", newline="") as fh:
        lesions = list(csv.DictReader(fh, delimiter="\t"))
    with open(tmp_path / "g/studies.tsv", newline="") as fh:
        studies = list(csv.DictReader(fh, delimiter="\t"))
    assert [(r["participant_id"], r["lesion_id"]) for r in lesions] == [("sub-1", "1"), ("sub-2", "1"), ("sub-2", "2")]
    assert [
        (r["participant_id"], r["session_id"], r["lesion_count"], r["largest_max_diameter_3d_mm"]) for r in studies
    ][2] == ("sub-3", "n/a", "0", "n/a")
    dictionary = json.loads((tmp_path / "g/studies.json").read_text())
    assert "Units" not in dictionary["lesion_count"] and dictionary["cumulative_tumor_volume_ml"]["Units"] == "mL"
    assert "subject" not in dictionary and dictionary["participant_id"]["LongName"] == "Participant ID"


def test_cohort_reads_status_documents_from_a_list_file(tmp_path, capsys):
    """The workflow's way for large cohorts: --status-list with one path per line; same rows as --status."""
    statuses = []
    for i, case in enumerate(("sphere", "empty"), start=1):
        status = tmp_path / f"{case}_status.json"
        args = ["features", PHANTOMS / f"{case}.nii.gz", "--out-json", tmp_path / f"{case}.json", "--subject", str(i)]
        assert _run([*args, "--status-json", status], capsys)[0] == 0
        statuses.append(status)
    listing = tmp_path / "statuses.txt"
    listing.write_text("".join(f"{p}\n" for p in statuses) + "\n")
    tables = {}
    for how, args in (("list", ["--status-list", listing]), ("args", ["--status", *statuses])):
        out = tmp_path / how
        code, _, err = _run(
            [
                "cohort",
                *args,
                "--out-lesions",
                out / "l.tsv",
                "--out-studies",
                out / "s.tsv",
                "--out-status",
                out / "x.tsv",
            ],
            capsys,
        )
        assert code == 0, err
        tables[how] = [(out / n).read_text() for n in ("l.tsv", "s.tsv", "x.tsv")]
    assert tables["list"] == tables["args"]
    assert tables["list"][2].count("\tok\t") == 2
    code, _, err = _run(
        ["cohort", "--status-list", tmp_path / "nope.txt", "--out-lesions", "a", "--out-studies", "b"], capsys
    )
    assert code == 2 and "nope.txt: no such file" in err


def test_cohort_refuses_a_foreign_document(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    code, _, err = _run(
        ["cohort", bad, "--out-lesions", tmp_path / "l.tsv", "--out-studies", tmp_path / "s.tsv"], capsys
    )
    assert code == 1 and "bad.json: not a brainmets features document" in err  # a bad input, not a bad option
    assert not (tmp_path / "l.tsv").exists()


COHORT = PHANTOMS.parent / "cohort"


def test_features_with_a_parcellation(tmp_path, capsys):
    out = tmp_path / "f.json"
    args = [
        "features",
        COHORT / "sub-02_ses-01_dseg.nii.gz",
        "--parcellation",
        COHORT / "toy_aseg.nii.gz",
        "--out-json",
        out,
    ]
    code, _, err = _run(args, capsys)
    assert code == 0, err
    document = json.loads(out.read_text())
    assert [r["location"] for r in document["lesions"]] == ["supratentorial", "infratentorial", "supratentorial"]
    assert document["study"]["infratentorial_lesion_count"] == 1
    anatomy = document["provenance"]["anatomy"]
    assert anatomy["kind"] == "parcellation" and anatomy["definition"] == "freesurfer"
    assert len(anatomy["images"]["labels"]["sha256"]) == 64
    assert str(COHORT) not in out.read_text()  # no paths in the outputs


def test_config_json_sets_thresholds(tmp_path, capsys):
    out = tmp_path / "f.json"
    args = [
        "features",
        COHORT / "sub-02_ses-01_dseg.nii.gz",
        "--parcellation",
        COHORT / "toy_aseg.nii.gz",
        "--config-json",
        '{"anatomy": {"mixed_margin": 0.3}, "features": {"min_lesion_volume_mm3": 400}}',
        "--out-json",
        out,
    ]
    assert _run(args, capsys)[0] == 0
    document = json.loads(out.read_text())
    assert document["provenance"]["anatomy"]["parameters"]["mixed_margin"] == 0.3
    assert document["study"]["lesion_count"] == 2  # the 0.269 mL lesion is below 400 mm3
    code, _, err = _run(
        ["features", COHORT / "sub-02_ses-01_dseg.nii.gz", "--config-json", "{oops", "--out-json", out], capsys
    )
    assert code == 2 and "--config-json: not valid JSON" in err


def test_reference_usage_errors(tmp_path, capsys):
    seg = COHORT / "sub-02_ses-01_dseg.nii.gz"
    code, _, err = _run(
        [
            "features",
            seg,
            "--parcellation",
            COHORT / "toy_aseg.nii.gz",
            "--atlas",
            "sri24",
            "--out-json",
            tmp_path / "x.json",
        ],
        capsys,
    )
    assert code == 2 and "choose one anatomical reference" in err
    code, _, err = _run(
        ["features", seg, "--template-image", seg, "--template-labels", seg, "--out-json", tmp_path / "x.json"], capsys
    )
    assert code == 2 and "--subject-image" in err
    code, _, err = _run(["features", seg, "--atlas", "sri24", "--out-json", tmp_path / "x.json"], capsys)
    assert code == 2 and "--atlas-dir" in err
    assert not (tmp_path / "x.json").exists()


def test_reference_that_does_not_cover_names_both_files(tmp_path, capsys):
    small = tmp_path / "small_parcellation.nii.gz"
    nib.save(nib.Nifti1Image(np.full((10, 10, 10), 3, np.int16), np.eye(4)), str(small))
    seg = COHORT / "sub-02_ses-01_dseg.nii.gz"
    code, _, err = _run(["features", seg, "--parcellation", small, "--out-json", tmp_path / "x.json"], capsys)
    assert code == 1
    _assert_one_line_error(err, str(seg), str(small), "does not cover the lesions")
    assert not (tmp_path / "x.json").exists()


def test_batch_runs_each_study_with_its_own_log_and_outcome(tmp_path, capsys):
    """One process, three studies: a good one (same document as `features` alone), a corrupt file (failed,
    recorded) and a study with a bad option (did not complete: the batch exits 1 and says where to look)."""
    corrupt = tmp_path / "corrupt.nii.gz"
    corrupt.write_bytes(b"\x1f\x8bnot gzip")
    sphere = PHANTOMS / "sphere.nii.gz"

    def study(name, seg, *extra):
        args = [str(seg), "--subject", name, "--out-json", str(tmp_path / f"{name}.json")]
        args += ["--status-json", str(tmp_path / f"{name}_status.json"), *extra]
        return {"args": args, "log": str(tmp_path / "logs" / f"{name}.log")}

    jobs = {
        "command": "features",
        "common": ["--threads", "1", "--config-json", '{"features": {"min_lesion_volume_mm3": 10}}'],
        "studies": [study("good", sphere), study("bad", corrupt), study("usage", sphere, "--connectivity", "5")],
    }
    code, _, err = _run(["batch", "--jobs-json", json.dumps(jobs)], capsys)
    assert code == 1
    assert f"a study did not complete (see {tmp_path / 'logs' / 'usage.log'})" in err
    assert "features: 2 of 3 studies completed" in err

    alone = tmp_path / "alone.json"
    assert (
        _run(["features", sphere, "--subject", "good", "--out-json", alone, "--min-lesion-volume-mm3", "10"], capsys)[0]
        == 0
    )
    assert json.loads((tmp_path / "good.json").read_text()) == json.loads(alone.read_text())
    assert json.loads((tmp_path / "good_status.json").read_text())["status"] == "ok"
    assert (tmp_path / "logs" / "good.log").read_text().startswith("brainmets: sub-good: 1 lesion, ")  # its summary

    failed = json.loads((tmp_path / "bad_status.json").read_text())
    assert failed["status"] == "failed" and "corrupt.nii.gz" in failed["error"]
    assert f"{corrupt}: not a readable NIfTI" in (tmp_path / "logs" / "bad.log").read_text()
    assert not (tmp_path / "bad.json").exists()

    assert "invalid choice: 5" in (tmp_path / "logs" / "usage.log").read_text()
    assert not (tmp_path / "usage_status.json").exists()


@pytest.mark.parametrize(
    "jobs, message",
    [
        ("not json", "--jobs-json"),
        ('{"command": "cohort", "studies": []}', "command must be one of features, indicate"),
        ('{"command": "indicate", "studies": [{"args": "--subject 1"}]}', "needs 'args', a list of strings"),
    ],
)
def test_batch_refuses_a_malformed_jobs_document(jobs, message, capsys):
    code, _, err = _run(["batch", "--jobs-json", jobs], capsys)
    assert code == 2 and message in err


def test_a_study_that_fails_on_a_rerun_keeps_none_of_its_earlier_outputs(tmp_path, capsys):
    """With --status-json (the workflow's way), a failure removes what the study no longer supports and says
    so; the picture and the viewer page are replaced by ones saying why. Without it, a failed command leaves files alone."""
    seg = tmp_path / "seg.nii.gz"
    shutil.copy(PHANTOMS / "sphere.nii.gz", seg)
    out, status = tmp_path / "out", tmp_path / "out" / "status.json"
    args = ["features", seg, "--subject", "01", "--out-dir", out, "--out-figure", out / "overlay.png",
            "--out-viewer", out / "viewer.html"]  # fmt: skip
    assert _run([*args, "--status-json", status], capsys)[0] == 0
    assert "niivue" in (out / "viewer.html").read_text()  # the page, NiiVue inlined
    written = {k: v for k, v in json.loads(status.read_text())["outputs"].items() if k not in ("figure", "viewer")}
    assert len(written) == 6 and all(Path(p).is_file() for p in written.values())

    seg.write_bytes(b"\x1f\x8bnot gzip any more")
    code, _, err = _run([*args, "--status-json", status], capsys)
    document = json.loads(status.read_text())
    assert code == 0 and document["status"] == "failed" and "not a readable NIfTI" in document["error"]
    assert sorted(document["removed_outputs"]) == sorted(written.values())
    assert sorted(p.name for p in out.iterdir()) == ["overlay.png", "status.json", "viewer.html"]
    page = (out / "viewer.html").read_text()
    assert "not a readable NIfTI" in page and "niivue" not in page  # the viewer says why, as the picture does
    assert "removed the earlier outputs this failure no longer supports" in err

    indications = tmp_path / "ind.json"
    indications.write_text("an earlier indication document")
    code, _, _ = _run(["indicate", "--features", out / "missing.json", "--subject", "01", "--out-json", indications,
                       "--status-json", tmp_path / "ind_status.json"], capsys)  # fmt: skip
    assert code == 0 and not indications.exists()
    assert json.loads((tmp_path / "ind_status.json").read_text())["removed_outputs"] == [str(indications)]


def test_indicate_given_an_image_as_features_says_what_it_expected(tmp_path, capsys):
    image = tmp_path / "seg.nii.gz"
    image.write_bytes(gzip.compress(b"\x5c\x01\x00\x00" + bytes(range(256)) * 4))
    code, _, err = _run(["indicate", "--features", image, "--out-json", tmp_path / "i.json"], capsys)
    assert code == 1
    assert "seg.nii.gz: not a brainmets features document: a JSON document was expected, this is binary data" in err
    assert not (tmp_path / "i.json").exists()
