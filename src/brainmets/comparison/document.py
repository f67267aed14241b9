"""Two segmentations of one study compared: both measured, the BraTS-METS metrics, the lesion and study agreement,
and the Table 1 verdicts the prediction changes (what ``brainmets.compare`` and ``brainmets compare`` share)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from brainmets.comparison.agreement import (
    COMPARISON_LESION_FIELDS,
    COMPARISON_STUDY_FIELDS,
    add_dice,
    lesion_agreement,
    onto_grid,
    study_agreement,
    table_rows,
    verdict_changes,
)
from brainmets.comparison.brats_metrics import VERSION, VERSION_2023, evaluate, evaluate_2023
from brainmets.comparison.detection import BIN_KEYS, bin_label, check_bins, detection_document
from brainmets.comparison.lesion_table import COLUMNS as LESION_TABLE_COLUMNS
from brainmets.comparison.lesion_table import components, lesion_table
from brainmets.config import load_config, with_features
from brainmets.display import Document, html_tables, one_line, who
from brainmets.errors import ConfigError
from brainmets.indications.document import indications_document
from brainmets.io import LabelMap
from brainmets.io.writers import rounded_frame
from brainmets.longitudinal.tracking import SessionLesions, TrackingParameters
from brainmets.schemes import Role, role_mask
from brainmets.study.measure import dicom_options, measure_study, reference_choice

if TYPE_CHECKING:
    import pandas as pd

PathLike = str | os.PathLike


class Comparison(Document):
    """Two segmentations of one study compared (:func:`compare`): ``.document``, the dict ``brainmets compare
    --out-json`` writes, and its tables as DataFrames, numbers rounded as in the files:

    - ``lesions``: one row per lesion group (a reference lesion and its predicted counterparts, a missed or an
      invented lesion), numbered from 1 in the document's order (index ``group``): agreement, lesion ids, Dice,
      the features of both and their differences (the cohort's ``comparison_lesions`` columns);
    - ``studies``: the study's one row, by (``subject``, ``session``): lesion-wise and global Dice, F1 and PQ per
      region, the study features' differences, missed and invented lesion counts (the cohort's
      ``comparison_studies`` columns);
    - ``study``: one row per study feature (lesion count, volumes, diameters, ...), by ``feature``: its
      ``reference``, ``prediction`` and ``difference``;
    - ``metrics``: one row per BraTS region, by ``region``: the evaluator's numbers (lists left out);
    - ``detection_by_size`` (``brats2025``): one row per region and size bin, by (``region``, ``bin``): the
      bin's edges, reference lesions, detected, missed, recall, false positives and lesion-wise F1;
    - ``lesion_table``: one row per reference and per predicted lesion of each region, by (``region``, ``side``,
      ``lesion_id``): voxels, volume, diameters and centroid (mm, world), the overlap match (matched, missed,
      invented, merged, split), panoptica's match and its Dice, the overlap group's Dice, the parser's detection
      (tp / fn / fp) and size bin (``brainmets compare --out-lesions-tsv``).

    Indexing it (``result["metrics"]``) reads the document. Its ``repr`` is one line; in a notebook it shows
    its lesion groups."""

    __slots__ = ()

    @property
    def lesions(self) -> pd.DataFrame:
        columns = [f.name for f in COMPARISON_LESION_FIELDS]
        rows = [{"group": k, **row} for k, row in enumerate(self.document["lesions"], start=1)]
        return rounded_frame(rows, ["group", *columns], "group")

    @property
    def studies(self) -> pd.DataFrame:
        row = {"subject": self.document["subject"], "session": self.document["session"], **table_rows(self.document)[1]}
        return rounded_frame(
            [row], ["subject", "session", *[f.name for f in COMPARISON_STUDY_FIELDS]], ["subject", "session"]
        )

    @property
    def study(self) -> pd.DataFrame:
        rows = [{"feature": name, **values} for name, values in self.document["study"].items()]
        return rounded_frame(rows, ["feature", "reference", "prediction", "difference"], "feature")

    @property
    def metrics(self) -> pd.DataFrame:
        rows = []
        for region, result in self.document["metrics"]["regions"].items():
            scalars = {k: v for k, v in result.items() if v is None or isinstance(v, int | float | str)}
            rows.append({"region": region, **scalars})
        columns = ["region", *dict.fromkeys(k for r in rows for k in r if k != "region")]
        return rounded_frame(rows, columns, "region")

    @property
    def detection_by_size(self) -> pd.DataFrame:
        columns = ["region", "bin", *BIN_KEYS]
        table = self.document["metrics"].get("detection_by_size") or {}
        rows = [{"region": r, "bin": bin_label(e), **e} for r, entries in table.items() for e in entries]
        return rounded_frame(rows, columns, ["region", "bin"])

    @property
    def lesion_table(self) -> pd.DataFrame:
        rows = self.document.get("lesion_table") or []
        return rounded_frame(rows, LESION_TABLE_COLUMNS, ["region", "side", "lesion_id"])

    def __repr__(self) -> str:
        count = self.document["study"]["lesion_count"]
        agreement = Counter(e["agreement"] for e in self.document["lesions"])
        study = table_rows(self.document)[1]
        dice = ", ".join(
            f"{r} {study[f'{r}_lesionwise_dice']:.3g}"
            for r in ("et", "tc", "wt")
            if study.get(f"{r}_lesionwise_dice") is not None
        )
        name = who(self.document["subject"], self.document["session"])
        return one_line(
            f"<Comparison{' ' + name if name else ''}: {count['reference']} reference vs {count['prediction']} "
            f"predicted lesions ({', '.join(f'{n} {kind}' for kind, n in agreement.items()) or 'none'}); "
            f"lesion-wise Dice {dice or 'n/a'} ({self.document['metrics']['mode']})>"
        )

    def _repr_html_(self) -> str:
        return html_tables(repr(self), [("lesions", self.lesions), ("study", self.study)])


#: BraTS-METS label values by role (what the official metrics read), for maps in another scheme.
METS_LABELS = {"necrotic": 1, "core": 1, "edema": 2, "enhancing": 3, "cavity": 4}


def mets_labels(label_map: LabelMap, scheme) -> np.ndarray:
    """The label map in BraTS-METS values (1 necrotic / core, 2 edema, 3 enhancing, 4 cavity), whatever its
    scheme; labels the scheme ignores become 0."""
    if scheme.name == "brats-mets-2023":
        return label_map.labels
    out = np.zeros(label_map.shape, np.uint8)
    for role in (Role.EDEMA, Role.CAVITY, Role.NECROTIC, Role.CORE, Role.ENHANCING):
        if scheme.has(role):
            out[role_mask(label_map.labels, scheme, role)] = METS_LABELS[role.name.lower()]
    return out


def compare_segmentations(
    reference: PathLike,
    prediction: PathLike,
    *,
    metrics: str = "brats2025",
    clinical: PathLike | Mapping[str, Any] | pd.DataFrame | None = None,
    subject: str | None = None,
    session: str | None = None,
    config: PathLike | Mapping[str, Any] | None = None,
    reference_options: Mapping[str, Any] | None = None,
    threads: int | None = None,
    detection_bins_mm3: Iterable[float] | None = None,
    **parameters: Any,
) -> Comparison:
    """Two segmentations of one study compared (see :func:`brainmets.compare`)."""
    modes = {"brats2025": VERSION, "brats2023": VERSION_2023}
    if metrics not in modes:
        raise ConfigError(f"metrics: {metrics!r} is not one of {', '.join(modes)}")
    settings = with_features(load_config(config), parameters)
    given_bins = settings["compare_detection_bins_mm3"] if detection_bins_mm3 is None else detection_bins_mm3
    source = "compare_detection_bins_mm3" if detection_bins_mm3 is None else "detection_bins_mm3"
    bins = check_bins(given_bins, source)
    options = {k: str(v) for k, v in (reference_options or {}).items() if v}
    given = {k: options[k] for k in ("parcellation", "posterior_fossa_mask", "atlas") if k in options}
    choice = reference_choice(settings["anatomy"], given, atlas_dir=options.get("atlas_dir"))
    dicom = dicom_options(settings["dicom"])
    measured = [
        measure_study(path, settings, choice, dicom, subject=subject, session=session, threads=threads)
        for path in (reference, prediction)
    ]
    ref, pred = measured
    warnings = []
    moved, warning = onto_grid(
        mets_labels(pred.label_map, pred.parameters.scheme), pred.affine, ref.affine, ref.label_map.shape
    )
    if warning:
        warnings.append(warning)
    zooms = np.linalg.norm(ref.affine[:3, :3], axis=0)
    follows = modes[metrics]
    ref_labels = mets_labels(ref.label_map, ref.parameters.scheme)
    if metrics == "brats2025":  # the table reads the evaluator's lesions and matches: each map labelled once
        parts: dict[str, dict[str, Any]] = {}
        regions = evaluate(ref_labels, moved, zooms, parts)
        table = lesion_table(parts, ref.affine, ref.label_map.shape, zooms, regions, bins)
    else:  # no panoptica matching: the table's own components, its panoptica columns n/a
        regions = evaluate_2023(ref_labels, moved, zooms)
        table = lesion_table(components(ref_labels, moved), ref.affine, ref.label_map.shape, zooms, None, bins)
    instances = [m.instances for m in measured]  # each built once: a whole-grid array
    data = [SessionLesions.from_measurement(m.features.lesions, i, m.affine, None) for m, i in zip(measured, instances)]
    lesions = lesion_agreement(ref.document, pred.document, *data, TrackingParameters.from_config(settings["followup"]))
    add_dice(lesions, instances[0], onto_grid(instances[1], pred.affine, ref.affine, ref.label_map.shape)[0])
    document: dict[str, Any] = {
        "research_use_only": True,
        "subject": subject,
        "session": session,
        "metrics": {"mode": metrics, "follows": follows, "regions": regions},
        "lesions": lesions,
        "lesion_table": table,
        "study": study_agreement(ref.document, pred.document),
        "indications": None,
        "warnings": warnings,
        "provenance": {
            "reference_sha256": ref.document["provenance"].get("input_sha256"),
            "prediction_sha256": pred.document["provenance"].get("input_sha256"),
        },
    }
    if metrics == "brats2025":
        document["metrics"]["detection_by_size"] = detection_document(regions, bins)
    if clinical is not None:
        section = settings["indications"]
        verdicts = [
            indications_document(
                m.document,
                clinical,
                rules=section["rules"],
                thresholds=section["thresholds"],
                subject=subject,
                session=session,
            )  # fmt: skip
            for m in measured
        ]
        document["indications"] = {
            "changes": verdict_changes(*verdicts),
            "reference_status": {m: e["status"] for m, e in verdicts[0]["modalities"].items()},
            "prediction_status": {m: e["status"] for m, e in verdicts[1]["modalities"].items()},
        }
    return Comparison(document)
