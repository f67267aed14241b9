# One `followup_NNNN` job per batch of subjects with two or more dated sessions in the studies sheet.
from brainmets.cli.batch import jobs_file
from brainmets.progress import batch_message

for batch, members in FOLLOWUP_BATCHES.items():

    rule:
        """Each subject's lesions tracked over its dated sessions, their growth, the RANO-BM response at every
        follow-up and the Table 1 facts that need time (brainmets batch -> followup; research use only). A
        subject that cannot be followed (a session unreadable, dates out of order) does not fail the job: its
        status document and log say why, and its latest indications keep those facts unknown."""
        name:
            f"followup_{batch}"
        input:
            followup_inputs(members),
        output:
            status=[subject_file(s, "desc-followup_status.json") for s in members],
            figures=[
                report(
                    subject_file(s, "desc-followup_spider.png"),
                    caption="../report/spider.rst",
                    category="Follow-up",
                    labels={"subject": f"sub-{s}", "figure": "spider plot"},
                )
                for s in (members if STUDY_FIGURES else [])
            ],
        params:
            brainmets=BRAINMETS,
            jobs=lambda wildcards, threads, members=members, batch=batch: jobs_file(
                followup_jobs(members, threads), f"followup_{batch}"
            ),
        message:
            batch_message("brainmets followup", batch, [f"sub-{s}" for s in members], "subjects", f"{RESULTS}/logs/followup")
        threads: 1
        resources:
            mem_mb=3000,
            runtime=10 + math.ceil(sum(len(FOLLOWED[s]) for s in members) * 0.5),
        log:
            [f"{RESULTS}/logs/followup/batch-{batch}.log"] + [f"{RESULTS}/logs/followup/sub-{s}.log" for s in members],
        conda:
            "../envs/brainmets.yaml"
        shell:
            "{params.brainmets} batch --jobs-file {params.jobs:q} 2> {log[0]:q}"
