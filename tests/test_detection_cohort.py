"""Detection by lesion size across a cohort: the comparison_detection table from hand-made comparison documents
(known counts -> known rows), its pooled sums (recall and F1 from the sums, Wilson intervals), the cohort and
figures command lines, and the report's detection_by_size figure (what it draws, and a cohort without brats2025
comparisons)."""

from __future__ import annotations

import csv
import json

import matplotlib.axes
import pytest

import brainmets
from brainmets.cli import main
from brainmets.cohort_tables import gather, table_spec
from brainmets.comparison.detection import pooled_detection, wilson_interval
from brainmets.figures.detection_plot import NO_COMPARISON, detection_by_size_plot

EDGES = (0.0, 20.0, 100.0)
#: (reference lesions, detected, false positives) per bin [0, 20), [20, 100), >= 100, per study and region.
COUNTS = {
    ("01", "01"): {"et": [(2, 1, 0), (0, 0, 1), (3, 3, 0)], "rc": [(0, 0, 0)] * 3,
                   "tc": [(2, 2, 0), (0, 0, 0), (3, 3, 0)], "wt": [(1, 1, 0), (1, 0, 0), (3, 3, 1)]},
    ("02", "02"): {"et": [(1, 0, 2), (0, 0, 0), (5, 4, 1)], "rc": [(0, 0, 0), (0, 0, 0), (0, 0, 1)],
                   "tc": [(1, 1, 0), (0, 0, 0), (5, 5, 0)], "wt": [(0, 0, 0), (2, 2, 0), (5, 5, 0)]},
}  # fmt: skip


def _bins(counts: list[tuple[int, int, int]]) -> list[dict]:
    """A region's ``detection_by_size`` entries as ``brainmets compare`` writes them."""
    out = []
    for low, high, (n, tp, fp) in zip(EDGES, [*EDGES[1:], None], counts):
        out.append({"min_volume_mm3": low, "max_volume_mm3": high, "reference_lesions": n, "detected": tp,
                    "missed": n - tp, "recall": tp / n if n else None, "false_positives": fp,
                    "f1": 2 * tp / (n + tp + fp) if n + tp + fp else None})  # fmt: skip
    return out


def _document(subject: str, session: str, mode: str = "brats2025") -> dict:
    """A comparison document with what the cohort reads of one (regions in the JSON's sorted order)."""
    if mode == "brats2025":
        result = {"summary": {"lesionwise_dsc_mean": 0.8}, "rq": 0.9, "pq_dsc": 0.7, "global_bin_dsc": 0.85}
        metrics = {"mode": mode, "regions": dict.fromkeys(("et", "rc", "tc", "wt"), result),
                   "detection_by_size": {r: _bins(c) for r, c in COUNTS[subject, session].items()}}  # fmt: skip
    else:
        result = {"LesionWise_Score_Dice": 0.8, "Legacy_Dice": 0.85}
        metrics = {"mode": mode, "regions": dict.fromkeys(("ET", "TC", "WT"), result)}
    study = {"lesion_count": {"reference": 5, "prediction": 5, "difference": 0}}
    return {"subject": subject, "session": session, "metrics": metrics, "study": study, "lesions": [],
            "indications": None}  # fmt: skip


@pytest.fixture
def documents(tmp_path) -> list[str]:
    """Two brats2025 comparison documents and a brats2023 one (which has no detection by size)."""
    paths = []
    for subject, session, mode in (("01", "01", "brats2025"), ("02", "02", "brats2025"), ("03", "01", "brats2023")):
        path = tmp_path / f"sub-{subject}_comparison.json"
        path.write_text(json.dumps(_document(subject, session, mode)))
        paths.append(str(path))
    return paths


@pytest.fixture
def drawn(monkeypatch) -> dict[str, list]:
    """What the figure draws: its texts, and each bar's (x, height)."""
    seen: dict[str, list] = {"texts": [], "bars": []}
    text, bar = matplotlib.axes.Axes.text, matplotlib.axes.Axes.bar

    def record_text(self, x, y, s, *args, **kwargs):
        seen["texts"].append(s)
        return text(self, x, y, s, *args, **kwargs)

    def record_bar(self, x, height, *args, **kwargs):
        seen["bars"].append((self.get_title(), x, height))
        return bar(self, x, height, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "text", record_text)
    monkeypatch.setattr(matplotlib.axes.Axes, "bar", record_bar)
    return seen


def test_the_table_has_a_row_per_study_region_and_bin(documents):
    rows = gather([], [], [], comparisons=documents).comparison_detection
    assert len(rows) == 2 * 4 * 3  # the brats2023 document has none
    assert {r["participant_id"] for r in rows} == {"sub-01", "sub-02"}
    assert [r["region"] for r in rows[::3]] == ["et", "tc", "wt", "rc"] * 2  # not the JSON's order
    assert [r["bin"] for r in rows[:3]] == ["[0, 20)", "[20, 100)", ">= 100"]
    first = rows[0]
    assert first == {"participant_id": "sub-01", "session_id": "ses-01", "region": "et", "bin": "[0, 20)",
                     "min_volume_mm3": 0.0, "max_volume_mm3": 20.0, "reference_lesions": 2, "detected": 1,
                     "missed": 1, "recall": 0.5, "false_positives": 0, "f1": pytest.approx(2 / 3)}  # fmt: skip
    open_bin = next(r for r in rows if r["participant_id"] == "sub-02" and r["region"] == "et" and r["bin"] == ">= 100")
    assert (open_bin["max_volume_mm3"], open_bin["detected"], open_bin["missed"], open_bin["false_positives"]) == (
        None, 4, 1, 1)  # fmt: skip
    columns, dictionary = table_spec("comparison_detection")
    assert columns == ["participant_id", "session_id", "region", "bin", "min_volume_mm3", "max_volume_mm3",
                       "reference_lesions", "detected", "missed", "recall", "false_positives", "f1"]  # fmt: skip
    assert dictionary["min_volume_mm3"]["Units"] == "mm^3" and "Dice >= 0.1" in dictionary["detected"]["Description"]


def test_pooled_counts_are_sums_and_rates_come_from_the_sums(documents):
    pooled = pooled_detection(gather([], [], [], comparisons=documents).comparison_detection)
    assert [(e["region"], e["bin"]) for e in pooled][:4] == [("et", "[0, 20)"), ("et", "[20, 100)"),
                                                             ("et", ">= 100"), ("tc", "[0, 20)")]  # fmt: skip
    et = {e["bin"]: e for e in pooled if e["region"] == "et"}
    small, middle, large = et["[0, 20)"], et["[20, 100)"], et[">= 100"]
    assert (small["studies"], small["reference_lesions"], small["detected"], small["false_positives"]) == (2, 3, 1, 2)
    assert small["recall"] == pytest.approx(1 / 3) and small["f1"] == pytest.approx(2 / 6)
    assert small["recall"] != pytest.approx((0.5 + 0.0) / 2)  # the studies' recalls averaged would be 0.25
    assert (middle["reference_lesions"], middle["recall"], middle["recall_ci_low"], middle["f1"]) == (0, None, None, 0)
    assert (large["reference_lesions"], large["detected"], large["missed"], large["false_positives"]) == (8, 7, 1, 1)
    assert large["recall"] == 7 / 8 and large["f1"] == pytest.approx(14 / 16)
    assert (large["recall_ci_low"], large["recall_ci_high"]) == wilson_interval(7, 8)
    rc = [e["false_positives"] for e in pooled if e["region"] == "rc"]
    assert rc == [0, 0, 1]


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)],
)
def test_wilson_intervals_are_newcombes(successes, trials, low, high):
    """Newcombe (1998), Stat Med 17:857, table I, method 3 (score interval without continuity correction)."""
    got = wilson_interval(successes, trials)
    assert got == (pytest.approx(low, abs=5e-5), pytest.approx(high, abs=5e-5))


def test_wilson_interval_of_nothing_and_of_everything():
    assert wilson_interval(0, 0) == (None, None)
    low, high = wilson_interval(5, 5)
    assert high == 1.0 and 0.4 < low < 0.6  # not empty, unlike the normal approximation's [1, 1]


def test_the_figure_draws_the_pooled_recall_counts_and_false_positives(documents, tmp_path, drawn):
    rows = gather([], [], [], comparisons=documents).comparison_detection
    path = tmp_path / "detection_by_size.png"
    shown = detection_by_size_plot(path, rows)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shown == pooled_detection(rows)
    et = [e for e in shown if e["region"] == "et"]
    assert [e["bin"] for e in et] == ["[0, 20)", "[20, 100)", ">= 100"]
    for label in ("1/3", "7/8", "3/3", "2/3", "8/8", "n = 0"):
        assert label in drawn["texts"], label
    recall_bars = [(x, h) for title, x, h in drawn["bars"] if title.startswith("ET")]
    assert recall_bars == [(0, pytest.approx(1 / 3)), (2, 7 / 8)]  # no bar for the bin without reference lesions
    titles = {title for title, _, _ in drawn["bars"] if title}  # RC has no reference lesion: no recall bar
    assert titles == {"ET: enhancing tumour", "TC: tumour core", "WT: whole tumour"}
    false_positives = [list(h) for title, _, h in drawn["bars"] if not title]  # et, tc, wt, and rc: it has one
    assert false_positives == [[2, 1, 1], [0, 0, 0], [0, 0, 1], [0, 0, 1]]


def test_a_cohort_without_brats2025_comparisons_gets_a_figure_saying_so(tmp_path, drawn):
    path = tmp_path / "detection_by_size.png"
    assert detection_by_size_plot(path, []) == []
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and NO_COMPARISON in drawn["texts"]
    assert drawn["bars"] == []


def test_cohort_and_figures_command_lines(documents, tmp_path):
    features = tmp_path / "features.json"
    measured = brainmets.measure(brainmets.datasets.demo().segmentation, subject="01", session="01")
    features.write_text(json.dumps(measured.document))
    out = {name: tmp_path / f"{name}.tsv" for name in ("lesions", "studies", "detection")}
    base = ["cohort", str(features), "--out-lesions", str(out["lesions"]), "--out-studies", str(out["studies"])]
    assert main([*base, "--comparison", *documents, "--out-comparison-detection", str(out["detection"])]) == 0
    with open(out["detection"], newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert len(rows) == 24 and list(rows[0])[:4] == ["participant_id", "session_id", "region", "bin"]
    assert rows[1]["recall"] == "n/a" and rows[2]["max_volume_mm3"] == "n/a"
    dictionary = json.loads(out["detection"].with_suffix(".json").read_text())
    assert dictionary["false_positives"]["Description"].startswith("unmatched predicted lesions")
    from_text = pooled_detection(rows)  # the TSV's text pools as its numbers do
    assert from_text == pooled_detection(gather([], [], [], comparisons=documents).comparison_detection)
    figures = tmp_path / "figures"
    argv = ["figures", "--lesions", str(out["lesions"]), "--studies", str(out["studies"]), "--out-dir", str(figures)]
    assert main([*argv, "--comparison-detection", str(out["detection"])]) == 0
    assert (figures / "detection_by_size.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lonely = tmp_path / "lonely.tsv"  # the table but no comparison documents: refused
    assert main([*base[:2], "--out-lesions", str(tmp_path / "l2.tsv"), "--out-studies", str(tmp_path / "s2.tsv"),
                 "--out-comparison-detection", str(lonely)]) != 0  # fmt: skip
    assert not lonely.exists()
