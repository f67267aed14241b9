"""The Snakemake workflow's Python, testable without Snakemake: ``workflow/rules/*.smk`` only validate the
config, build the run's :class:`~brainmets.workflow.plan.Plan` and call these modules in one-line wrappers.

- :mod:`.studies`: the studies sheet read and checked row by row, BIDS-folder discovery, followed subjects,
  the demo's settings;
- :mod:`.plan`: what a run makes from its config and studies: file names (:mod:`brainmets.io.bids`), logs,
  batches, followed subjects, compared studies;
- :mod:`.jobs`: the jobs documents of ``brainmets batch`` (each study's arguments) and each batch's inputs;
- :mod:`.run`: the run's start and end (temporary files swept, unsupported features removed, summary line);
- :mod:`.slurm`: SLURM without job accounting (squeue instead of sacct, MinJobAge from ``scontrol``);
- :mod:`.progress`: the studies done while the run goes, and the run's last line;
- :mod:`.front_page`: the report's front page.

Importing this package imports none of them (Snakemake's process imports what its rules use)."""
