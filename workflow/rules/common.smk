# Shared: the config validated, the run's plan (its studies, file names, batches: brainmets.workflow.plan) and
# one-line wrappers the rules call. The logic lives in the package brainmets.workflow (unit-tested); no rules here.
import math
import os
import shlex
from pathlib import Path

from snakemake.utils import validate

from brainmets.config import schema_path
from brainmets.io import bids
from brainmets.workflow import jobs
from brainmets.workflow.plan import Plan
from brainmets.workflow.run import brainmets_command, prepare_run, report_run
from brainmets.workflow.studies import source_datasets

validate(config, schema=str(schema_path()))

#: The run: its config, its studies (the studies sheet, or the studies of a BIDS-like folder) and results folder.
PLAN = Plan.load(config, Path(workflow.basedir, "workflow", "schemas", "studies.schema.yaml"))
BRAINMETS = brainmets_command(workflow.deployment_settings.deployment_method)
RESULTS = PLAN.results
STUDY_FIGURES = PLAN.study_figures  # each study's picture and each follow-up's spider plot
STUDY_VIEWERS = PLAN.study_viewers  # each study's lesion viewer page
STUDIES = PLAN.studies
BATCHES = PLAN.study_batches  # features and indications jobs, batch_size studies each, in sheet order
FOLLOWED = PLAN.followed  # subjects with two or more dated sessions
FOLLOWUP_BATCHES = PLAN.subject_batches
COMPARED = PLAN.compared  # studies whose sheet row names a prediction
COMPARE_BATCHES = PLAN.compare_batches
EXPORTS = PLAN.exports  # the DICOM exports written per study (config `export`)


wildcard_constraints:
    study=bids.STUDY_PATTERN,
    studydir=bids.STUDY_DIR_PATTERN,


def study_file(study, suffix): return PLAN.study_file(study, suffix)
def all_study_files(suffix): return PLAN.all_study_files(suffix)
def subject_file(subject, suffix): return PLAN.subject_file(subject, suffix)
def study_log(step, study): return PLAN.study_log(step, study)
def batch_inputs(members): return jobs.batch_inputs(PLAN, members)
def uses_template(members): return jobs.uses_template(PLAN, members)
def feature_jobs(members, threads): return jobs.feature_jobs(PLAN, members, threads)
def indication_inputs(members): return jobs.indication_inputs(PLAN, members)
def indication_jobs(members): return jobs.indication_jobs(PLAN, members)
def followup_inputs(subjects): return jobs.followup_inputs(PLAN, subjects)
def followup_jobs(subjects, threads): return jobs.followup_jobs(PLAN, subjects, threads)
def compare_inputs(members): return jobs.compare_inputs(PLAN, members)
def compare_jobs(members, threads): return jobs.compare_jobs(PLAN, members, threads)
def export_inputs(members): return jobs.export_inputs(PLAN, members)
def export_jobs(members, fmt): return jobs.export_jobs(PLAN, members, fmt)
