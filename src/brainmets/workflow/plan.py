"""What a workflow run makes, from its config and its studies alone: each study's and each followed subject's
file names and logs (:mod:`brainmets.io.bids`), the batches of studies and subjects the rules run, the
subjects followed over time and the studies with a prediction to compare. ``workflow/rules/common.smk`` builds
one :class:`Plan` and its rules call it; tests build one from a small studies frame, no Snakemake needed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from brainmets.io import bids


def batches(names: Sequence[str], size: int) -> dict[str, list[str]]:
    """`names` in batches of `size`, in order, keyed ``0001``, ``0002``...: one job per batch."""
    names = list(names)
    return {f"{k // size + 1:04d}": names[k : k + size] for k in range(0, len(names), size)}


@dataclass(frozen=True, eq=False)
class Plan:
    """A workflow run's config (validated, defaults filled in), its studies (:func:`~.studies.prepare`: indexed
    by study name, ``sub-01_ses-01``) and its results folder (the config's ``results_dir`` unless given)."""

    config: Mapping[str, Any]
    studies: pd.DataFrame
    results: str = ""

    def __post_init__(self) -> None:
        if not self.results:
            object.__setattr__(self, "results", str(self.config["results_dir"]))

    @classmethod
    def load(cls, config: Mapping[str, Any], schema_file: str | Path) -> Plan:
        """The plan of a config: its studies from its studies sheet (checked against `schema_file`) or its
        ``bids_dir`` (:func:`~.studies.load_studies`)."""
        from brainmets.workflow.studies import load_studies

        return cls(config, load_studies(config, schema_file))

    # ---- what the run makes ------------------------------------------------------------------------------

    @property
    def study_figures(self) -> bool:
        """Whether each study's picture and each follow-up's spider plot are drawn (config ``study_figures``)."""
        return bool(self.config["study_figures"])

    @property
    def study_viewers(self) -> bool:
        """Whether each study gets its lesion viewer page (config ``study_viewers``)."""
        return bool(self.config["study_viewers"])

    @property
    def exports(self) -> list[str]:
        """The DICOM exports written per study (config ``export``: none, one format or a list), in a fixed order."""
        chosen = self.config.get("export") or []
        chosen = [chosen] if isinstance(chosen, str) else list(chosen)
        return [f for f in bids.EXPORTS if f in chosen]

    @property
    def names(self) -> list[str]:
        """The studies' names (``sub-01_ses-01``), in sheet order."""
        return [str(s) for s in self.studies.index]

    @cached_property
    def followed(self) -> dict[str, list[str]]:
        """Subjects with two or more dated sessions (:func:`~.studies.followed_subjects`), with their studies."""
        from brainmets.workflow.studies import followed_subjects

        return followed_subjects(self.config, self.studies)

    @cached_property
    def latest(self) -> dict[str, str]:
        """The study whose indications use its subject's follow-up (the last dated session) -> the subject."""
        return {studies[-1]: subject for subject, studies in self.followed.items()}

    @cached_property
    def tracked(self) -> dict[str, str]:
        """Each study of a followed subject -> the subject: its exports number the lesions by track."""
        return {study: subject for subject, studies in self.followed.items() for study in studies}

    @cached_property
    def compared(self) -> list[str]:
        """Studies whose sheet row names a ``prediction`` (a model's segmentation to compare with theirs)."""
        return [study for study in self.names if self.studies.loc[study, "prediction"]]

    @cached_property
    def study_batches(self) -> dict[str, list[str]]:
        """The studies in batches of ``batch_size``: one features job and one indications job per batch."""
        return batches(self.names, self.config["batch_size"])

    @cached_property
    def subject_batches(self) -> dict[str, list[str]]:
        """The followed subjects in batches of ``batch_size``: one followup job per batch."""
        return batches(list(self.followed), self.config["batch_size"])

    @cached_property
    def compare_batches(self) -> dict[str, list[str]]:
        """The studies with a prediction in batches of ``batch_size``: one compare job per batch."""
        return batches(self.compared, self.config["batch_size"])

    # ---- file names (brainmets.io.bids) ------------------------------------------------------------------

    def row(self, study: str) -> pd.Series:
        return self.studies.loc[study]

    def study_file(self, study: str, suffix: str) -> str:
        """``<results>/sub-01/ses-01/anat/sub-01_ses-01_<suffix>``: one of a study's outputs."""
        row = self.row(study)
        return bids.study_file(self.results, row["subject"], row["session"], suffix)

    def all_study_files(self, suffix: str) -> list[str]:
        """Every study's output of this suffix, in sheet order."""
        return [self.study_file(s, suffix) for s in self.names]

    def subject_file(self, subject: str, suffix: str) -> str:
        """``<results>/sub-10/sub-10_<suffix>``: one of a followed subject's outputs."""
        return bids.subject_file(self.results, subject, suffix)

    def followup_files(self, suffix: str) -> list[str]:
        """Every followed subject's output of this suffix."""
        return [self.subject_file(s, suffix) for s in self.followed]

    def study_log(self, step: str, study: str) -> str:
        """``<results>/logs/<step>/sub-01/ses-01/sub-01_ses-01.log``."""
        row = self.row(study)
        return bids.study_log(self.results, step, row["subject"], row["session"])

    def subject_log(self, step: str, subject: str) -> str:
        """``<results>/logs/<step>/sub-10.log``."""
        return bids.subject_log(self.results, step, subject)

    def batch_log(self, step: str, batch: str) -> str:
        """``<results>/logs/<step>/batch-0001.log``."""
        return bids.batch_log(self.results, step, batch)

    def log_dir(self, step: str) -> str:
        return bids.log_dir(self.results, step)

    def rule_log(self, rule: str) -> str:
        """``<results>/logs/<rule>.log`` (cohort, cohort_figures, front_page, dataset_description)."""
        return bids.rule_log(self.results, rule)

    def group_file(self, name: str) -> str:
        """``<results>/group/<name>``."""
        return bids.group_file(self.results, name)

    def group_tables(self) -> dict[str, str]:
        """The cohort rule's outputs: ``lesions_tsv`` -> ``<results>/group/lesions.tsv``, for each table and kind."""
        return {
            f"{name}_{kind}": self.group_file(f"{name}.{kind}")
            for name in bids.GROUP_TABLES
            for kind in bids.GROUP_TABLE_KINDS
        }

    def cohort_figures(self) -> dict[str, str]:
        """The cohort_figures rule's outputs: ``lesion_size`` -> ``<results>/group/lesion_size.png``..."""
        return {name: self.group_file(bids.figure_name(name)) for name in bids.COHORT_FIGURES}

    def dataset_files(self) -> dict[str, str]:
        """The dataset_description rule's outputs: ``description`` -> ``<results>/dataset_description.json``..."""
        return {key: f"{self.results}/{name}" for key, name in bids.DATASET_FILES.items()}

    # ---- what the console says ----------------------------------------------------------------------------

    def batch_message(self, step: str, batch: str, members: Sequence[str]) -> str:
        """A batch job's one-line message (:func:`~.progress.batch_message`): ``brainmets features, batch 0001:
        25 studies (sub-01 to sub-25); logs under results/logs/features/``. `step` is the log folder's name."""
        from brainmets.workflow.progress import batch_message

        command = {"indications": "indicate"}.get(step, step)
        if step.startswith("export-"):  # one log folder per format
            command = f"export --format {step.removeprefix('export-')}"
        if step == "followup":
            return batch_message(f"brainmets {command}", batch, [bids.subject_entities(s) for s in members],
                                 "subjects", self.log_dir(step))  # fmt: skip
        return batch_message(f"brainmets {command}", batch, list(members), "studies", self.log_dir(step))
