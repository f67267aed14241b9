rule cohort:
    """Cohort tables: every lesion, every study, every study's indications and processing status (TSV with
    data dictionaries, and Parquet). The documents' paths reach `brainmets cohort` through list files (bash's
    printf into process substitutions): for 10,000 studies they would overflow a command line."""
    input:
        status=all_study_files("desc-brainmets_status.json"),
        indications=all_study_files("desc-brainmets_indications.json"),
        followup=[subject_file(s, "desc-followup_status.json") for s in FOLLOWED],
        comparison=[study_file(s, "desc-comparison_status.json") for s in COMPARED],
    output:
        **{
            f"{name}_{kind}": f"{RESULTS}/group/{name}.{kind}"
            for name in ("lesions", "studies", "indications", "status", "lesion_tracks", "responses",
                         "comparison_lesions", "comparison_studies")
            for kind in ("tsv", "json", "parquet")
        },
    params:
        brainmets=BRAINMETS,
    message:
        f"brainmets cohort: the cohort tables of {len(STUDIES)} studies in {RESULTS}/group/ (log: {RESULTS}/logs/cohort.log)"
    resources:  # measured: 10,000 studies of 12 lesions each (20,000 documents) take 31 s and 745 MB
        mem_mb=lambda wc, input: 1000 + len(input) // 10,
        runtime=lambda wc, input: 10 + math.ceil(len(input) / 2000),
    log:
        f"{RESULTS}/logs/cohort.log",
    conda:
        "../envs/brainmets.yaml"
    shell:
        "{params.brainmets} cohort --status-list <(printf '%s\\n' {input.status:q})"
        " --indications-list <(printf '%s\\n' {input.indications:q}) --parquet"
        " --followup-status-list <(printf '%s\\n' {input.followup:q})"
        " --out-lesion-tracks {output.lesion_tracks_tsv:q} --out-responses {output.responses_tsv:q}"
        " --comparison-status-list <(printf '%s\\n' {input.comparison:q})"
        " --out-comparison-lesions {output.comparison_lesions_tsv:q} --out-comparison-studies {output.comparison_studies_tsv:q}"
        " --out-lesions {output.lesions_tsv:q} --out-studies {output.studies_tsv:q}"
        " --out-indications {output.indications_tsv:q} --out-status {output.status_tsv:q} 2> {log:q}"


rule cohort_figures:
    """Plots of the cohort: lesion sizes, tumour burden, locations, indications."""
    input:
        lesions=rules.cohort.output.lesions_tsv,
        studies=rules.cohort.output.studies_tsv,
        indications=rules.cohort.output.indications_tsv,
        responses=rules.cohort.output.responses_tsv,
        comparison=rules.cohort.output.comparison_lesions_tsv,
    output:
        **{
            name: report(
                f"{RESULTS}/group/{name}.png",
                caption=f"../report/{name}.rst",
                category="Cohort",
                labels={"figure": name.replace("_", " ")},
            )
            for name in ("lesion_size", "volume_vs_count", "location", "indications", "swimmer", "comparison")
        },
    params:
        brainmets=BRAINMETS,
        out_dir=lambda wc, output: os.path.dirname(output.lesion_size),
    message:
        f"brainmets figures: the cohort's plots in {RESULTS}/group/ (log: {RESULTS}/logs/cohort_figures.log)"
    resources:  # measured: 10,000 studies, 120,000 lesions take 2.7 s and 520 MB
        mem_mb=1000 + len(STUDIES) // 20,
        runtime=10,
    log:
        f"{RESULTS}/logs/cohort_figures.log",
    conda:
        "../envs/brainmets.yaml"
    shell:
        "{params.brainmets} figures --lesions {input.lesions:q} --studies {input.studies:q}"
        " --indications {input.indications:q} --responses {input.responses:q}"
        " --comparison-lesions {input.comparison:q} --out-dir {params.out_dir:q} 2> {log:q}"


rule front_page:
    """The report's front page (workflow/report/workflow.rst includes it): how the run went, from the studies'
    documents and the cohort tables (brainmets.report.front_page). Run by Snakemake itself (a local rule)."""
    input:
        status=all_study_files("desc-brainmets_status.json"),
        indications=all_study_files("desc-brainmets_indications.json"),
        followup=[subject_file(s, "desc-followup_status.json") for s in FOLLOWED],
        status_table=rules.cohort.output.status_tsv,
        studies_table=rules.cohort.output.studies_tsv,
        indications_table=rules.cohort.output.indications_tsv,
    output:
        f"{RESULTS}/group/summary.rst",
    log:
        f"{RESULTS}/logs/front_page.log",
    message:
        f"the report's front page: {RESULTS}/group/summary.rst"
    run:
        from brainmets.report.front_page import write_front_page

        write_front_page(output[0], input, results=RESULTS, study_figures=STUDY_FIGURES, followed=FOLLOWED, log=log[0])


rule dataset_description:
    """What makes the results folder a BIDS-Derivatives dataset: dataset_description.json (with the source
    datasets where known), .bidsignore (the files BIDS has no name for) and README.md."""
    output:
        description=f"{RESULTS}/dataset_description.json",
        bidsignore=f"{RESULTS}/.bidsignore",
        readme=f"{RESULTS}/README.md",
    params:
        brainmets=BRAINMETS,
        sources=" ".join(f"--source-dataset {shlex.quote(s)}" for s in source_datasets()),
    log:
        f"{RESULTS}/logs/dataset_description.log",
    conda:
        "../envs/brainmets.yaml"
    shell:
        "{params.brainmets} dataset-description --out {output.description:q} --bidsignore {output.bidsignore:q}"
        " --readme {output.readme:q} {params.sources} 2> {log:q}"
