# One `indications_NNNN` job per batch of studies, after that batch's features job.
from brainmets.cli.batch import jobs_file

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
            [study_file(s, bids.INDICATIONS) for s in members],
        params:
            brainmets=BRAINMETS,
            jobs=lambda wildcards, members=members, batch=batch: jobs_file(
                indication_jobs(members), f"indications_{batch}"
            ),
        message:
            PLAN.batch_message("indications", batch, members)
        resources:
            mem_mb=500,
            runtime=5 + math.ceil(len(members) * 0.05),
        group:
            "batch"
        log:
            [PLAN.batch_log("indications", batch)] + [study_log("indications", s) for s in members],
        conda:
            "../envs/brainmets.yaml"
        shell:
            "{params.brainmets} batch --jobs-file {params.jobs:q} 2> {log[0]:q}"
