rule features:
    """Lesions and their features for one study (brainmets features)."""
    input:
        unpack(study_inputs),
    output:
        json=f"{RESULTS}/{{studydir}}/anat/{{study}}_desc-brainmets_features.json",
        tsv=f"{RESULTS}/{{studydir}}/anat/{{study}}_desc-lesions_features.tsv",
        dictionary=f"{RESULTS}/{{studydir}}/anat/{{study}}_desc-lesions_features.json",
        instances=f"{RESULTS}/{{studydir}}/anat/{{study}}_desc-lesions_dseg.nii.gz",
    params:
        brainmets=BRAINMETS,
        options=feature_options,
    threads: 1
    log:
        f"{RESULTS}/logs/features/{{studydir}}/{{study}}.log",
    conda:
        "../envs/brainmets.yaml"
    shell:
        "{params.brainmets} features {input.seg:q} {params.options}"
        " --threads {threads} --out-json {output.json:q} --out-tsv {output.tsv:q} --out-instances {output.instances:q}"
        " 2> {log:q}"
