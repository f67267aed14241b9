# brainmets workflow: per-study lesion features, location and indications -> cohort tables, figures, report.
# Run: snakemake --cores 2   (settings: config/config.yaml, explained in config/README.md)
# Report: snakemake --report report.html
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/indications.smk"
include: "workflow/rules/followup.smk"
include: "workflow/rules/compare.smk"
include: "workflow/rules/cohort.smk"


# Run by Snakemake itself, never submitted to a cluster: the target, and one small file for the results folder.
localrules:
    all,
    dataset_description,


rule all:
    input:
        rules.cohort.output,
        rules.cohort_figures.output,
        rules.dataset_description.output,
        all_study_files("desc-lesions_overlay.png") if STUDY_FIGURES else [],
        [subject_file(s, "desc-followup_spider.png") for s in FOLLOWED] if STUDY_FIGURES else [],
    default_target: True


onstart:
    prepare_run()


onsuccess:
    report_run(succeeded=True)


onerror:
    report_run(succeeded=False)
