"""Every derivative file name brainmets writes, in one place: the workflow's rules and the CLI's ``--out-dir``
options build their names here, and nowhere else.

A study is named by its BIDS entities, ``sub-<subject>[_ses-<session>]``; its outputs go to
``<results>/sub-<subject>/[ses-<session>/]anat/<entities>_<suffix>``. A followed subject's outputs go beside its
session folders, ``<results>/sub-<subject>/sub-<subject>_<suffix>``. The cohort's tables and figures go to
``<results>/group/``, the logs to ``<results>/logs/<step>/``. Paths are joined with ``/`` as given (never
normalised), so that the workflow's file names are exactly the strings its rules name. Standard library only.
"""

from __future__ import annotations

#: A study's name and its folder, as regular expressions (the workflow's wildcard constraints).
STUDY_PATTERN = r"sub-[A-Za-z0-9]+(_ses-[A-Za-z0-9]+)?"
STUDY_DIR_PATTERN = r"sub-[A-Za-z0-9]+(/ses-[A-Za-z0-9]+)?"
#: Where a BIDS-like folder keeps a study's images: without and with a session level.
ANAT_FOLDERS = ("sub-*/anat", "sub-*/ses-*/anat")

# ---- per study (in sub-<S>/[ses-<X>/]anat/) ----------------------------------------------------------------

#: The features document (``brainmets features --out-json``).
FEATURES = "desc-brainmets_features.json"
#: One row per lesion (``--out-tsv``) and its data dictionary, written beside it.
LESIONS_TSV = "desc-lesions_features.tsv"
LESIONS_DICTIONARY = "desc-lesions_features.json"
#: The lesion instance map (``--out-instances``), its label table and sidecar (written beside a ``*_dseg`` map).
INSTANCES = "desc-lesions_dseg.nii.gz"
INSTANCES_LABELS = "desc-lesions_dseg.tsv"
INSTANCES_SIDECAR = "desc-lesions_dseg.json"
#: The study's picture (``--out-figure``).
OVERLAY = "desc-lesions_overlay.png"
#: The study's lesion viewer page (``--out-viewer``).
VIEWER = "desc-lesions_viewer.html"
#: The study's DICOM exports (``brainmets export --format``) and each one's status document.
EXPORTS = {"dicom-seg": "desc-lesions_seg.dcm", "rtstruct": "desc-lesions_rtstruct.dcm"}
EXPORT_STATUS = {"dicom-seg": "desc-dicomseg_status.json", "rtstruct": "desc-rtstruct_status.json"}
#: The features step's status document (``--status-json``).
STATUS = "desc-brainmets_status.json"
#: The indication document (``brainmets indicate --out-json``).
INDICATIONS = "desc-brainmets_indications.json"
#: The comparison of the sheet's prediction with the segmentation, and the compare step's status document.
COMPARISON = "desc-brainmets_comparison.json"
COMPARISON_STATUS = "desc-comparison_status.json"

#: A study's features, written beside its status document when it succeeds: the features document, the lesion
#: table and its dictionary, the instance map, its label table and sidecar.
FEATURE_SUFFIXES = (FEATURES, LESIONS_TSV, LESIONS_DICTIONARY, INSTANCES, INSTANCES_LABELS, INSTANCES_SIDECAR)

# ---- per followed subject (in sub-<S>/) --------------------------------------------------------------------

#: The follow-up document (``brainmets followup --out-json``), its spider plot and status document.
FOLLOWUP = "desc-followup.json"
SPIDER = "desc-followup_spider.png"
FOLLOWUP_STATUS = "desc-followup_status.json"
#: The follow-up's tables (``brainmets followup --out-dir``), each with its data dictionary (``.json``).
LESION_TRACKS_TSV = "desc-lesiontracks_followup.tsv"
RESPONSES_TSV = "desc-responses_followup.tsv"

# ---- the cohort (in group/) --------------------------------------------------------------------------------

#: The cohort tables (``brainmets cohort``), each as TSV (with a data dictionary, .json) and Parquet.
GROUP_TABLES = (
    "lesions",
    "studies",
    "indications",
    "status",
    "lesion_tracks",
    "responses",
    "comparison_lesions",
    "comparison_studies",
    "comparison_detection",
    "comparison_lesion_table",
)
GROUP_TABLE_KINDS = ("tsv", "json", "parquet")
#: The cohort figures (``brainmets figures``), each ``<name>.png``, in the order the report's front page lists them.
COHORT_FIGURES = (
    "lesion_size",
    "volume_vs_count",
    "location",
    "indications",
    "swimmer",
    "comparison",
    "detection_by_size",
)
#: The report's front page (``group/summary.rst``).
FRONT_PAGE = "summary.rst"

# ---- the results folder ------------------------------------------------------------------------------------

#: What makes the results folder a BIDS-Derivatives dataset (``brainmets dataset-description``).
DATASET_FILES = {"description": "dataset_description.json", "bidsignore": ".bidsignore", "readme": "README.md"}


def subject_entities(subject: str) -> str:
    """``sub-01``."""
    return f"sub-{subject}"


def study_entities(subject: str, session: str | None = None) -> str:
    """``sub-01_ses-01``, or ``sub-01`` without a session: a study's name, and the start of its files' names."""
    return subject_entities(subject) + (f"_ses-{session}" if session else "")


def study_dir(subject: str, session: str | None = None) -> str:
    """``sub-01/ses-01``, or ``sub-01`` without a session: the study's folder under the results."""
    return subject_entities(subject) + (f"/ses-{session}" if session else "")


def file_name(entities: str, suffix: str) -> str:
    """``<entities>_<suffix>``: ``sub-01_ses-01_desc-brainmets_features.json``."""
    return f"{entities}_{suffix}"


def study_file(results: str, subject: str, session: str | None, suffix: str) -> str:
    """``<results>/sub-01/ses-01/anat/sub-01_ses-01_<suffix>``: one of a study's outputs."""
    return f"{results}/{study_dir(subject, session)}/anat/{file_name(study_entities(subject, session), suffix)}"


def subject_file(results: str, subject: str, suffix: str) -> str:
    """``<results>/sub-01/sub-01_<suffix>``: one of a followed subject's outputs, beside its session folders."""
    return f"{results}/{subject_entities(subject)}/{file_name(subject_entities(subject), suffix)}"


def log_dir(results: str, step: str) -> str:
    """``<results>/logs/<step>``: where a workflow step's logs go."""
    return f"{results}/logs/{step}"


def study_log(results: str, step: str, subject: str, session: str | None = None) -> str:
    """``<results>/logs/<step>/sub-01/ses-01/sub-01_ses-01.log``: one study's log of a workflow step."""
    return f"{log_dir(results, step)}/{study_dir(subject, session)}/{study_entities(subject, session)}.log"


def subject_log(results: str, step: str, subject: str) -> str:
    """``<results>/logs/<step>/sub-01.log``: one subject's log of a workflow step (the follow-up)."""
    return f"{log_dir(results, step)}/{subject_entities(subject)}.log"


def batch_log(results: str, step: str, batch: str) -> str:
    """``<results>/logs/<step>/batch-0001.log``: the log of one batch job (the ``brainmets batch`` process)."""
    return f"{log_dir(results, step)}/batch-{batch}.log"


def rule_log(results: str, rule: str) -> str:
    """``<results>/logs/<rule>.log``: the log of a workflow rule that runs once (cohort, cohort_figures...)."""
    return f"{results}/logs/{rule}.log"


def group_dir(results: str) -> str:
    """``<results>/group``: the cohort's tables and figures."""
    return f"{results}/group"


def group_file(results: str, name: str) -> str:
    """``<results>/group/<name>``: a cohort table (``lesions.tsv``), figure (``swimmer.png``) or the front page."""
    return f"{group_dir(results)}/{name}"


def figure_name(figure: str) -> str:
    """``lesion_size.png``: the file of one of the cohort figures."""
    return f"{figure}.png"


def entities_of(name: str) -> str:
    """The entities a derivative's file name starts with: ``sub-01_ses-01`` of
    ``sub-01_ses-01_desc-brainmets_status.json`` (the name itself when it has no ``_desc-``)."""
    return name.split("_desc-")[0]
