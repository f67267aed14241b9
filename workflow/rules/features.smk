# One `features_NNNN` job per batch of studies (config `batch_size`): one process measures them all, so the
# ~0.7 s of starting Python and importing the scientific stack is paid per batch, not per study. The batch's
# jobs document (every study's arguments: brainmets.workflow.jobs) goes through a file (jobs_file): the console
# stays readable.
from brainmets.cli.batch import jobs_file

for batch, members in BATCHES.items():

    rule:
        """Lesions, their features and location, and each study's picture (brainmets batch -> features).

        A study that cannot be processed does not fail the job: its status document says why, its picture
        shows it, its log names the file and the problem, and the cohort tables list it. The feature
        documents (JSON, TSV + dictionary, lesion instance map) are written beside the status document when
        the study succeeds."""
        name:
            f"features_{batch}"
        input:
            batch_inputs(members),
        output:
            status=[study_file(s, bids.STATUS) for s in members],
            figures=[
                report(
                    study_file(s, bids.OVERLAY),
                    caption="../report/study_overlay.rst",
                    category="Studies",
                    labels={"study": s, "figure": "lesions"},
                )
                for s in (members if STUDY_FIGURES else [])
            ],
            viewers=[study_file(s, bids.VIEWER) for s in (members if STUDY_VIEWERS else [])],
        params:
            brainmets=BRAINMETS,
            jobs=lambda wildcards, threads, members=members, batch=batch: jobs_file(
                feature_jobs(members, threads), f"features_{batch}"
            ),
        message:
            PLAN.batch_message("features", batch, members)
        threads: 1
        resources:
            mem_mb=4000 if uses_template(members) else 2000,
            runtime=10 + math.ceil(len(members) * (3 if uses_template(members) else 0.25)),
        group:
            "batch"
        log:
            [PLAN.batch_log("features", batch)] + [study_log("features", s) for s in members],
        conda:
            "../envs/brainmets.yaml"
        shell:
            "{params.brainmets} batch --jobs-file {params.jobs:q} 2> {log[0]:q}"
