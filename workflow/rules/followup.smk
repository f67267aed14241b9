# One `followup_NNNN` job per batch of subjects with two or more dated sessions in the studies sheet.
from brainmets.cli.batch import jobs_file

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
            status=[subject_file(s, bids.FOLLOWUP_STATUS) for s in members],
            figures=[
                report(
                    subject_file(s, bids.SPIDER),
                    caption="../report/spider.rst",
                    category="Follow-up",
                    labels={"subject": bids.subject_entities(s), "figure": "spider plot"},
                )
                for s in (members if STUDY_FIGURES else [])
            ],
        params:
            brainmets=BRAINMETS,
            jobs=lambda wildcards, threads, members=members, batch=batch: jobs_file(
                followup_jobs(members, threads), f"followup_{batch}"
            ),
        message:
            PLAN.batch_message("followup", batch, members)
        threads: 1
        resources:
            mem_mb=3000,
            runtime=10 + math.ceil(sum(len(FOLLOWED[s]) for s in members) * 0.5),
        log:
            [PLAN.batch_log("followup", batch)] + [PLAN.subject_log("followup", s) for s in members],
        conda:
            "../envs/brainmets.yaml"
        shell:
            "{params.brainmets} batch --jobs-file {params.jobs:q} 2> {log[0]:q}"
