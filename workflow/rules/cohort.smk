rule cohort:
    """Cohort tables: every lesion, every study, every study's indications and processing status (TSV with
    data dictionaries, and Parquet). The documents' paths reach `brainmets cohort` through list files (bash's
    printf into process substitutions): for 10,000 studies they would overflow a command line."""
    input:
        status=all_study_files(bids.STATUS),
        indications=all_study_files(bids.INDICATIONS),
        followup=PLAN.followup_files(bids.FOLLOWUP_STATUS),
        comparison=[study_file(s, bids.COMPARISON_STATUS) for s in COMPARED],
    output:
        **PLAN.group_tables(),
    params:
        brainmets=BRAINMETS,
    message:
        f"brainmets cohort: the cohort tables of {len(STUDIES)} studies in {bids.group_dir(RESULTS)}/ (log: {PLAN.rule_log('cohort')})"
    resources:  # measured: 10,000 studies of 12 lesions each (20,000 documents) take 31 s and 745 MB
        mem_mb=lambda wc, input: 1000 + len(input) // 10,
        runtime=lambda wc, input: 10 + math.ceil(len(input) / 2000),
    log:
        PLAN.rule_log("cohort"),
    conda:
        "../envs/brainmets.yaml"
    shell:
        "{params.brainmets} cohort --status-list <(printf '%s\\n' {input.status:q})"
        " --indications-list <(printf '%s\\n' {input.indications:q}) --parquet"
        " --followup-status-list <(printf '%s\\n' {input.followup:q})"
        " --out-lesion-tracks {output.lesion_tracks_tsv:q} --out-responses {output.responses_tsv:q}"
        " --comparison-status-list <(printf '%s\\n' {input.comparison:q})"
        " --out-comparison-lesions {output.comparison_lesions_tsv:q} --out-comparison-studies {output.comparison_studies_tsv:q}"
        " --out-comparison-detection {output.comparison_detection_tsv:q}"
        " --out-comparison-lesion-table {output.comparison_lesion_table_tsv:q}"
        " --out-lesions {output.lesions_tsv:q} --out-studies {output.studies_tsv:q}"
        " --out-indications {output.indications_tsv:q} --out-status {output.status_tsv:q} 2> {log:q}"


rule cohort_figures:
    """Plots of the cohort: lesion sizes, tumour burden, locations, indications, follow-up, and the predictions'
    agreement and detection rate by lesion size."""
    input:
        lesions=rules.cohort.output.lesions_tsv,
        studies=rules.cohort.output.studies_tsv,
        indications=rules.cohort.output.indications_tsv,
        responses=rules.cohort.output.responses_tsv,
        comparison=rules.cohort.output.comparison_lesions_tsv,
        detection=rules.cohort.output.comparison_detection_tsv,
    output:
        **{
            name: report(path, caption=f"../report/{name}.rst", category="Cohort", labels={"figure": name.replace("_", " ")})
            for name, path in PLAN.cohort_figures().items()
        },
    params:
        brainmets=BRAINMETS,
        out_dir=lambda wc, output: os.path.dirname(output.lesion_size),
    message:
        f"brainmets figures: the cohort's plots in {bids.group_dir(RESULTS)}/ (log: {PLAN.rule_log('cohort_figures')})"
    resources:  # measured: 10,000 studies, 120,000 lesions take 2.7 s and 520 MB
        mem_mb=1000 + len(STUDIES) // 20,
        runtime=10,
    log:
        PLAN.rule_log("cohort_figures"),
    conda:
        "../envs/brainmets.yaml"
    shell:
        "{params.brainmets} figures --lesions {input.lesions:q} --studies {input.studies:q}"
        " --indications {input.indications:q} --responses {input.responses:q}"
        " --comparison-lesions {input.comparison:q} --comparison-detection {input.detection:q}"
        " --out-dir {params.out_dir:q} 2> {log:q}"


rule front_page:
    """The report's front page (workflow/report/workflow.rst includes it): how the run went, from the studies'
    documents and the cohort tables (brainmets.workflow.front_page). Run by Snakemake itself (a local rule)."""
    input:
        status=all_study_files(bids.STATUS),
        indications=all_study_files(bids.INDICATIONS),
        followup=PLAN.followup_files(bids.FOLLOWUP_STATUS),
        status_table=rules.cohort.output.status_tsv,
        studies_table=rules.cohort.output.studies_tsv,
        indications_table=rules.cohort.output.indications_tsv,
    output:
        PLAN.group_file(bids.FRONT_PAGE),
    log:
        PLAN.rule_log("front_page"),
    message:
        f"the report's front page: {PLAN.group_file(bids.FRONT_PAGE)}"
    run:
        from brainmets.workflow.front_page import write_front_page

        write_front_page(output[0], input, results=RESULTS, study_figures=STUDY_FIGURES, study_viewers=STUDY_VIEWERS, followed=FOLLOWED, log=log[0])


rule dataset_description:
    """What makes the results folder a BIDS-Derivatives dataset: dataset_description.json (with the source
    datasets where known), .bidsignore (the files BIDS has no name for) and README.md."""
    output:
        **PLAN.dataset_files(),
    params:
        brainmets=BRAINMETS,
        sources=" ".join(f"--source-dataset {shlex.quote(s)}" for s in source_datasets(config)),
    log:
        PLAN.rule_log("dataset_description"),
    conda:
        "../envs/brainmets.yaml"
    shell:
        "{params.brainmets} dataset-description --out {output.description:q} --bidsignore {output.bidsignore:q}"
        " --readme {output.readme:q} {params.sources} 2> {log:q}"
