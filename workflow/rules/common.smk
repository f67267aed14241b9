# Shared helpers: config validation, the studies sheet, input functions. No rules here.
import json
import shlex
import sys
from pathlib import Path

import pandas as pd
from snakemake.utils import validate

from brainmets.config import schema_path

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


#: Optional columns of the studies sheet that name files (resolved against the sheet's folder).
FILE_COLUMNS = ("segmentation", "parcellation", "posterior_fossa_mask", "subject_image", "atlas_dir")
#: Optional columns passed to `brainmets features` as options of the same name.
REFERENCE_COLUMNS = ("parcellation", "posterior_fossa_mask", "subject_image", "atlas", "atlas_dir", "template",
                     "reference_alignment")


def read_studies(sheet: str) -> pd.DataFrame:
    """The studies sheet, validated, with file paths resolved against the sheet's folder."""
    studies = pd.read_csv(sheet, sep="\t", dtype=str, keep_default_na=False, comment="#")
    validate(studies, schema="../schemas/studies.schema.yaml")
    for column in ("session", "label_scheme", *REFERENCE_COLUMNS):
        if column not in studies:
            studies[column] = ""
    base = Path(sheet).parent
    for column in FILE_COLUMNS:
        studies[column] = [str(base / p) if p else "" for p in studies[column]]
    studies["study"] = [
        f"sub-{s}" + (f"_ses-{x}" if x else "") for s, x in zip(studies["subject"], studies["session"])
    ]
    studies["studydir"] = [
        str(Path(f"sub-{s}", f"ses-{x}" if x else "")) for s, x in zip(studies["subject"], studies["session"])
    ]
    duplicated = studies["study"][studies["study"].duplicated()].tolist()
    if duplicated:
        raise ValueError(f"{sheet}: studies listed more than once: {', '.join(duplicated)}")
    return studies.set_index("study", drop=False)


STUDIES = read_studies(config["studies"])


wildcard_constraints:
    study=r"sub-[A-Za-z0-9]+(_ses-[A-Za-z0-9]+)?",
    studydir=r"sub-[A-Za-z0-9]+(/ses-[A-Za-z0-9]+)?",


def study_file(study: str, suffix: str) -> str:
    """Path of one per-study output, BIDS-Derivatives style."""
    row = STUDIES.loc[study]
    return f"{RESULTS}/{row['studydir']}/anat/{study}_{suffix}"


def all_study_files(suffix: str) -> list[str]:
    return [study_file(s, suffix) for s in STUDIES.index]


def study_inputs(wildcards) -> dict[str, str]:
    """The study's segmentation and the reference files its row names (so changing any re-runs it)."""
    row = STUDIES.loc[wildcards.study]
    files = {"seg": row["segmentation"]}
    files.update({c: row[c] for c in ("parcellation", "posterior_fossa_mask", "subject_image") if row[c]})
    return files


def feature_options(wildcards) -> str:
    """Command-line options of `brainmets features` for one study: its identity, the config's `features`
    and `anatomy` sections (as JSON, so --config overrides on the snakemake command line count), the
    study's label scheme and its anatomical reference."""
    row = STUDIES.loc[wildcards.study]
    sections = {"features": dict(config["features"]), "anatomy": config["anatomy"]}
    if row["label_scheme"]:
        sections["features"]["label_scheme"] = row["label_scheme"]
    opts = ["--subject", row["subject"]]
    if row["session"]:
        opts += ["--session", row["session"]]
    opts += ["--config-json", json.dumps(sections, sort_keys=True)]
    for column in REFERENCE_COLUMNS:
        if row[column]:
            opts += [f"--{column.replace('_', '-')}", row[column]]
    return " ".join(shlex.quote(str(o)) for o in opts)


def indication_inputs(wildcards) -> dict[str, str]:
    """The study's features document and, when configured, the clinical table."""
    files = {"features": study_file(wildcards.study, "desc-brainmets_features.json")}
    if config["clinical"]:
        files["clinical"] = config["clinical"]
    return files


def indication_options(wildcards) -> str:
    """Options of `brainmets indicate`: identity, the clinical table, the config's `indications` section."""
    row = STUDIES.loc[wildcards.study]
    opts = ["--subject", row["subject"]]
    if row["session"]:
        opts += ["--session", row["session"]]
    if config["clinical"]:
        opts += ["--clinical", config["clinical"]]
    opts += ["--config-json", json.dumps({"indications": config["indications"]}, sort_keys=True)]
    return " ".join(shlex.quote(str(o)) for o in opts)
