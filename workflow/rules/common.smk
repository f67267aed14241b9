# Shared helpers: config validation, the studies sheet, input functions. No rules here.
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


def read_studies(sheet: str) -> pd.DataFrame:
    """The studies sheet, validated, with segmentation paths resolved against the sheet's folder."""
    studies = pd.read_csv(sheet, sep="\t", dtype=str, keep_default_na=False, comment="#")
    validate(studies, schema="../schemas/studies.schema.yaml")
    if "session" not in studies:
        studies["session"] = ""
    if "label_scheme" not in studies:
        studies["label_scheme"] = ""
    base = Path(sheet).parent
    studies["segmentation"] = [str(base / p) for p in studies["segmentation"]]
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


def segmentation_of(wildcards) -> str:
    return STUDIES.loc[wildcards.study, "segmentation"]


def feature_options(wildcards) -> str:
    """Command-line options of `brainmets features` for one study, from config (and the sheet's scheme)."""
    feats = config["features"]
    row = STUDIES.loc[wildcards.study]
    opts = ["--subject", row["subject"]]
    if row["session"]:
        opts += ["--session", row["session"]]
    scheme = row["label_scheme"] or feats["label_scheme"]
    if isinstance(scheme, dict):
        spec = ";".join(f"{role}={','.join(map(str, values))}" for role, values in scheme.items())
        opts += ["--custom-labels", spec]
    else:
        opts += ["--scheme", scheme]
    rano = feats["rano_bm"]
    opts += [
        "--connectivity", feats["connectivity"],
        "--min-lesion-volume-mm3", feats["min_lesion_volume_mm3"],
        "--min-edema-volume-mm3", feats["min_edema_component_volume_mm3"],
        "--merge-distance-mm", feats["merge_distance_mm"],
        "--rano-min-longest-mm", rano["min_longest_diameter_mm"],
        "--rano-min-perpendicular-mm", rano["min_perpendicular_diameter_mm"],
        "--rano-min-slices", rano["min_axial_slices"],
        "--rano-max-targets", rano["max_target_lesions"],
    ]
    return " ".join(shlex.quote(str(o)) for o in opts)
