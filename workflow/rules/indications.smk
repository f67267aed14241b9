# One `indications_NNNN` job per batch of studies, after that batch's features job.
for batch, members in BATCHES.items():

    rule:
        """Which treatments the review's Table 1 supports for each study (brainmets batch -> indicate; research
        use only). A study whose features failed gets a 'not evaluated' document. Changing an indication
        threshold re-runs only these jobs, not the features."""
        name:
            f"indications_{batch}"
        input:
            **indication_inputs(members),
        output:
            [study_file(s, "desc-brainmets_indications.json") for s in members],
        params:
            brainmets=BRAINMETS,
            jobs=indication_jobs(members),
        resources:
            mem_mb=500,
            runtime=5 + math.ceil(len(members) * 0.05),
        group:
            "batch"
        log:
            [f"{RESULTS}/logs/indications/batch-{batch}.log"] + [study_log("indications", s) for s in members],
        conda:
            "../envs/brainmets.yaml"
        shell:
            "{params.brainmets} batch --jobs-json {params.jobs:q} 2> {log[0]:q}"
