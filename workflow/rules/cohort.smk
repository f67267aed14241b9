rule cohort:
    """One table of every lesion and one of every study (brainmets cohort)."""
    input:
        features=all_study_files("desc-brainmets_features.json"),
        indications=all_study_files("desc-indications.json"),
    output:
        lesions=f"{RESULTS}/group/lesions.tsv",
        lesions_dictionary=f"{RESULTS}/group/lesions.json",
        studies=f"{RESULTS}/group/studies.tsv",
        studies_dictionary=f"{RESULTS}/group/studies.json",
        indications=f"{RESULTS}/group/indications.tsv",
        indications_dictionary=f"{RESULTS}/group/indications.json",
    params:
        brainmets=BRAINMETS,
    log:
        f"{RESULTS}/logs/cohort.log",
    conda:
        "../envs/brainmets.yaml"
    shell:
        "{params.brainmets} cohort {input.features:q} --indications {input.indications:q}"
        " --out-lesions {output.lesions:q} --out-studies {output.studies:q}"
        " --out-indications {output.indications:q} 2> {log:q}"
