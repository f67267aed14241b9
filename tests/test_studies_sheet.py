"""The studies sheet's row checks: one line naming the sheet, the 1-based row and the column."""

from __future__ import annotations

import pandas as pd
import pytest

from brainmets.errors import ConfigError
from brainmets.workflow.studies import check_rows
from tests.conftest import ROOT

SCHEMA = ROOT / "workflow" / "schemas" / "studies.schema.yaml"


def sheet(*rows: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), dtype=str).fillna("")


def test_the_demo_sheet_passes():
    frame = pd.read_csv(ROOT / "test_data" / "cohort" / "studies.tsv", sep="\t", dtype=str, keep_default_na=False)
    check_rows(frame, "studies.tsv", SCHEMA)


def test_a_custom_scheme_as_custom_labels_takes_it_is_accepted():
    check_rows(sheet({"subject": "01", "segmentation": "a.nii.gz", "label_scheme": "enhancing=3;necrotic=1;edema=2"}),
               "my.tsv", SCHEMA)  # fmt: skip


@pytest.mark.parametrize(
    "column, value, message",
    [
        ("label_scheme", "enhancing=3;tumour=1", "column label_scheme: custom label scheme: unknown role 'tumour'"),
        ("label_scheme", "brats2021", "column label_scheme: unknown label scheme 'brats2021'"),
        ("subject", "0-3", "column subject: '0-3' is not allowed (expected: BIDS subject label"),
        ("date", "12/03/2024", "column date: '12/03/2024' is not allowed"),
        ("segmentation", "", "column segmentation: empty; a value is required"),
    ],
)
def test_a_bad_cell_is_one_line_naming_the_sheet_the_1_based_row_and_the_column(column, value, message):
    rows = [{"subject": "01", "segmentation": "a.nii.gz"}, {"subject": "02", "segmentation": "b.nii.gz"}]
    rows[1] = {**rows[1], column: value}
    with pytest.raises(ConfigError) as error:
        check_rows(sheet(*rows), "my.tsv", SCHEMA)
    text = str(error.value)
    assert text.startswith("my.tsv: row 2") and message in text
    assert "\n" not in text


def test_a_missing_required_column_is_named():
    with pytest.raises(ConfigError, match="my.tsv: no column segmentation"):
        check_rows(sheet({"subject": "01"}), "my.tsv", SCHEMA)
