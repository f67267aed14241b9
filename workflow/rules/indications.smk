rule indications:
    """Which treatments the review's Table 1 supports for one study (brainmets indicate; research use only)."""
    input:
        unpack(indication_inputs),
    output:
        f"{RESULTS}/{{studydir}}/anat/{{study}}_desc-indications.json",
    params:
        brainmets=BRAINMETS,
        options=indication_options,
    log:
        f"{RESULTS}/logs/indications/{{studydir}}/{{study}}.log",
    conda:
        "../envs/brainmets.yaml"
    shell:
        "{params.brainmets} indicate --features {input.features:q} {params.options} --out-json {output:q} 2> {log:q}"
