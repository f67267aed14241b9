"""How a workflow run goes: the studies done so far while it runs, and what it came to when it ends.

The Snakemake main process (locally and on a cluster alike) watches the status documents of the studies this
run (re)makes: :func:`start` takes a snapshot of them, and a daemon thread says ``brainmets: 12/40 studies done
(1 failed)`` whenever a document was written since, at most every few seconds. A document an earlier run left
behind does not count until this run replaces it. :func:`run_summary` reads every study's documents for the
run's last line (ok / failed / not run, warnings, studies without a clinical row). Standard library only (and
:mod:`brainmets.io.bids`): it runs inside Snakemake's process, which imports this module at every start."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from brainmets.io import bids

#: What identifies one version of a file: (inode, modification time in ns, size); None when it is absent.
Signature = tuple[int, int, int] | None

#: How many warnings the run's last line quotes, and how long each quote may be.
QUOTED_WARNINGS = 3
QUOTE_LENGTH = 120


def signature(path: str | os.PathLike) -> Signature:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def read_document(path: str | os.PathLike) -> dict | None:
    """A JSON document as a mapping; None when it is absent, unreadable or not a JSON object."""
    try:
        with open(path, encoding="utf-8") as fh:
            document = json.load(fh)
    except (OSError, ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


def study_name(path: str | os.PathLike) -> str:
    """``sub-01 ses-01`` from a study's document name (``sub-01_ses-01_desc-..._status.json``)."""
    return bids.entities_of(Path(path).name).replace("_", " ")


class StudyProgress:
    """The studies of this run done so far, from their status documents (``status`` ok or failed).

    A document counts once it differs from what :meth:`__init__` found (written, or replaced: Snakemake removes
    a job's outputs before it runs), so an earlier run's documents never count as this run's work. A line is
    shown when the count changed, at most every ``every_s`` seconds, and only for one more percent of the
    studies, a new failure, or after ``idle_s`` seconds without a line; the last study's line always."""

    def __init__(
        self,
        paths: Iterable[str | os.PathLike],
        emit: Callable[[str], object],
        *,
        every_s: float = 5.0,
        idle_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.paths = list(dict.fromkeys(str(p) for p in paths))
        self.initial = {path: signature(path) for path in self.paths}
        self.outcomes: dict[str, str] = {}  # path -> "ok" | "failed", for the documents this run wrote
        self.emit, self.every_s, self.idle_s, self.clock = emit, every_s, idle_s, clock
        self.shown: tuple[int, int] = (0, 0)
        self.shown_at: float | None = None
        self._lock = threading.Lock()

    @property
    def total(self) -> int:
        return len(self.paths)

    def update(self) -> tuple[int, int]:
        """Look at the documents not yet counted; (studies done, of which failed)."""
        for path in self.paths:
            if path in self.outcomes:
                continue
            now = signature(path)
            if now is None or now == self.initial[path]:
                continue
            status = (read_document(path) or {}).get("status")
            if status in ("ok", "failed"):
                self.outcomes[path] = status
        failed = sum(status == "failed" for status in self.outcomes.values())
        return len(self.outcomes), failed

    def line(self, done: int, failed: int) -> str:
        return f"brainmets: {done}/{self.total} studies done ({failed} failed)"

    def due(self, done: int, failed: int, now: float) -> bool:
        """Whether a line for these counts is to be shown now (see the class)."""
        if (done, failed) == self.shown:
            return False
        if done >= self.total:
            return True
        if self.shown_at is not None and now - self.shown_at < self.every_s:
            return False
        idle = self.shown_at is None or now - self.shown_at >= self.idle_s
        return failed > self.shown[1] or self.percent(done) > self.percent(self.shown[0]) or idle

    def percent(self, done: int) -> int:
        return done * 100 // max(self.total, 1)

    def poll(self, final: bool = False) -> str | None:
        """Count, and show a line when one is due (``final``: whenever the count changed); the line shown."""
        with self._lock:
            done, failed = self.update()
            now = self.clock()
            if (done, failed) == self.shown or not (final or self.due(done, failed, now)):
                return None
            self.shown, self.shown_at = (done, failed), now
            text = self.line(done, failed)
        self.emit(text)
        return text


class _Watcher:
    """A daemon thread polling a :class:`StudyProgress` every `interval_s` seconds (longer when one look at
    the documents takes long: polling takes at most about a tenth of the time)."""

    def __init__(self, progress: StudyProgress, interval_s: float):
        self.progress, self.interval_s = progress, interval_s
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="brainmets-progress", daemon=True)

    def _run(self) -> None:
        wait = self.interval_s
        while not self.stopping.wait(wait):
            started = time.monotonic()
            try:
                self.progress.poll()
            except Exception:  # noqa: BLE001 - a progress line is never worth stopping a run for
                pass
            wait = max(self.interval_s, 10 * (time.monotonic() - started))

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=30)
        try:
            self.progress.poll(final=True)
        except Exception:  # noqa: BLE001
            pass


_watcher: _Watcher | None = None


def outputs_to_make(workflow, candidates: Iterable[str | os.PathLike]) -> list[str]:
    """Of `candidates`, the files the jobs of this run will write, from Snakemake's DAG (``workflow.dag``, as
    the Snakefile's ``onstart`` sees it); none when the DAG cannot tell (a progress line is never worth failing
    a run for)."""
    wanted = {str(c) for c in candidates}
    try:
        return [str(f) for job in workflow.dag.needrun_jobs() for f in job.output if str(f) in wanted]
    except Exception:  # noqa: BLE001 - another Snakemake's DAG: no progress lines, the run goes on
        return []


def start(
    paths: Iterable[str | os.PathLike], emit: Callable[[str], object], interval_s: float = 2.0, **options
) -> StudyProgress | None:
    """Watch these status documents (the studies this run makes) until :func:`stop`; None when there are none."""
    global _watcher
    stop()
    progress = StudyProgress(paths, emit, **options)
    if not progress.total:
        return None
    _watcher = _Watcher(progress, interval_s)
    _watcher.thread.start()
    return progress


def stop() -> None:
    """Stop watching, after showing the last count if it changed since the last line (no-op when not watching)."""
    global _watcher
    watcher, _watcher = _watcher, None
    if watcher is not None:
        watcher.stop()


# ---- the run's last line ----------------------------------------------------------------------------------


@dataclass
class RunOutcome:
    """What the studies' documents say about a run (all of its studies, not only those this run made)."""

    studies: int = 0
    ok: int = 0
    failed: int = 0
    not_run: int = 0
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (study, warning) of the features step
    warned_studies: int = 0
    without_clinical_row: list[str] = field(default_factory=list)  # studies evaluated without a clinical row
    followup: dict[str, int] | None = None  # subjects followed up: ok / failed / not run


def _warnings(document: dict) -> list[str]:
    warnings = document.get("warnings")
    return [str(w) for w in warnings if w] if isinstance(warnings, list) else []


def missing_clinical_row(document: dict | None) -> bool:
    """Whether an indication document was evaluated with a clinical table that has no row for its study
    (``provenance.clinical_row_found`` false; without a table, ``clinical_sha256`` is null and nothing is
    missing)."""
    if not document or document.get("status", "evaluated") != "evaluated":
        return False
    provenance = document.get("provenance")
    if not isinstance(provenance, dict):
        return False
    return provenance.get("clinical_sha256") is not None and provenance.get("clinical_row_found") is False


def read_outcome(
    statuses: Iterable[str | os.PathLike],
    indications: Iterable[str | os.PathLike] = (),
    followups: Iterable[str | os.PathLike] | None = None,
) -> RunOutcome:
    """Count the features step's status documents (ok, failed, absent: not run), collect their ``warnings``,
    find the indication documents evaluated without a clinical row, and count the follow-ups' status documents."""
    outcome = RunOutcome()
    for path in statuses:
        document = read_document(path) or {}
        status = document.get("status")
        outcome.studies += 1
        if status == "ok":
            outcome.ok += 1
        elif status == "failed":
            outcome.failed += 1
        else:
            outcome.not_run += 1
        warnings = _warnings(document)
        outcome.warnings += [(study_name(path), w) for w in warnings]
        outcome.warned_studies += bool(warnings)
    outcome.without_clinical_row = [study_name(p) for p in indications if missing_clinical_row(read_document(p))]
    if followups is not None:
        outcome.followup = {"ok": 0, "failed": 0, "not run": 0}
        for path in followups:
            status = (read_document(path) or {}).get("status")
            outcome.followup[status if status in ("ok", "failed") else "not run"] += 1
    return outcome


def _quote(text: str, length: int = QUOTE_LENGTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= length else text[: length - 3].rstrip() + "..."


def summary_line(outcome: RunOutcome, results: str) -> str:
    """The run's last line: studies ok / failed / not run and where the failures are listed, the follow-ups,
    the studies without a clinical row, and the warnings (the first few quoted)."""
    line = f"brainmets: {outcome.studies} studies: {outcome.ok} ok, {outcome.failed} failed"
    if outcome.not_run:
        line += f", {outcome.not_run} not run"
    if outcome.failed:
        line += (
            f"; the failures are listed in {results}/group/status.tsv (column features_error),"
            f" one log per study under {results}/logs/features/"
        )
    if outcome.followup is not None:
        counts = outcome.followup
        total = sum(counts.values())
        line += f"; follow-up of {total} subjects: {counts['ok']} ok, {counts['failed']} failed"
        if counts["not run"]:
            line += f", {counts['not run']} not run"
        if counts["failed"]:
            line += f" ({results}/logs/followup/)"
    if outcome.without_clinical_row:
        line += (
            f"; {len(outcome.without_clinical_row)} studies have no row in the clinical table (clinical inputs unknown)"
        )
    if outcome.warnings:
        quoted = "; ".join(f"{study}: {_quote(text)}" for study, text in outcome.warnings[:QUOTED_WARNINGS])
        more = " ..." if len(outcome.warnings) > QUOTED_WARNINGS else ""
        line += (
            f"; {len(outcome.warnings)} warnings in {outcome.warned_studies} studies (in their logs under "
            f"{results}/logs/features/): {quoted}{more}"
        )
    return line


def run_summary(
    statuses: Iterable[str | os.PathLike],
    results: str,
    indications: Iterable[str | os.PathLike] = (),
    followups: Iterable[str | os.PathLike] | None = None,
) -> tuple[str, int]:
    """The run's last line and its number of failed studies (see :func:`read_outcome`, :func:`summary_line`)."""
    outcome = read_outcome(statuses, indications, followups)
    return summary_line(outcome, results), outcome.failed


def batch_message(what: str, batch: str, members: list[str], noun: str, logs: str) -> str:
    """What the console says when a batch job starts (its Snakemake ``message``: one short line instead of
    the batch's every input, output and log): ``brainmets features, batch 0001: 25 studies (sub-01 to sub-25);
    logs under results/logs/features/``."""
    span = members[0] if len(members) == 1 else f"{members[0]} to {members[-1]}"
    return f"{what}, batch {batch}: {len(members)} {noun} ({span}); logs under {logs}/"
