"""The workflow's rule files hold no logic (it lives in brainmets.workflow, unit-tested) and name no derivative
by hand (brainmets.io.bids does)."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ROOT

RULE_FILES = [ROOT / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_every_def_is_a_one_line_wrapper(path):
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if re.match(r"\s*(async\s+)?def\b", line):
            assert re.match(r"def \w+\([\w, ]*\): return \S.*$", line), f"{path.name}:{number}: {line}"
        assert not re.match(r"\s*class\b", line), f"{path.name}:{number}: {line}"


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_no_rule_builds_a_derivative_name_by_hand(path):
    code = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
    by_hand = [line for line in code if re.search(r"[\"'][^\"']*(desc-|_ses-|/logs/|/group/)", line)]
    assert by_hand == []


def test_the_cohort_rules_write_every_table_and_figure_and_the_report_captions_each_figure():
    """Every cohort table (comparison_detection too) is an option of the cohort rule's command, the figures rule
    passes the tables its figures need, and each cohort figure has its report caption."""
    from brainmets.io import bids

    text = (ROOT / "workflow" / "rules" / "cohort.smk").read_text()
    cohort, figures = text.split("rule cohort_figures:")[0], text.split("rule cohort_figures:")[1].split("\nrule ")[0]
    for name in bids.GROUP_TABLES:
        assert f"{{output.{name}_tsv:q}}" in cohort, name
    assert "--out-comparison-detection {output.comparison_detection_tsv:q}" in cohort
    assert "detection=rules.cohort.output.comparison_detection_tsv" in figures
    assert "--comparison-detection {input.detection:q}" in figures
    for name in bids.COHORT_FIGURES:
        assert (ROOT / "workflow" / "report" / f"{name}.rst").is_file(), name
    caption = (ROOT / "workflow" / "report" / "detection_by_size.rst").read_text()
    assert "Dice >= 0.1" in caption and "reference volume" in caption and "predicted" in caption
