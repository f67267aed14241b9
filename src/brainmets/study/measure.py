"""One study measured from its files: the segmentation read, its anatomical reference built, its lesions measured
and located (what ``brainmets.measure``, ``brainmets.locate`` and ``brainmets features`` share)."""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from brainmets.config import default_threads
from brainmets.display import count, html_tables, one_line, who
from brainmets.errors import ConfigError
from brainmets.identifiers import check_label
from brainmets.io import LabelMap, load_segmentation
from brainmets.io.core import path_or_none
from brainmets.io.dicom import DicomOptions
from brainmets.io.images import check_intensity_image
from brainmets.io.writers import rounded_frame
from brainmets.location.parameters import LocationParameters, RegistrationParameters
from brainmets.location.references import ReferenceChoice, build_reference
from brainmets.measurement.parameters import FeatureParameters
from brainmets.study.columns import CAVITY_FIELDS, EDEMA_ONLY_FIELDS, LESION_FIELDS
from brainmets.study.features import StudyFeatures, measure_label_map

if TYPE_CHECKING:
    import pandas as pd

PathLike = str | os.PathLike


@dataclass(repr=False)
class Measurement:
    """One study measured: the features document (what ``brainmets features --out-json`` writes), its tables as
    pandas DataFrames (numbers rounded as in the files), the lesion instance map, and the label map it was
    measured on. Its ``repr`` is one line; in a notebook it shows its lesion table."""

    features: StudyFeatures
    label_map: LabelMap
    parameters: FeatureParameters

    def __repr__(self) -> str:
        study = self.study
        name = who(study.get("subject"), study.get("session")) or Path(str(self.label_map.source)).name
        volume = study.get("cumulative_tumor_volume_ml")
        volume = "" if volume is None else f", {volume:.3g} mL"
        return one_line(
            f"<Measurement {name}: {count(study.get('lesion_count', 0), 'lesion')}{volume}, "
            f"scheme {self.parameters.scheme.name}>"
        )

    def _repr_html_(self) -> str:
        return html_tables(repr(self), [("lesions", self.lesions)])

    @property
    def document(self) -> dict[str, Any]:
        """The features document: ``study``, ``lesions``, ``edema_only_components``, ``resection_cavities``,
        ``provenance``."""
        return self.features.document

    @property
    def study(self) -> dict[str, Any]:
        """The study summary (lesion count, cumulative tumour volume, ...)."""
        return self.features.study

    @property
    def lesions(self) -> pd.DataFrame:
        """One row per lesion, the columns of ``--out-tsv`` (the data dictionary of
        :func:`brainmets.fields.data_dictionary`), ``lesion_id`` as the index."""
        return rounded_frame(self.document["lesions"], [f.name for f in LESION_FIELDS], "lesion_id")

    @property
    def edema_only_components(self) -> pd.DataFrame:
        return rounded_frame(self.document["edema_only_components"], [f.name for f in EDEMA_ONLY_FIELDS], None)

    @property
    def resection_cavities(self) -> pd.DataFrame:
        return rounded_frame(self.document["resection_cavities"], [f.name for f in CAVITY_FIELDS], None)

    @property
    def instances(self) -> np.ndarray:
        """The lesion instance map on the segmentation's grid: core voxels carry their ``lesion_id``."""
        return self.features.instances

    @property
    def affine(self) -> np.ndarray:
        """The segmentation's voxel-to-world (RAS, mm) affine."""
        return self.features.affine


def reference_choice(anatomy: dict[str, Any], given: dict[str, str], **options: Any) -> ReferenceChoice:
    """The study's anatomical reference: the one ``given``, else the config's atlas or template (if any);
    ``options`` (atlas_dir, subject_image, definitions, alignment) override the config's ``anatomy`` section."""
    if not given:
        given = {
            name: anatomy[name]
            for name in ("atlas", "template", "template_image", "template_labels")
            if anatomy.get(name)
        }
    return ReferenceChoice(
        **given,
        atlas_dir=path_or_none(options.get("atlas_dir")) or anatomy["atlas_dir"],
        subject_image=path_or_none(options.get("subject_image")),
        parcellation_definition=options.get("parcellation_definition") or anatomy["parcellation_definition"],
        template_labels_definition=options.get("template_labels_definition") or anatomy["template_labels_definition"],
        alignment=options.get("alignment") or anatomy["alignment"],
    )


def dicom_options(section: dict[str, Any], reference_series: PathLike | None = None) -> DicomOptions:
    """How DICOM segments map to roles, from the config's ``dicom`` section (patterns checked here)."""
    for item in section["segment_roles"] or []:
        try:
            re.compile(item["pattern"])
        except re.error as exc:
            raise ConfigError(f"dicom.segment_roles: {item['pattern']!r} is not a regular expression ({exc})") from None
    return DicomOptions.from_config(section, path_or_none(reference_series))


def measure_study(
    segmentation: PathLike,
    config: dict[str, Any],
    choice: ReferenceChoice,
    dicom: DicomOptions,
    *,
    subject: str | None = None,
    session: str | None = None,
    threads: int | None = None,
    background_image: PathLike | None = None,
) -> Measurement:
    """Measure one study with a validated config and a chosen reference (what :func:`measure`, :func:`locate` and
    ``brainmets features`` share). ``background_image``, when given, is checked before any work is done."""
    check_label(subject, "subject")
    check_label(session, "session")
    threads = default_threads() if threads is None else threads
    if threads < 1:
        raise ConfigError(f"threads must be at least 1, not {threads}")
    params = FeatureParameters.from_config(config["features"])
    if background_image:  # refused before the segmentation is processed, when its header claims too much
        check_intensity_image(background_image, params.max_voxels)
    label_map = load_segmentation(segmentation, dicom, params.max_voxels)
    if label_map.scheme is not None:  # DICOM SEG / RTSTRUCT: the segments say what each label is
        params = dataclasses.replace(params, scheme=label_map.scheme, scheme_chosen=True)
    reference = build_reference(
        choice,
        label_map,
        RegistrationParameters.from_config(config["anatomy"]["registration"]),
        max_voxels=params.max_voxels,
    )
    result = measure_label_map(
        label_map,
        params,
        subject=subject,
        session=session,
        threads=threads,
        reference=reference,
        location=LocationParameters.from_config(config["anatomy"]),
    )
    return Measurement(result, label_map, params)
