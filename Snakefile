# brainmets workflow: per-study lesion features, location and indications -> cohort tables, figures, report.
# Run: snakemake --cores 2   (settings: config/config.yaml, explained in config/README.md)
# Report: snakemake --report report.html
import sys

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


from brainmets.workflow.studies import with_demo

if with_demo(config, "config/demo.yaml") and getattr(workflow, "is_main_process", True):  # said once, not per job
    print("brainmets: no studies sheet or bids_dir given: running the bundled demo (config/demo.yaml)", file=sys.stderr)


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/indications.smk"
include: "workflow/rules/followup.smk"
include: "workflow/rules/compare.smk"
include: "workflow/rules/export.smk"
include: "workflow/rules/cohort.smk"


# Run by Snakemake itself, never submitted to a cluster: the target, one small file for the results folder, and
# the report's front page.
localrules:
    all,
    dataset_description,
    front_page,


rule all:
    input:
        rules.cohort.output,
        rules.cohort_figures.output,
        rules.dataset_description.output,
        rules.front_page.output,
        all_study_files(bids.OVERLAY) if STUDY_FIGURES else [],
        all_study_files(bids.VIEWER) if STUDY_VIEWERS else [],
        [all_study_files(bids.EXPORT_STATUS[fmt]) for fmt in EXPORTS],
        PLAN.followup_files(bids.SPIDER) if STUDY_FIGURES else [],
    message:
        f"every result of the {len(STUDIES)} studies is up to date"
    default_target: True


onstart:
    prepare_run(PLAN, workflow)


onsuccess:
    report_run(PLAN, succeeded=True)


onerror:
    report_run(PLAN, succeeded=False)
