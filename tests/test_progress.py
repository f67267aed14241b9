"""brainmets.workflow.progress: the studies done while a workflow runs (counting, stale documents, throttling, the
watcher thread) and the run's last line; brainmets.workflow.front_page: the report's front page."""

import json
import os
import time
from types import SimpleNamespace

import pytest

from brainmets.workflow import progress
from brainmets.workflow.front_page import escape, front_page, write_front_page
from brainmets.workflow.progress import StudyProgress, batch_message, read_outcome, run_summary


def status(path, state="ok", warnings=None, **extra):
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"status": state, "error": None if state == "ok" else "it broke", "outputs": {}, **extra}
    if warnings is not None:
        document["warnings"] = warnings
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document))
    os.replace(tmp, path)  # as brainmets writes them: a new file renamed into place
    return path


def documents(tmp_path, n):
    return [tmp_path / f"sub-{i:02d}_ses-01_desc-brainmets_status.json" for i in range(1, n + 1)]


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


# ---- counting ---------------------------------------------------------------------------------------------


def test_only_documents_written_after_the_start_count(tmp_path):
    """An earlier run's documents (ok or failed) are not this run's work until they are replaced."""
    paths = documents(tmp_path, 4)
    status(paths[0], "ok")
    status(paths[1], "failed")  # both stale: from an earlier run
    watch = StudyProgress(paths, lambda line: None)
    assert watch.update() == (0, 0)
    status(paths[2], "failed")  # new
    status(paths[0], "ok")  # replaced, same content
    assert watch.update() == (2, 1)
    paths[1].unlink()  # Snakemake removes a job's outputs before running it...
    assert watch.update() == (2, 1)
    status(paths[1], "ok")  # ...and the job writes them again
    status(paths[3], "ok")
    assert watch.update() == (4, 1)


def test_a_document_being_written_or_not_a_status_does_not_count(tmp_path):
    paths = documents(tmp_path, 2)
    watch = StudyProgress(paths, lambda line: None)
    paths[0].write_text('{"status": "o')  # half written (brainmets renames into place, but be safe)
    paths[1].write_text('{"status": "running"}')
    assert watch.update() == (0, 0)
    status(paths[0])
    assert watch.update() == (1, 0)


def test_a_rerun_with_every_document_in_place_shows_nothing(tmp_path):
    paths = [status(p) for p in documents(tmp_path, 3)]
    shown = []
    watch = StudyProgress(paths, shown.append)
    for _ in range(3):
        assert watch.poll() is None
    assert watch.poll(final=True) is None and shown == []


# ---- throttling -------------------------------------------------------------------------------------------


def test_a_line_when_the_count_changes_at_most_every_few_seconds(tmp_path):
    paths, clock, shown = documents(tmp_path, 10), Clock(), []
    watch = StudyProgress(paths, shown.append, every_s=5, clock=clock)
    assert watch.poll() is None  # nothing done yet: no line
    status(paths[0])
    assert watch.poll() == "brainmets: 1/10 studies done (0 failed)"  # the first one at once
    clock.now = 1
    status(paths[1])
    assert watch.poll() is None  # within 5 s of the last line
    clock.now = 4.9
    assert watch.poll() is None
    clock.now = 5
    assert watch.poll() == "brainmets: 2/10 studies done (0 failed)"
    clock.now = 20
    assert watch.poll() is None  # nothing changed: no line however long it was
    status(paths[2], "failed")
    assert watch.poll() == "brainmets: 3/10 studies done (1 failed)"
    assert shown == [
        "brainmets: 1/10 studies done (0 failed)",
        "brainmets: 2/10 studies done (0 failed)",
        "brainmets: 3/10 studies done (1 failed)",
    ]


def test_a_large_cohort_gets_a_line_per_percent_a_failure_or_a_minute(tmp_path):
    paths, clock = documents(tmp_path, 400), Clock()
    watch = StudyProgress(paths, lambda line: None, every_s=5, idle_s=60, clock=clock)
    status(paths[0])
    assert watch.poll() is not None  # 1/400: the first line
    for k in range(1, 3):
        clock.now += 10
        status(paths[k])
        assert watch.poll() is None  # 2/400, 3/400: still 0 %
    clock.now += 10
    status(paths[3])
    assert watch.poll() == "brainmets: 4/400 studies done (0 failed)"  # 1 %
    clock.now += 10
    status(paths[4], "failed")
    assert watch.poll() == "brainmets: 5/400 studies done (1 failed)"  # a new failure
    clock.now += 30
    status(paths[5])
    assert watch.poll() is None
    clock.now += 30  # a minute since the last line
    assert watch.poll() == "brainmets: 6/400 studies done (1 failed)"


def test_the_last_study_and_the_final_count_are_always_shown(tmp_path):
    paths, clock, shown = documents(tmp_path, 3), Clock(), []
    watch = StudyProgress(paths, shown.append, every_s=5, clock=clock)
    status(paths[0])
    watch.poll()
    status(paths[1])
    assert watch.poll() is None  # throttled...
    assert watch.poll(final=True) == "brainmets: 2/3 studies done (0 failed)"  # ...but not when stopping
    status(paths[2])
    assert watch.poll() == "brainmets: 3/3 studies done (0 failed)"  # the last one, within 5 s
    assert watch.poll(final=True) is None  # unchanged: said once
    assert len(shown) == 3


def test_the_watcher_thread_reports_and_stops_with_the_final_count(tmp_path):
    paths, shown = documents(tmp_path, 3), []
    assert progress.start([], shown.append) is None  # nothing to make: no thread
    watch = progress.start(paths, shown.append, interval_s=0.05, every_s=0)
    assert watch is not None and watch.total == 3
    try:
        status(paths[0])
        deadline = time.monotonic() + 10
        while not shown and time.monotonic() < deadline:
            time.sleep(0.02)
        assert shown == ["brainmets: 1/3 studies done (0 failed)"]
        status(paths[1], "failed")
    finally:
        progress.stop()
    assert shown[-1] == "brainmets: 2/3 studies done (1 failed)"
    thread_names = [t.name for t in __import__("threading").enumerate()]
    assert "brainmets-progress" not in thread_names
    progress.stop()  # stopping twice is harmless


def test_the_studies_to_watch_are_those_the_runs_jobs_write(tmp_path):
    class Job:
        def __init__(self, *output):
            self.output = list(output)

    class Dag:
        def needrun_jobs(self):
            return iter([Job("r/a_status.json", "r/a_overlay.png"), Job("r/group/status.tsv"), Job("r/c_status.json")])

    class Workflow:
        dag = Dag()

    statuses = ["r/a_status.json", "r/b_status.json", "r/c_status.json"]
    assert progress.outputs_to_make(Workflow(), statuses) == ["r/a_status.json", "r/c_status.json"]
    assert progress.outputs_to_make(object(), statuses) == []  # no DAG to read: no progress, no error


def test_a_poll_that_fails_never_stops_the_watcher(tmp_path):
    paths, shown = documents(tmp_path, 2), []

    def broken_once(line):
        if not shown:
            shown.append("failed")
            raise OSError("stderr is gone")
        shown.append(line)

    progress.start(paths, broken_once, interval_s=0.02, every_s=0)
    try:
        status(paths[0])
        deadline = time.monotonic() + 10
        while not shown and time.monotonic() < deadline:
            time.sleep(0.02)
        status(paths[1])  # the watcher survived the failed line: it reports the next one
        while len(shown) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        progress.stop()  # no exception, the thread ended
    assert shown[:2] == ["failed", "brainmets: 2/2 studies done (0 failed)"]
    assert "brainmets-progress" not in [t.name for t in __import__("threading").enumerate()]


# ---- the run's last line ----------------------------------------------------------------------------------


def indication(path, table=True, row=True, evaluated=True):
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"status": "evaluated" if evaluated else "not_evaluated", "warnings": []}
    if evaluated:
        document["provenance"] = {"clinical_sha256": "ab" * 32 if table else None, "clinical_row_found": row}
    path.write_text(json.dumps(document))
    return path


def test_the_last_line_counts_failures_warnings_and_missing_clinical_rows(tmp_path):
    paths = documents(tmp_path, 5)
    status(paths[0], "ok", warnings=["label 9 is not in the scheme: ignored"])
    status(paths[1], "ok", warnings=["read as a binary tumour mask", "a second one"])
    status(paths[2], "failed")
    status(paths[3], "ok", warnings=[])  # paths[4]: never written (not run)
    indications = [
        indication(tmp_path / "a_indications.json", row=True),
        indication(tmp_path / "sub-02_ses-01_desc-brainmets_indications.json", row=False),
        indication(tmp_path / "c_indications.json", evaluated=False),  # features failed: not counted
        indication(tmp_path / "d_indications.json", table=False, row=False),  # no clinical table at all
    ]
    followups = [status(tmp_path / "sub-10_desc-followup_status.json"), tmp_path / "absent.json"]
    line, failed = run_summary(paths, "res", indications, followups)
    assert failed == 1
    assert line == (
        "brainmets: 5 studies: 3 ok, 1 failed, 1 not run; the failures are listed in res/group/status.tsv "
        "(column features_error), one log per study under res/logs/features/; follow-up of 2 subjects: 1 ok, "
        "0 failed, 1 not run; 1 studies have no row in the clinical table (clinical inputs unknown); 3 warnings "
        "in 2 studies (in their logs under res/logs/features/): sub-01 ses-01: label 9 is not in the scheme: "
        "ignored; sub-02 ses-01: read as a binary tumour mask; sub-02 ses-01: a second one"
    )
    outcome = read_outcome(paths, indications)
    assert outcome.without_clinical_row == ["sub-02 ses-01"] and outcome.followup is None


def test_a_clean_run_says_only_what_it_did(tmp_path):
    paths = [status(p) for p in documents(tmp_path, 2)]
    assert run_summary(paths, "results") == ("brainmets: 2 studies: 2 ok, 0 failed", 0)


def test_the_last_line_quotes_a_few_warnings_shortened(tmp_path):
    paths = documents(tmp_path, 10)
    for path in paths:
        status(path, "ok", warnings=["a very long warning " * 30, "another\n  one"])
    line, _ = run_summary(paths, "results")
    assert "20 warnings in 10 studies" in line and line.endswith(" ...")
    assert line.count("a very long warning") < 30 and "another one" in line
    assert len(line) < 1000


def test_a_batch_job_is_one_short_line():
    assert batch_message("brainmets features", "0003", ["sub-01", "sub-02", "sub-09"], "studies", "r/logs/f") == (
        "brainmets features, batch 0003: 3 studies (sub-01 to sub-09); logs under r/logs/f/"
    )
    assert (
        batch_message("x", "0001", ["sub-10"], "subjects", "l") == "x, batch 0001: 1 subjects (sub-10); logs under l/"
    )


# ---- the report's front page ------------------------------------------------------------------------------

#: The cohort figures the front page links, written out (not read from brainmets.io.bids: a figure dropped there
#: would go unnoticed).
COHORT_FIGURE_NAMES = ("lesion_size", "volume_vs_count", "location", "indications", "swimmer", "comparison",
                       "detection_by_size")  # fmt: skip
STATUS = [
    {"participant_id": "sub-01", "session_id": "ses-01", "features_status": "ok", "features_error": "n/a",
     "lesion_count": "3"},
    {"participant_id": "sub-02", "session_id": "n/a", "features_status": "ok", "features_error": "n/a",
     "lesion_count": "0"},
    {"participant_id": "sub-03", "session_id": "ses-01", "features_status": "failed",
     "features_error": "sub-03_dseg.nii.gz: not a *readable* NIfTI `x` |y| [z]_ <w>", "lesion_count": "n/a"},
]  # fmt: skip
STUDIES = [
    {"participant_id": "sub-01", "session_id": "ses-01", "cumulative_tumor_volume_ml": "12.41",
     "measurable_lesion_count": "2"},
    {"participant_id": "sub-02", "session_id": "n/a", "cumulative_tumor_volume_ml": "0",
     "measurable_lesion_count": "0"},
]  # fmt: skip
INDICATIONS = [
    {"participant_id": "sub-01", "session_id": "ses-01", "srs_status": "indicated", "surgery_status": "undetermined"},
    {"participant_id": "sub-02", "session_id": "n/a", "srs_status": "not_indicated", "wbrt_status": "indicated"},
]


def render(fragment: str, targets: list[str]):
    """The fragment as Snakemake's report renders it: under a title, with a link target per result."""
    from docutils.core import publish_doctree
    from docutils.utils import Reporter

    source = "Front\n=====\n\n" + fragment + "\n" + "\n".join(f".. _{t}: javascript:show('{t}')" for t in targets)
    doctree = publish_doctree(source, settings_overrides={"report_level": Reporter.SEVERE_LEVEL + 1})
    problems = [n.astext() for n in doctree.findall() if n.tagname in ("system_message", "problematic")]
    return doctree, problems


def outcome_of(tmp_path):
    paths = [tmp_path / "sub-01_ses-01_desc-brainmets_status.json", tmp_path / "sub-02_desc-brainmets_status.json",
             tmp_path / "sub-03_ses-01_desc-brainmets_status.json"]  # fmt: skip
    status(paths[0], warnings=["label 9 ignored_ *bold*"])
    status(paths[1])
    status(paths[2], "failed")
    rows = [indication(tmp_path / "sub-02_desc-brainmets_indications.json", row=False)]
    return read_outcome(paths, rows, [status(tmp_path / "sub-10_desc-followup_status.json")])


def test_the_front_page_answers_how_the_run_went(tmp_path):
    text = front_page(outcome_of(tmp_path), STATUS, STUDIES, INDICATIONS, results="res", study_figures=True,
                      followed=["10"])  # fmt: skip
    figures = [f"{f}.png" for f in COHORT_FIGURE_NAMES]
    pictures = ["sub-01_ses-01_desc-lesions_overlay.png", "sub-02_desc-lesions_overlay.png",
                "sub-03_ses-01_desc-lesions_overlay.png", "sub-10_desc-followup_spider.png"]  # fmt: skip
    doctree, problems = render(text, figures + pictures)
    assert problems == []
    shown = " ".join(doctree.astext().split())
    assert "Studies 3: 2 ok, 1 failed (listed below and in res/group/status.tsv)" in shown
    assert "Follow-up 1 subjects: 1 ok, 0 failed (sub-10)" in shown
    assert "Warnings 1 in 1 studies" in shown and "label 9 ignored_ *bold*" in shown
    assert "Clinical table 1 of 2 evaluated studies have no row" in shown
    assert "Lesions 3 in 2 studies, per study median 1.5 (0 to 3); 1 study without a lesion" in shown
    assert "Tumour volume cumulative per study, median 6.21 mL (0 to 12.41 mL)" in shown
    assert "RANO-BM 1 studies with a measurable lesion" in shown
    assert "SRS 1, surgery 0, WBRT 1, systemic therapy 0, no intervention 0" in shown
    assert "sub-03_dseg.nii.gz: not a *readable* NIfTI `x` |y| [z]_ <w>" in shown  # shown as it is
    links = {n.get("refuri") for n in doctree.findall() if n.tagname == "reference"}
    assert links == {f"javascript:show('{t}')" for t in figures + pictures}  # each study's picture, each figure


def test_the_front_page_links_each_studys_viewer_page_beside_the_results(tmp_path):
    """With viewers, the studies table gets a Viewer column: a plain link to each study's page under the results
    folder (a file beside the report, not one of its embedded results)."""
    text = front_page(outcome_of(tmp_path), STATUS, STUDIES, INDICATIONS, results="res", study_figures=False,
                      study_viewers=True)  # fmt: skip
    figures = [f"{f}.png" for f in COHORT_FIGURE_NAMES]
    doctree, problems = render(text, figures)
    assert problems == []
    links = {n.get("refuri") for n in doctree.findall() if n.tagname == "reference"}
    assert links - {f"javascript:show('{t}')" for t in figures} == {
        "res/sub-01/ses-01/anat/sub-01_ses-01_desc-lesions_viewer.html",
        "res/sub-02/anat/sub-02_desc-lesions_viewer.html",
        "res/sub-03/ses-01/anat/sub-03_ses-01_desc-lesions_viewer.html",
    }
    assert "Viewer" in text


def test_the_front_page_without_study_pictures_links_none(tmp_path):
    text = front_page(outcome_of(tmp_path), STATUS, STUDIES, INDICATIONS, results="res", study_figures=False)
    figures = [f"{f}.png" for f in COHORT_FIGURE_NAMES]
    doctree, problems = render(text, figures)
    assert problems == [] and "overlay" not in text


def test_a_large_cohort_lists_the_first_studies_and_says_where_the_rest_are(tmp_path):
    rows = [{"participant_id": f"sub-{i:05d}", "session_id": "n/a", "features_status": "ok", "lesion_count": "1"}
            for i in range(1200)]  # fmt: skip
    text = front_page(read_outcome([]), rows, [], [], results="res", study_figures=False)
    assert "Studies (the first 500 of 1200)" in text and "res/group/status.tsv" in text
    assert text.count("   * - ") == 501  # the header and 500 rows
    assert render(text, [f"{f}.png" for f in COHORT_FIGURE_NAMES])[1] == []


def test_the_front_page_is_written_from_the_documents_and_tables(tmp_path):
    outcome_of(tmp_path)
    for name, rows in (("status", STATUS), ("studies", STUDIES)):
        columns = list(rows[0])
        lines = ["\t".join(columns)] + ["\t".join(r.get(c, "") for c in columns) for r in rows]
        (tmp_path / f"{name}.tsv").write_text("\n".join(lines) + "\n")
    out, log = tmp_path / "group" / "summary.rst", tmp_path / "logs" / "front_page.log"
    inputs = SimpleNamespace(
        status=sorted(str(p) for p in tmp_path.glob("sub-0*_status.json")),
        indications=[str(tmp_path / "sub-02_desc-brainmets_indications.json")],
        followup=[str(tmp_path / "sub-10_desc-followup_status.json")],
        status_table=str(tmp_path / "status.tsv"),
        studies_table=str(tmp_path / "studies.tsv"),
        indications_table=str(tmp_path / "absent.tsv"),
    )
    write_front_page(out, inputs, results="res", study_figures=False, log=log)
    text = out.read_text()
    assert ":Studies: 3: 2 ok, **1 failed**" in text and "Follow-up" not in text and "Table 1" not in text
    assert log.read_text() == f"brainmets: front page of 3 studies (1 failed, 1 warnings); wrote {out}\n"
    write_front_page(out, inputs, results="res", study_figures=False, followed={"10": ["01", "02"]})
    assert ":Follow-up: 1 subjects: 1 ok, 0 failed" in out.read_text()


@pytest.mark.parametrize("text", ["a_ b", "*x*", "`y`", "|s|", "[1]_", "<t>", "back\\slash", "two\n lines"])
def test_escaped_text_is_shown_as_it_is(text):
    from docutils.core import publish_doctree

    assert publish_doctree(escape(text)).astext() == " ".join(text.split())
