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
