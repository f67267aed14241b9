rule cohort:
    """One table of every lesion and one of every study (brainmets cohort)."""
    input:
        all_study_files("desc-brainmets_features.json"),
    output:
        lesions=f"{RESULTS}/group/lesions.tsv",
        lesions_dictionary=f"{RESULTS}/group/lesions.json",
        studies=f"{RESULTS}/group/studies.tsv",
        studies_dictionary=f"{RESULTS}/group/studies.json",
    params:
        brainmets=BRAINMETS,
    log:
        f"{RESULTS}/logs/cohort.log",
    conda:
        "../envs/brainmets.yaml"
    shell:
        "{params.brainmets} cohort {input:q} --out-lesions {output.lesions:q} --out-studies {output.studies:q} 2> {log:q}"
