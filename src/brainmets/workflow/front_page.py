"""The report's front page: how the run went (studies ok / failed, warnings, clinical rows, lesions, Table 1,
links to the cohort figures and to each study's picture), as a reStructuredText fragment that
``workflow/report/workflow.rst`` includes. Its links name the report's results (``lesion_size.png``,
``sub-01_ses-01_desc-lesions_overlay.png``): Snakemake defines a link target for each."""

from __future__ import annotations

import csv
import os
import re
import statistics
from collections.abc import Iterable
from pathlib import Path

from brainmets.display import amount, count
from brainmets.fields import cell_number
from brainmets.io import bids
from brainmets.workflow.progress import RunOutcome, read_outcome

#: The cohort figures (``brainmets figures``), in the order the front page links them.
COHORT_FIGURES = bids.COHORT_FIGURES
#: Table 1's modalities as the front page names them.
MODALITY_NAMES = {
    "srs": "SRS",
    "surgery": "surgery",
    "wbrt": "WBRT",
    "systemic_therapy": "systemic therapy",
    "no_intervention": "no intervention",
}
#: Rows of the studies table and items of the lists at most (the cohort tables hold them all).
MAX_ROWS = 500
MAX_LISTED = 50


def escape(text: object) -> str:
    """Text as reStructuredText shows it literally: one line, inline markup characters escaped."""
    return re.sub(r"([\\`*_|\[\]<>])", r"\\\1", " ".join(str(text).split()))


def link(text: str, target: str) -> str:
    """A link to one of the report's results (its file name is Snakemake's link target); anonymous, so that
    the same text may link twice."""
    return f"`{escape(text).replace('`', '')} <{target}_>`__"


def _range(values: list[float], unit: str = "") -> str:
    return f"median {amount(statistics.median(values))}{unit} ({amount(min(values))} to {amount(max(values))}{unit})"


def _study(row: dict) -> str:
    """``sub-01_ses-01`` from a cohort table row (participant_id, session_id: n/a without a session)."""
    session = row.get("session_id")
    return row["participant_id"] + (f"_{session}" if session and session != "n/a" else "")


def read_table(path: str | os.PathLike | None) -> list[dict]:
    if not path or not Path(path).is_file():
        return []
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def front_page(
    outcome: RunOutcome,
    status: list[dict],
    studies: list[dict],
    indications: list[dict],
    *,
    results: str,
    study_figures: bool,
    study_viewers: bool = False,
    followed: Iterable[str] = (),
) -> str:
    """The fragment (section titles underlined with ``-``: it goes under a title of the including page)."""
    picture = {_study(r): bids.file_name(_study(r), bids.OVERLAY) for r in status} if study_figures else {}

    def name(study: str) -> str:
        shown = study.replace("_", " ")
        return link(shown, picture[study]) if study in picture else escape(shown)

    failed = [r for r in status if r.get("features_status") == "failed"]
    fields = [
        f"{outcome.studies}: {outcome.ok} ok, "
        + (
            f"**{outcome.failed} failed** (listed below and in ``{results}/group/status.tsv``)"
            if outcome.failed
            else "0 failed"
        )  # fmt: skip
        + (f", {outcome.not_run} not run" if outcome.not_run else "")
    ]
    lines = [f":Studies: {fields[0]}"]
    if outcome.followup is not None:
        counts = outcome.followup
        names = [bids.subject_entities(s) for s in followed] if study_figures else []
        subjects = ", ".join(link(name, bids.file_name(name, bids.SPIDER)) for name in names)
        lines.append(
            f":Follow-up: {sum(counts.values())} subjects: {counts['ok']} ok, {counts['failed']} failed"
            + (f", {counts['not run']} not run" if counts["not run"] else "")
            + (f" ({subjects})" if subjects else "")
        )
    lines.append(
        f":Warnings: {len(outcome.warnings)} in {outcome.warned_studies} studies (listed below; each study's log "
        f"is under ``{results}/logs/features/``)"
        if outcome.warnings
        else ":Warnings: none"
    )
    evaluated = [r for r in indications]
    if outcome.without_clinical_row:
        lines.append(
            f":Clinical table: {len(outcome.without_clinical_row)} of {len(evaluated)} evaluated studies have no row: "
            "their clinical inputs are unknown"
        )
    counts = [n for r in status if (n := cell_number(r.get("lesion_count"))) is not None]
    if counts:
        empty = sum(n == 0 for n in counts)
        lines.append(
            f":Lesions: {amount(sum(counts))} in {len(counts)} studies, per study {_range(counts)}"
            + (f"; {count(empty, 'study', 'studies')} without a lesion" if empty else "")
        )
    volumes = [v for r in studies if (v := cell_number(r.get("cumulative_tumor_volume_ml"))) is not None]
    if volumes:
        lines.append(f":Tumour volume: cumulative per study, {_range(volumes, ' mL')}")
    measurable = [n for r in studies if (n := cell_number(r.get("measurable_lesion_count"))) is not None]
    if measurable:
        lines.append(f":RANO-BM: {sum(n > 0 for n in measurable)} studies with a measurable lesion")
    if evaluated:
        indicated = ", ".join(
            f"{label} {sum(r.get(f'{m}_status') == 'indicated' for r in evaluated)}"
            for m, label in MODALITY_NAMES.items()
        )
        lines.append(f":Table 1: studies where it is indicated, of {len(evaluated)} evaluated: {indicated} "
                     "(research use only: not treatment recommendations)")  # fmt: skip
    figures = ", ".join(link(f.replace("_", " "), bids.figure_name(f)) for f in COHORT_FIGURES)
    lines.append(f":Cohort figures: {figures}")
    out = ["\n".join(lines), ""]

    if failed:
        out += _section("Failed studies", [f"{name(_study(r))}: {escape(r.get('features_error'))}" for r in failed])
    if outcome.warnings:
        out += _section("Warnings", [f"{escape(study)}: {escape(text)}" for study, text in outcome.warnings])
    if outcome.without_clinical_row:
        out += _section(
            "Studies without a clinical row",
            [", ".join(escape(s) for s in outcome.without_clinical_row[:MAX_LISTED])]
            + ([f"... and {len(outcome.without_clinical_row) - MAX_LISTED} more"] if len(outcome.without_clinical_row) > MAX_LISTED else []),
        )  # fmt: skip
    out += _studies_table(status, studies, outcome, name, results, study_viewers)
    return "\n".join(out).rstrip() + "\n"


def _section(title: str, items: list[str]) -> list[str]:
    shown = items[:MAX_LISTED] + ([f"... and {len(items) - MAX_LISTED} more"] if len(items) > MAX_LISTED else [])
    return [title, "-" * len(title), "", *(f"- {item}" for item in shown), ""]


def viewer_link(row: dict, results: str) -> str:
    """A link to a study's viewer page, a file beside the report's results (relative to the folder the workflow
    ran in, where ``snakemake --report`` writes the report): the report does not embed the pages."""
    session = row.get("session_id")
    folder = row["participant_id"] + (f"/{session}" if session and session != "n/a" else "")
    return f"`open <{results}/{folder}/anat/{bids.file_name(_study(row), bids.VIEWER)}>`__"


def _studies_table(
    status: list[dict], studies: list[dict], outcome: RunOutcome, name, results: str, viewers: bool = False
) -> list[str]:
    if not status:
        return []
    volume = {_study(r): r.get("cumulative_tumor_volume_ml") for r in studies}
    warned: dict[str, int] = {}
    for study, _ in outcome.warnings:
        warned[study.replace(" ", "_")] = warned.get(study.replace(" ", "_"), 0) + 1
    no_row = {s.replace(" ", "_") for s in outcome.without_clinical_row}
    shown = status[:MAX_ROWS]
    title = "Studies" if len(shown) == len(status) else f"Studies (the first {MAX_ROWS} of {len(status)})"
    out = [title, "-" * len(title), ""]
    if len(shown) < len(status):
        out += [f"Every study is listed in ``{results}/group/status.tsv``.", ""]
    out += [".. list-table::", "   :header-rows: 1", ""]
    rows = [["Study", "Status", "Lesions", "Volume (mL)", "Warnings", "Clinical row", *(["Viewer"] * viewers)]]
    for r in shown:
        study = _study(r)
        rows.append([
            name(study),
            escape(r.get("features_status", "")),
            escape(r.get("lesion_count", "")),
            amount(v) if (v := cell_number(volume.get(study))) is not None else "n/a",
            str(warned.get(study, 0)),
            "missing" if study in no_row else "",
            *([viewer_link(r, results)] * viewers),
        ])  # fmt: skip
    for row in rows:
        out.append(f"   * - {row[0]}")
        out += [f"     - {cell}".rstrip() for cell in row[1:]]
    return [*out, ""]


def write_front_page(
    path: str | os.PathLike,
    inputs,
    *,
    results: str,
    study_figures: bool,
    study_viewers: bool = False,
    followed: Iterable[str] = (),
    log: str | os.PathLike | None = None,
) -> None:
    """Read the studies' documents and the cohort tables; write the front page's fragment (and, to `log`, what
    it counted). `inputs` names them as the workflow's ``front_page`` rule does: ``status``, ``indications`` and
    ``followup`` (lists of documents), ``status_table``, ``studies_table``, ``indications_table``; `followed`:
    the subjects followed up (none: no follow-up line)."""
    from brainmets.io.writers import atomic_path

    followed = list(followed)
    outcome = read_outcome(inputs.status, inputs.indications, inputs.followup if followed else None)
    text = front_page(
        outcome,
        read_table(inputs.status_table),
        read_table(inputs.studies_table),
        read_table(inputs.indications_table),
        results=results,
        study_figures=study_figures,
        study_viewers=study_viewers,
        followed=followed,
    )
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    if log:
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        Path(log).write_text(
            f"brainmets: front page of {outcome.studies} studies ({outcome.failed} failed, {len(outcome.warnings)} "
            f"warnings); wrote {path}\n",
            encoding="utf-8",
        )
