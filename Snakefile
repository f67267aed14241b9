# brainmets workflow: per-study lesion features -> cohort tables.
# Run: snakemake --cores 2   (settings: config/config.yaml, explained in config/README.md)
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/indications.smk"
include: "workflow/rules/cohort.smk"


rule all:
    input:
        rules.cohort.output,
    default_target: True
