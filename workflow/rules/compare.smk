# One `compare_NNNN` job per batch of studies whose sheet row names a `prediction`.
from brainmets.cli.batch import jobs_file

for batch, members in COMPARE_BATCHES.items():

    rule:
        """Each study's prediction compared with its segmentation (the reference): BraTS-METS lesion-wise
        metrics, feature agreement and the Table 1 verdicts it changes (brainmets batch -> compare; research
        use only). A pair that cannot be compared does not fail the job: its status document says why."""
        name:
            f"compare_{batch}"
        input:
            compare_inputs(members),
        output:
            [study_file(s, bids.COMPARISON_STATUS) for s in members],
        params:
            brainmets=BRAINMETS,
            jobs=lambda wildcards, threads, members=members, batch=batch: jobs_file(
                compare_jobs(members, threads), f"compare_{batch}"
            ),
        message:
            PLAN.batch_message("compare", batch, members)
        threads: 1
        resources:
            mem_mb=4000,
            runtime=10 + math.ceil(len(members) * 0.5),
        log:
            [PLAN.batch_log("compare", batch)] + [study_log("compare", s) for s in members],
        conda:
            "../envs/brainmets.yaml"
        shell:
            "{params.brainmets} batch --jobs-file {params.jobs:q} 2> {log[0]:q}"
