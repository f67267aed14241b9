"""The jobs documents of ``brainmets batch`` (one per batch job: each study's arguments and log, and the
options common to all) and the input files of each batch job: the command-line contract between the workflow
and the CLI, built from a :class:`~.plan.Plan` alone. The rules write a document to a file
(:func:`brainmets.cli.batch.jobs_file`) and run ``brainmets batch --jobs-file``."""

from __future__ import annotations

import json
from collections.abc import Sequence

from brainmets.io import bids
from brainmets.workflow.plan import Plan
from brainmets.workflow.studies import INPUT_COLUMNS, REFERENCE_COLUMNS

#: The config sections each command reads (passed as --config-json, so that --config overrides on the
#: snakemake command line count).
FEATURES_SECTIONS = ("features", "anatomy", "dicom")
FOLLOWUP_SECTIONS = ("features", "anatomy", "dicom", "followup")
COMPARE_SECTIONS = ("features", "anatomy", "dicom", "followup", "indications")
#: Sheet columns passed to `brainmets compare` as options of the same name (the lesions' location).
COMPARE_REFERENCE_COLUMNS = ("parcellation", "posterior_fossa_mask", "atlas", "atlas_dir")


def jobs_document(command: str, common: list[str], studies: list[dict]) -> str:
    """The jobs document of ``brainmets batch`` (compact JSON): the command, the options common to every study,
    and each study's ``args`` and ``log``."""
    return json.dumps({"command": command, "common": common, "studies": studies}, separators=(",", ":"))


def option(column: str) -> str:
    """The command-line option of a sheet column: ``posterior_fossa_mask`` -> ``--posterior-fossa-mask``."""
    return f"--{column.replace('_', '-')}"


def _sections(plan: Plan, names: Sequence[str]) -> str:
    return json.dumps({k: plan.config[k] for k in names}, sort_keys=True)


def _identity(row) -> list[str]:
    return ["--subject", row["subject"]] + (["--session", row["session"]] if row["session"] else [])


def _clinical(plan: Plan) -> list[str]:
    return ["--clinical", plan.config["clinical"]] if plan.config["clinical"] else []


# ---- features ---------------------------------------------------------------------------------------------


def batch_inputs(plan: Plan, members: Sequence[str]) -> list[str]:
    """The batch's segmentations and the reference files their rows name (changing any re-runs the batch)."""
    files = []
    for study in members:
        row = plan.row(study)
        files += [row[c] for c in INPUT_COLUMNS if row[c]]
    return list(dict.fromkeys(files))


def uses_template(plan: Plan, members: Sequence[str]) -> bool:
    """Whether a study of the batch is located by template registration (more memory and time)."""
    return bool(plan.config["anatomy"]["template"]) or any(plan.row(s)["template"] for s in members)


def feature_outputs(plan: Plan) -> tuple[tuple[str, str], ...]:
    """`brainmets features`' output options and the suffixes of the files the workflow names with them."""
    return (
        ("--out-json", bids.FEATURES),
        ("--out-tsv", bids.LESIONS_TSV),
        ("--out-instances", bids.INSTANCES),
        *([("--out-figure", bids.OVERLAY)] if plan.study_figures else []),
        *([("--out-viewer", bids.VIEWER)] if plan.study_viewers else []),
        ("--status-json", bids.STATUS),
    )


def feature_jobs(plan: Plan, members: Sequence[str], threads: int) -> str:
    """`brainmets features` for each study of a batch: its segmentation, identity, label scheme, anatomical
    reference, image (the picture's background) and outputs; the config's `features`, `anatomy` and `dicom`
    sections are common to all."""
    studies = []
    for study in members:
        row = plan.row(study)
        args = [row["segmentation"], *_identity(row)]
        if row["label_scheme"]:
            args += ["--scheme", row["label_scheme"]]
        for column in REFERENCE_COLUMNS:
            if row[column]:
                args += [option(column), row[column]]
        if row["subject_image"]:
            args += ["--image", row["subject_image"]]
        for flag, suffix in feature_outputs(plan):
            args += [flag, plan.study_file(study, suffix)]
        if plan.study_figures:
            args += ["--figure-max-panels", str(plan.config["study_figure_max_panels"])]
        studies.append({"args": args, "log": plan.study_log("features", study)})
    common = ["--config-json", _sections(plan, FEATURES_SECTIONS), "--threads", str(threads)]
    return jobs_document("features", common, studies)


# ---- indications ------------------------------------------------------------------------------------------


def indication_inputs(plan: Plan, members: Sequence[str]) -> dict[str, list[str]]:
    """The batch's features status documents, the follow-up status documents of its studies that are their
    subject's latest dated session and, when configured, the clinical table."""
    files = {"status": [plan.study_file(s, bids.STATUS) for s in members]}
    followed = [plan.subject_file(plan.latest[s], bids.FOLLOWUP_STATUS) for s in members if s in plan.latest]
    if followed:
        files["followup"] = followed
    if plan.config["clinical"]:
        files["clinical"] = [plan.config["clinical"]]
    return files


def indication_jobs(plan: Plan, members: Sequence[str]) -> str:
    """`brainmets indicate` for each study of a batch (with its subject's follow-up when it is the latest dated
    session); the clinical table and the config's `indications` section are common to all."""
    studies = []
    for study in members:
        args = [
            *_identity(plan.row(study)),
            "--features", plan.study_file(study, bids.FEATURES),
            "--features-status", plan.study_file(study, bids.STATUS),
            "--out-json", plan.study_file(study, bids.INDICATIONS),
        ]  # fmt: skip
        if study in plan.latest:
            args += ["--followup-status", plan.subject_file(plan.latest[study], bids.FOLLOWUP_STATUS)]
        studies.append({"args": args, "log": plan.study_log("indications", study)})
    common = [*_clinical(plan), "--config-json", _sections(plan, ("indications",))]
    return jobs_document("indicate", common, studies)


# ---- DICOM exports ----------------------------------------------------------------------------------------


def export_inputs(plan: Plan, members: Sequence[str]) -> list[str]:
    """The batch's segmentations, reference series or images and, for followed studies, their subject's
    follow-up status document (the follow-up numbers the lesions by track)."""
    files = []
    for study in members:
        row = plan.row(study)
        files += [row[c] for c in ("segmentation", "reference_series", "subject_image") if row[c]]
        if study in plan.tracked:
            files.append(plan.subject_file(plan.tracked[study], bids.FOLLOWUP_STATUS))
    return list(dict.fromkeys(files))


def export_jobs(plan: Plan, members: Sequence[str], fmt: str) -> str:
    """`brainmets export --format fmt` for each study of a batch: on its reference series when the sheet names
    one, else on a derived series from its image; a followed study's lesions numbered by track."""
    studies = []
    for study in members:
        row = plan.row(study)
        args = [
            row["segmentation"],
            *_identity(row),
            "--format",
            fmt,
            "--out",
            plan.study_file(study, bids.EXPORTS[fmt]),
        ]
        if row["label_scheme"]:
            args += ["--scheme", row["label_scheme"]]
        if row["reference_series"]:
            args += ["--reference-series", row["reference_series"]]
        elif row["subject_image"]:
            args += ["--image", row["subject_image"]]
        if study in plan.tracked:
            args += ["--followup", plan.subject_file(plan.tracked[study], bids.FOLLOWUP)]
        args += ["--status-json", plan.study_file(study, bids.EXPORT_STATUS[fmt])]
        studies.append({"args": args, "log": plan.study_log(f"export-{fmt}", study)})
    common = ["--config-json", _sections(plan, FEATURES_SECTIONS)]
    return jobs_document("export", common, studies)


# ---- follow-up --------------------------------------------------------------------------------------------


def followup_inputs(plan: Plan, subjects: Sequence[str]) -> list[str]:
    """The studies sheet and the files of the subjects' sessions (changing any re-runs the batch)."""
    files = [plan.config["studies"]]
    for subject in subjects:
        for study in plan.followed[subject]:
            row = plan.row(study)
            files += [row[c] for c in (*INPUT_COLUMNS, "transform") if row[c]]
    return list(dict.fromkeys(files))


def followup_jobs(plan: Plan, subjects: Sequence[str], threads: int) -> str:
    """`brainmets followup` for each subject of a batch, from the studies sheet (its dated rows)."""
    jobs = []
    for subject in subjects:
        args = ["--timeline", plan.config["studies"], "--subject", subject,
                "--out-json", plan.subject_file(subject, bids.FOLLOWUP)]  # fmt: skip
        if plan.study_figures:
            args += ["--out-figure", plan.subject_file(subject, bids.SPIDER)]
        args += ["--status-json", plan.subject_file(subject, bids.FOLLOWUP_STATUS)]
        jobs.append({"args": args, "log": plan.subject_log("followup", subject)})
    common = ["--config-json", _sections(plan, FOLLOWUP_SECTIONS), "--threads", str(threads)]
    return jobs_document("followup", common, jobs)


# ---- comparison -------------------------------------------------------------------------------------------


def compare_inputs(plan: Plan, members: Sequence[str]) -> list[str]:
    """The batch's segmentations, predictions and location references, and the clinical table."""
    files = [plan.row(s)[c] for s in members for c in ("segmentation", "prediction", "parcellation",
             "posterior_fossa_mask") if plan.row(s)[c]]  # fmt: skip
    return files + ([plan.config["clinical"]] if plan.config["clinical"] else [])


def compare_jobs(plan: Plan, members: Sequence[str], threads: int) -> str:
    """`brainmets compare` for each study of a batch: its segmentation (the reference) and its prediction."""
    studies = []
    for study in members:
        row = plan.row(study)
        args = ["--reference", row["segmentation"], "--prediction", row["prediction"], *_identity(row)]
        args += ["--scheme", row["label_scheme"]] if row["label_scheme"] else []
        for column in COMPARE_REFERENCE_COLUMNS:
            args += [option(column), row[column]] if row[column] else []
        args += ["--out-json", plan.study_file(study, bids.COMPARISON)]
        args += ["--status-json", plan.study_file(study, bids.COMPARISON_STATUS)]
        studies.append({"args": args, "log": plan.study_log("compare", study)})
    bins = ",".join(f"{edge:g}" for edge in plan.config["compare_detection_bins_mm3"])
    common = ["--config-json", _sections(plan, COMPARE_SECTIONS), "--threads", str(threads),
              "--metrics", plan.config["compare_metrics"], "--detection-bins-mm3", bins, *_clinical(plan)]  # fmt: skip
    return jobs_document("compare", common, studies)
