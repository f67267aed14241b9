"""A workflow run's start and end, as the Snakefile's ``onstart``, ``onsuccess`` and ``onerror`` call them:
the temporary files of killed jobs swept, the features no status document supports removed, SLURM without
accounting handled (:mod:`.slurm`), the progress lines started (:mod:`.progress`), and the run's last line.
Each function takes the run's :class:`~.plan.Plan` (and Snakemake's ``workflow`` object where it needs the
executor's settings or the DAG), so that tests call them with no workflow running."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from brainmets.io import bids
from brainmets.workflow.plan import Plan


def _say(line: str) -> None:
    print(line, file=sys.stderr)


def _some(items: list, shown: int = 5) -> str:
    return ", ".join(str(p) for p in items[:shown]) + (" ..." if len(items) > shown else "")


def brainmets_command(deployment_methods: Iterable[object], python: str = sys.executable) -> str:
    """The `brainmets` command the rules run: that of the rule's conda env with --sdm conda (a deployment
    method naming conda), else the one installed beside the Python running Snakemake (so an unactivated
    .venv/bin/snakemake works too), else `brainmets` on the PATH."""
    methods = {str(m).lower() for m in deployment_methods}
    beside = Path(python).with_name("brainmets")
    if any("conda" in m for m in methods) or not beside.exists():
        return "brainmets"
    return shlex.quote(str(beside))


def run_summary(plan: Plan) -> tuple[str, int]:
    """One line saying how the run went (studies ok / failed / not run and where the failures are listed, the
    follow-ups, the studies without a clinical row, the features step's warnings) and the number of failed
    studies, from the studies' documents (:func:`.progress.run_summary`)."""
    from brainmets.workflow.progress import run_summary as summary

    return summary(
        plan.all_study_files(bids.STATUS),
        plan.results,
        indications=plan.all_study_files(bids.INDICATIONS),
        followups=plan.followup_files(bids.FOLLOWUP_STATUS) if plan.followed else None,
    )


def remove_unsupported_features(plan: Plan, say: Callable[[str], object] = _say) -> list[str]:
    """Remove the features of every study whose status document is gone: Snakemake discards all declared
    outputs of a failed job group, so an indications job cancelled or killed after its batch's features job
    finished takes that job's status documents with it, and the features beside them no longer count. Returns
    the studies whose features were removed (and `say`s so)."""
    studies = []
    for study in plan.names:
        if os.path.exists(plan.study_file(study, bids.STATUS)):
            continue
        present = [p for p in (plan.study_file(study, s) for s in bids.FEATURE_SUFFIXES) if os.path.isfile(p)]
        for path in present:
            os.unlink(path)
        studies += [study] if present else []
    if studies:
        say(f"brainmets: removed the features of {len(studies)} studies that have no status document (their job "
            f"did not finish): {_some(studies)}")  # fmt: skip
    return studies


def report_run(plan: Plan, succeeded: bool, say: Callable[[str], object] = _say) -> int:
    """At the run's end: stop the progress lines, remove the features a failed run left unsupported, and say the
    run's summary line last; with `fail_on_failed_studies`, failed studies fail a run that succeeded
    (SystemExit 1). Returns the number of failed studies."""
    from brainmets.workflow import progress

    progress.stop()
    if not succeeded:
        remove_unsupported_features(plan, say)
    line, failed = run_summary(plan)
    say(line)
    if succeeded and failed and plan.config["fail_on_failed_studies"]:
        say(f"brainmets: exiting with an error: {failed} studies failed (config fail_on_failed_studies)")
        raise SystemExit(1)
    return failed


def sweep(plan: Plan, say: Callable[[str], object] = _say) -> list[Path]:
    """Remove the temporary outputs of killed jobs (SIGKILL, out of memory) under the results folder."""
    from brainmets.io.writers import sweep_temporary_files

    swept = sweep_temporary_files(plan.results) if os.path.isdir(plan.results) else []
    if swept:
        say(f"brainmets: removed {len(swept)} temporary files of killed jobs under {plan.results}/: {_some(swept)}")
    return swept


def prepare_run(plan: Plan, workflow, say: Callable[[str], object] = _say) -> None:
    """Before the first job (the Snakefile's ``onstart``, in the main process only: cluster jobs run with
    --no-hooks): sweep the temporary outputs of killed jobs and the features no status document supports; on a
    SLURM cluster without job accounting read job states with squeue (:mod:`.slurm`); start the progress lines,
    the studies this run makes done so far, from their status documents (:mod:`.progress`)."""
    from brainmets.workflow.slurm import SlurmSettingError, use_squeue_without_accounting

    sweep(plan, say)
    remove_unsupported_features(plan, say)
    try:
        use_squeue_without_accounting(getattr(workflow, "executor_settings", None), say)
    except SlurmSettingError as exc:
        from snakemake.exceptions import WorkflowError

        raise WorkflowError(str(exc)) from None
    if getattr(workflow, "is_main_process", True):
        start_progress(plan, workflow)


def start_progress(plan: Plan, workflow) -> None:
    """Start the progress lines on Snakemake's logger (hidden by --quiet) for the studies this run makes."""
    from snakemake.logging import logger
    from snakemake.settings.enums import Quietness

    from brainmets.workflow import progress

    made = progress.outputs_to_make(workflow, plan.all_study_files(bids.STATUS))
    progress.start(made, lambda line: logger.info(line, extra={"quietness": Quietness.PROGRESS}))
