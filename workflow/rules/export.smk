# One `export_<format>_NNNN` job per batch of studies and DICOM format of the config's `export` (none by default).
from brainmets.cli.batch import jobs_file

for fmt in EXPORTS:
    for batch, members in BATCHES.items():

        rule:
            """Each study's lesions as a DICOM SEG or RTSTRUCT for the clinic's viewers (brainmets batch ->
            export): on the studies sheet's reference series when it names one, else on a derived MR series
            beside the export; a followed study's lesions numbered by track. A study that cannot be exported
            does not fail the job: its status document says why."""
            name:
                f"export_{fmt.replace('-', '')}_{batch}"
            input:
                export_inputs(members),
            output:
                status=[study_file(s, bids.EXPORT_STATUS[fmt]) for s in members],
            params:
                brainmets=BRAINMETS,
                jobs=lambda wildcards, members=members, batch=batch, fmt=fmt: jobs_file(
                    export_jobs(members, fmt), f"export_{fmt}_{batch}"
                ),
            message:
                PLAN.batch_message(f"export-{fmt}", batch, members)
            threads: 1
            resources:
                mem_mb=2000,
                runtime=10 + math.ceil(len(members) * 0.25),
            log:
                [PLAN.batch_log(f"export-{fmt}", batch)] + [study_log(f"export-{fmt}", s) for s in members],
            conda:
                "../envs/brainmets.yaml"
            shell:
                "{params.brainmets} batch --jobs-file {params.jobs:q} 2> {log[0]:q}"
