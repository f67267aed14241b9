# Shared helpers: config validation, the studies sheet, input functions. No rules here.
import io
import json
import math
import os
import shlex
import sys
from pathlib import Path

import pandas as pd
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from brainmets.config import read_text, schema_path
from brainmets.identifiers import check_label
from brainmets.studies_sheet import check_rows

validate(config, schema=str(schema_path()))


def brainmets_command() -> str:
    """The `brainmets` command the rules run: that of the rule's conda env with --sdm conda, else the one
    installed beside the Python running Snakemake (so an unactivated .venv/bin/snakemake works too)."""
    methods = {str(m).lower() for m in workflow.deployment_settings.deployment_method}
    beside = Path(sys.executable).with_name("brainmets")
    if any("conda" in m for m in methods) or not beside.exists():
        return "brainmets"
    return shlex.quote(str(beside))


BRAINMETS = brainmets_command()
RESULTS = config["results_dir"]
STUDY_FIGURES = config["study_figures"]  # each study's picture and each follow-up's spider plot


#: Optional columns of the studies sheet that name files (resolved against the sheet's folder).
FILE_COLUMNS = ("segmentation", "parcellation", "posterior_fossa_mask", "subject_image", "atlas_dir",
                "reference_series", "dicom_options", "transform", "prediction")
#: Optional columns passed to `brainmets features` as options of the same name.
REFERENCE_COLUMNS = ("parcellation", "posterior_fossa_mask", "subject_image", "atlas", "atlas_dir", "template",
                     "reference_alignment", "reference_series", "dicom_options")
#: Optional columns naming files (or folders) the study's features depend on.
INPUT_COLUMNS = ("segmentation", "parcellation", "posterior_fossa_mask", "subject_image", "reference_series",
                 "dicom_options")


def read_studies(sheet: str) -> pd.DataFrame:
    """The studies sheet, validated, with file paths resolved against the sheet's folder."""
    text = read_text(sheet)  # UTF-8 (a byte-order mark is accepted), else an error naming the sheet
    studies = pd.read_csv(io.StringIO(text), sep="\t", dtype=str, keep_default_na=False, comment="#")
    check_rows(studies, sheet, Path(workflow.basedir, "workflow", "schemas", "studies.schema.yaml"))
    base = Path(sheet).parent
    for column in FILE_COLUMNS:
        if column in studies:
            studies[column] = [str(base / p) if p else "" for p in studies[column]]
    return prepare(studies, sheet)


def prepare(studies: pd.DataFrame, source: str) -> pd.DataFrame:
    """Fill the optional columns, check the labels, name each study (BIDS entities) and refuse duplicates."""
    for column in ("session", "label_scheme", "date", "transform", "prediction", *REFERENCE_COLUMNS):
        if column not in studies:
            studies[column] = ""
    for subject, session in zip(studies["subject"], studies["session"]):  # they name output folders
        check_label(subject, f"{source}: subject")
        check_label(session or None, f"{source}: session")
    studies["study"] = [
        f"sub-{s}" + (f"_ses-{x}" if x else "") for s, x in zip(studies["subject"], studies["session"])
    ]
    studies["studydir"] = [
        str(Path(f"sub-{s}", f"ses-{x}" if x else "")) for s, x in zip(studies["subject"], studies["session"])
    ]
    duplicated = studies["study"][studies["study"].duplicated()].tolist()
    if duplicated:
        raise ValueError(f"{source}: studies listed more than once: {', '.join(duplicated)}")
    return studies.set_index("study", drop=False)


def discover_bids(root: str, patterns: dict[str, str]) -> pd.DataFrame:
    """Studies of a BIDS-like folder: one per sub-*/[ses-*/]anat/ holding exactly one segmentation."""
    rows = []
    for anat in sorted(Path(root).glob("sub-*/anat")) + sorted(Path(root).glob("sub-*/ses-*/anat")):
        parcellations = sorted(anat.glob(patterns["parcellation"]))
        segmentations = sorted(set(anat.glob(patterns["segmentation"])) - set(parcellations))
        if not segmentations:
            continue
        if len(segmentations) > 1:
            names = ", ".join(p.name for p in segmentations)
            raise ValueError(f"{anat}: more than one segmentation matches {patterns['segmentation']!r}: {names}")
        images = sorted(anat.glob(patterns["subject_image"]))
        session = anat.parent.name[4:] if anat.parent.name.startswith("ses-") else ""
        subject = (anat.parent.parent if session else anat.parent).name[4:]
        rows.append(
            {
                "subject": subject,
                "session": session,
                "segmentation": str(segmentations[0]),
                "parcellation": str(parcellations[0]) if parcellations else "",
                "subject_image": str(images[0]) if images else "",
            }
        )
    rows.sort(key=lambda r: (r["subject"], r["session"]))
    if not rows:
        raise ValueError(f"{root}: no segmentation matching {patterns['segmentation']!r} in sub-*/[ses-*/]anat/")
    return pd.DataFrame(rows, dtype=str)


def load_studies() -> pd.DataFrame:
    """The studies: from the studies sheet, or discovered in a BIDS-like folder."""
    if bool(config["studies"]) == bool(config["bids_dir"]):
        raise ValueError("config: give either `studies` (a studies sheet) or `bids_dir` (a BIDS-like folder)")
    if config["studies"]:
        return read_studies(config["studies"])
    return prepare(discover_bids(config["bids_dir"], config["bids"]), "bids_dir")


STUDIES = load_studies()


def source_datasets() -> list[str]:
    """The datasets the results are made from (dataset_description.json SourceDatasets): the config's
    `source_datasets`, and the DatasetDOI of a `bids_dir` dataset's own description, when it has one."""
    sources = list(config["source_datasets"])
    described = Path(config["bids_dir"] or "", "dataset_description.json")
    if config["bids_dir"] and described.is_file():
        try:
            doi = json.loads(read_text(str(described))).get("DatasetDOI")
        except ValueError as exc:
            raise ValueError(f"{described}: not valid JSON ({exc})") from None
        if isinstance(doi, str) and doi.strip():
            sources.append(doi if doi.lower().startswith("doi:") else f"doi:{doi}")
    return sources


wildcard_constraints:
    study=r"sub-[A-Za-z0-9]+(_ses-[A-Za-z0-9]+)?",
    studydir=r"sub-[A-Za-z0-9]+(/ses-[A-Za-z0-9]+)?",


def study_file(study: str, suffix: str) -> str:
    """Path of one per-study output, BIDS-Derivatives style."""
    row = STUDIES.loc[study]
    return f"{RESULTS}/{row['studydir']}/anat/{study}_{suffix}"


def all_study_files(suffix: str) -> list[str]:
    return [study_file(s, suffix) for s in STUDIES.index]


#: A study's features, written beside its status document (see features.smk): the features document, the
#: lesion table and its dictionary, the instance map, its label table and sidecar.
FEATURE_SUFFIXES = ("desc-brainmets_features.json", "desc-lesions_features.tsv", "desc-lesions_features.json",
                    "desc-lesions_dseg.nii.gz", "desc-lesions_dseg.tsv", "desc-lesions_dseg.json")


def study_batches(size: int) -> dict[str, list[str]]:
    """The studies in batches of `size`, in sheet order: one features job and one indications job per batch."""
    names = list(STUDIES.index)
    return {f"{k // size + 1:04d}": names[k : k + size] for k in range(0, len(names), size)}


BATCHES = study_batches(config["batch_size"])


def study_log(step: str, study: str) -> str:
    return f"{RESULTS}/logs/{step}/{STUDIES.loc[study, 'studydir']}/{study}.log"


def batch_inputs(members: list[str]) -> list[str]:
    """The batch's segmentations and the reference files their rows name (changing any re-runs the batch)."""
    files = []
    for study in members:
        row = STUDIES.loc[study]
        files += [row[c] for c in INPUT_COLUMNS if row[c]]
    return list(dict.fromkeys(files))


def uses_template(members: list[str]) -> bool:
    """Whether a study of the batch is located by template registration (more memory and time)."""
    return bool(config["anatomy"]["template"]) or any(STUDIES.loc[s, "template"] for s in members)


def _identity(row) -> list[str]:
    return ["--subject", row["subject"]] + (["--session", row["session"]] if row["session"] else [])


def _jobs(command: str, common: list[str], studies: list[dict]) -> str:
    """The jobs document of `brainmets batch` (written to a file by the rules: brainmets.cli.batch.jobs_file)."""
    return json.dumps({"command": command, "common": common, "studies": studies}, separators=(",", ":"))


def feature_jobs(members: list[str], threads: int) -> str:
    """`brainmets features` for each study of a batch: its segmentation, identity, label scheme, anatomical
    reference, image (the picture's background) and outputs; the config's `features` and `anatomy` sections
    (as JSON, so --config overrides on the snakemake command line count) are common to all."""
    studies = []
    for study in members:
        row = STUDIES.loc[study]
        args = [row["segmentation"], *_identity(row)]
        if row["label_scheme"]:
            args += ["--scheme", row["label_scheme"]]
        for column in REFERENCE_COLUMNS:
            if row[column]:
                args += [f"--{column.replace('_', '-')}", row[column]]
        if row["subject_image"]:
            args += ["--image", row["subject_image"]]
        for option, suffix in (
            ("--out-json", "desc-brainmets_features.json"),
            ("--out-tsv", "desc-lesions_features.tsv"),
            ("--out-instances", "desc-lesions_dseg.nii.gz"),
            *([("--out-figure", "desc-lesions_overlay.png")] if STUDY_FIGURES else []),
            ("--status-json", "desc-brainmets_status.json"),
        ):
            args += [option, study_file(study, suffix)]
        studies.append({"args": args, "log": study_log("features", study)})
    sections = {"features": config["features"], "anatomy": config["anatomy"], "dicom": config["dicom"]}
    common = ["--config-json", json.dumps(sections, sort_keys=True), "--threads", str(threads)]
    return _jobs("features", common, studies)


def indication_inputs(members: list[str]) -> dict[str, list[str]]:
    """The batch's features status documents and, when configured, the clinical table."""
    files = {"status": [study_file(s, "desc-brainmets_status.json") for s in members]}
    followed = [subject_file(LATEST[s], "desc-followup_status.json") for s in members if s in LATEST]
    if followed:
        files["followup"] = followed
    if config["clinical"]:
        files["clinical"] = [config["clinical"]]
    return files


def indication_jobs(members: list[str]) -> str:
    """`brainmets indicate` for each study of a batch; the clinical table and the config's `indications`
    section are common to all."""
    studies = [
        {
            "args": [
                *_identity(STUDIES.loc[study]),
                "--features", study_file(study, "desc-brainmets_features.json"),
                "--features-status", study_file(study, "desc-brainmets_status.json"),
                "--out-json", study_file(study, "desc-brainmets_indications.json"),
                *(["--followup-status", subject_file(LATEST[study], "desc-followup_status.json")]
                  if study in LATEST else []),
            ],
            "log": study_log("indications", study),
        }
        for study in members
    ]
    common = ["--clinical", config["clinical"]] if config["clinical"] else []
    common += ["--config-json", json.dumps({"indications": config["indications"]}, sort_keys=True)]
    return _jobs("indicate", common, studies)


def followed_subjects() -> dict[str, list[str]]:
    """Subjects with two or more dated sessions in the studies sheet (their follow-up timelines), with their
    studies in sheet order; none when the studies come from a BIDS folder (no dates)."""
    if not config["studies"]:
        return {}
    dated: dict[str, list[str]] = {}
    for study, row in STUDIES.iterrows():
        if row["date"]:
            dated.setdefault(row["subject"], []).append(study)
    return {subject: studies for subject, studies in dated.items() if len(studies) > 1}


FOLLOWED = followed_subjects()
#: The study whose indications use its subject's follow-up: the last dated session.
LATEST = {studies[-1]: subject for subject, studies in FOLLOWED.items()}


def subject_file(subject: str, suffix: str) -> str:
    """Path of one per-subject output (the follow-up), beside the subject's session folders."""
    return f"{RESULTS}/sub-{subject}/sub-{subject}_{suffix}"


def subject_batches(size: int) -> dict[str, list[str]]:
    names = list(FOLLOWED)
    return {f"{k // size + 1:04d}": names[k : k + size] for k in range(0, len(names), size)}


FOLLOWUP_BATCHES = subject_batches(config["batch_size"])


def followup_inputs(subjects: list[str]) -> list[str]:
    """The studies sheet and the files of the subjects' sessions (changing any re-runs the batch)."""
    files = [config["studies"]]
    for subject in subjects:
        for study in FOLLOWED[subject]:
            row = STUDIES.loc[study]
            files += [row[c] for c in (*INPUT_COLUMNS, "transform") if row[c]]
    return list(dict.fromkeys(files))


def followup_jobs(subjects: list[str], threads: int) -> str:
    """`brainmets followup` for each subject of a batch, from the studies sheet (its dated rows)."""
    jobs = [
        {
            "args": [
                "--timeline", config["studies"], "--subject", subject,
                "--out-json", subject_file(subject, "desc-followup.json"),
                *(["--out-figure", subject_file(subject, "desc-followup_spider.png")] if STUDY_FIGURES else []),
                "--status-json", subject_file(subject, "desc-followup_status.json"),
            ],
            "log": f"{RESULTS}/logs/followup/sub-{subject}.log",
        }
        for subject in subjects
    ]
    sections = {k: config[k] for k in ("features", "anatomy", "dicom", "followup")}
    common = ["--config-json", json.dumps(sections, sort_keys=True), "--threads", str(threads)]
    return _jobs("followup", common, jobs)


#: Studies whose sheet row names a `prediction` (a model's segmentation to compare with theirs).
COMPARED = [study for study in STUDIES.index if STUDIES.loc[study, "prediction"]]
COMPARE_BATCHES = {f"{k // config['batch_size'] + 1:04d}": COMPARED[k : k + config["batch_size"]]
                   for k in range(0, len(COMPARED), config["batch_size"])}  # fmt: skip


def compare_inputs(members: list[str]) -> list[str]:
    files = [STUDIES.loc[s, c] for s in members for c in ("segmentation", "prediction", "parcellation", "posterior_fossa_mask")
             if STUDIES.loc[s, c]]  # fmt: skip
    return files + ([config["clinical"]] if config["clinical"] else [])


def compare_jobs(members: list[str], threads: int) -> str:
    """`brainmets compare` for each study of a batch: its segmentation (the reference) and its prediction."""
    studies = []
    for study in members:
        row = STUDIES.loc[study]
        args = ["--reference", row["segmentation"], "--prediction", row["prediction"], *_identity(row)]
        args += ["--scheme", row["label_scheme"]] if row["label_scheme"] else []
        for column in ("parcellation", "posterior_fossa_mask", "atlas", "atlas_dir"):
            args += [f"--{column.replace('_', '-')}", row[column]] if row[column] else []
        args += ["--out-json", study_file(study, "desc-brainmets_comparison.json")]
        args += ["--status-json", study_file(study, "desc-comparison_status.json")]
        studies.append({"args": args, "log": study_log("compare", study)})
    sections = {k: config[k] for k in ("features", "anatomy", "dicom", "followup", "indications")}
    common = ["--config-json", json.dumps(sections, sort_keys=True), "--threads", str(threads),
              "--metrics", config["compare_metrics"]]  # fmt: skip
    common += ["--clinical", config["clinical"]] if config["clinical"] else []
    return _jobs("compare", common, studies)


def run_summary() -> tuple[str, int]:
    """One line saying how the run went (studies ok / failed / not run and where the failures are listed, the
    follow-ups, the studies without a clinical row, the features step's warnings) and the number of failed
    studies, from the studies' documents (brainmets.progress.run_summary)."""
    from brainmets.progress import run_summary as summary

    return summary(
        all_study_files("desc-brainmets_status.json"),
        RESULTS,
        indications=all_study_files("desc-brainmets_indications.json"),
        followups=[subject_file(s, "desc-followup_status.json") for s in FOLLOWED] if FOLLOWED else None,
    )


def report_run(succeeded: bool) -> None:
    """Stop the progress lines and print the run's summary line last; with `fail_on_failed_studies`, failed
    studies fail the run."""
    from brainmets import progress

    progress.stop()
    if not succeeded:
        remove_unsupported_features()
    line, failed = run_summary()
    print(line, file=sys.stderr)
    if succeeded and failed and config["fail_on_failed_studies"]:
        print(f"brainmets: exiting with an error: {failed} studies failed (config fail_on_failed_studies)",
              file=sys.stderr)
        raise SystemExit(1)


def remove_unsupported_features() -> None:
    """Remove the features of every study whose status document is gone: Snakemake discards all declared
    outputs of a failed job group, so an indications job cancelled or killed after its batch's features job
    finished takes that job's status documents with it, and the features beside them no longer count."""
    studies = []
    for study in STUDIES.index:
        if os.path.exists(study_file(study, "desc-brainmets_status.json")):
            continue
        present = [path for path in (study_file(study, s) for s in FEATURE_SUFFIXES) if os.path.isfile(path)]
        for path in present:
            os.unlink(path)
        studies += [study] if present else []
    if studies:
        print(f"brainmets: removed the features of {len(studies)} studies that have no status document (their "
              f"job did not finish): {', '.join(studies[:5])}" + (" ..." if len(studies) > 5 else ""), file=sys.stderr)


def prepare_run() -> None:
    """Before the first job: remove the temporary outputs of killed jobs (SIGKILL, out of memory) and the
    features no status document supports, on a SLURM cluster without job accounting read job states with
    squeue, since sacct there never reports a job, and start the progress lines: the studies this run makes,
    done so far, from their status documents (brainmets.progress; onstart runs in the main process only, cluster
    jobs run with --no-hooks)."""
    from brainmets.io.writers import sweep_temporary_files

    swept = sweep_temporary_files(RESULTS) if os.path.isdir(RESULTS) else []
    if swept:
        print(f"brainmets: removed {len(swept)} temporary files of killed jobs under {RESULTS}/: "
              + ", ".join(str(p) for p in swept[:5]) + (" ..." if len(swept) > 5 else ""), file=sys.stderr)
    remove_unsupported_features()
    settings = getattr(workflow, "executor_settings", None)
    if getattr(settings, "status_command", None) == "sacct" and (reason := accounting_disabled()):
        settings.status_command = "squeue"
        print(f"brainmets: this SLURM cluster keeps no job accounting ({reason}): job states are read with squeue "
              "instead, which sees a job until MinJobAge after it ends (see README, Running on a cluster)",
              file=sys.stderr)
        check_min_job_age(settings)
    if getattr(workflow, "is_main_process", True):
        from snakemake.logging import logger
        from snakemake.settings.enums import Quietness

        from brainmets import progress

        made = progress.outputs_to_make(workflow, all_study_files("desc-brainmets_status.json"))
        progress.start(made, lambda line: logger.info(line, extra={"quietness": Quietness.PROGRESS}))  # --quiet


def check_min_job_age(settings) -> None:
    """The SLURM plugin goes back to sacct when MinJobAge is below 3 x its first status-check delay, which
    without accounting would wait forever: stop with what to change instead."""
    from snakemake_executor_plugin_slurm.job_status_query import get_min_job_age

    delay = getattr(settings, "init_seconds_before_status_checks", 40)
    min_job_age = get_min_job_age()
    if min_job_age is None or min_job_age < 3 * delay:
        raise WorkflowError(
            f"brainmets: SLURM's MinJobAge is {min_job_age} s, below 3 x the first status check's delay "
            f"({delay} s): squeue would miss finished jobs and sacct cannot see them (no accounting). Pass "
            "--slurm-init-seconds-before-status-checks with at most a third of MinJobAge, or raise MinJobAge"
        )


def accounting_disabled() -> str | None:
    """sacct's own message when the cluster has no accounting storage (it then knows no job), else None."""
    import subprocess

    try:
        done = subprocess.run(["sacct", "--noheader", "--format=JobID", "--starttime=now"], capture_output=True,
                              text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    message = " ".join(done.stderr.split())
    return f"sacct: {message}" if done.returncode != 0 and "accounting storage is disabled" in message.lower() else None
