"""The Python API, for notebooks and scripts: measure a segmentation, locate its lesions, evaluate the indications,
gather a cohort. The command line (:mod:`brainmets.cli`) is a thin layer over these functions.

Parameters use the names of the workflow config (``config/README.md``): ``measure(seg, min_lesion_volume_mm3=50,
rano_bm={"max_target_lesions": 3})`` sets the ``features`` section's keys, ``config=`` takes a whole config (a
YAML path or a dict of sections). Every value is validated as the config is; an invalid one raises
:class:`~brainmets.errors.ConfigError`, an unreadable input :class:`~brainmets.errors.InputDataError`.
Research use only: not a medical device.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from brainmets.cohort_tables import Cohort, cohort_frames
from brainmets.comparison.document import Comparison, compare_segmentations
from brainmets.config import (
    from_jsonable,
    load_config,
    read_features_document,
    read_json,
    validate_with,
    with_features,
)
from brainmets.errors import ConfigError, InputDataError
from brainmets.indications.document import indications_document
from brainmets.longitudinal.subject import FollowUp, follow_up_timeline
from brainmets.study.measure import Measurement, dicom_options, measure_study, reference_choice

if TYPE_CHECKING:
    import pandas as pd

PathLike = str | os.PathLike

__all__ = [
    "Cohort",
    "Comparison",
    "FollowUp",
    "Measurement",
    "cohort",
    "compare",
    "follow_up",
    "indicate",
    "load_config",
    "locate",
    "measure",
]


def measure(
    segmentation: PathLike,
    *,
    subject: str | None = None,
    session: str | None = None,
    config: PathLike | Mapping[str, Any] | None = None,
    reference_series: PathLike | None = None,
    threads: int | None = None,
    **parameters: Any,
) -> Measurement:
    """Find and measure every lesion of one segmentation (NIfTI, NRRD, MetaImage or DICOM).

    ``parameters`` are keys of the config's ``features`` section (``label_scheme``, ``connectivity``,
    ``min_lesion_volume_mm3``, ``merge_distance_mm``, ``rano_bm``, ...), applied over ``config``. The lesions
    are located when the config names an atlas or template; see :func:`locate` for a study's own reference.

    Returns:
        a :class:`Measurement`: ``.lesions`` (DataFrame by ``lesion_id``), ``.study`` (dict), ``.document``
        (the JSON of ``brainmets features``), ``.instances`` (lesion instance map), ``.affine``.

    Raises:
        InputDataError: the segmentation is missing, unreadable, corrupted or too large.
        ConfigError: a parameter or config value is invalid, or ``subject`` / ``session`` is not a BIDS label.
        LabelSchemeError: the label map holds values its label scheme does not know.

    Example::

        >>> study = brainmets.measure(brainmets.datasets.demo().segmentation, subject="02", session="01")
        >>> study
        <Measurement sub-02 ses-01: 3 lesions, 1.72 mL, scheme brats-mets-2023>
        >>> study.lesions["volume_ml"].tolist()
        [0.918, 0.534, 0.269]
    """
    settings = with_features(load_config(config), parameters)
    return measure_study(
        segmentation,
        settings,
        reference_choice(settings["anatomy"], {}),
        dicom_options(settings["dicom"], reference_series),
        subject=subject,
        session=session,
        threads=threads,
    )


def locate(
    segmentation: PathLike,
    *,
    parcellation: PathLike | None = None,
    posterior_fossa_mask: PathLike | None = None,
    atlas: str | None = None,
    atlas_dir: PathLike | None = None,
    template: str | None = None,
    template_image: PathLike | None = None,
    template_labels: PathLike | None = None,
    subject_image: PathLike | None = None,
    parcellation_definition: str | None = None,
    template_labels_definition: str | None = None,
    alignment: str | None = None,
    **kwargs: Any,
) -> Measurement:
    """:func:`measure` plus each lesion's anatomical location, from one reference: a parcellation of the subject
    (``parcellation``, FreeSurfer labels unless ``parcellation_definition`` says otherwise), a posterior-fossa
    mask, an atlas already in the subject's space (``atlas`` + ``atlas_dir``), or a template registered to
    ``subject_image`` (``template`` + ``atlas_dir``, or ``template_image`` + ``template_labels``). The other
    keywords are those of :func:`measure`.

    Returns:
        a :class:`Measurement` whose lesions carry their location (``location``, ``posterior_fossa_fraction``,
        ``brainstem_involved``, ``eloquent_regions``, ...).

    Raises:
        ConfigError: no reference is given, or a value is invalid.
        InputDataError: the segmentation or a reference file is missing or unreadable, or they do not overlap.

    Example::

        >>> demo = brainmets.datasets.demo()
        >>> study = brainmets.locate(demo.segmentation, parcellation=demo.parcellation)
        >>> study.lesions["location"].tolist()
        ['supratentorial', 'infratentorial', 'supratentorial']
    """
    given = {
        "parcellation": parcellation,
        "posterior_fossa_mask": posterior_fossa_mask,
        "atlas": atlas,
        "template": template,
        "template_image": template_image,
        "template_labels": template_labels,
    }
    given = {k: str(v) for k, v in given.items() if v}
    if not given:
        raise ConfigError("locate: give a reference (parcellation, posterior_fossa_mask, atlas, template, ...)")
    reference_series = kwargs.pop("reference_series", None)
    subject, session, threads = (kwargs.pop(k, None) for k in ("subject", "session", "threads"))
    settings = with_features(load_config(kwargs.pop("config", None)), kwargs)
    anatomy = settings["anatomy"]
    choice = reference_choice(
        anatomy,
        given,
        atlas_dir=atlas_dir,
        subject_image=subject_image,
        parcellation_definition=parcellation_definition,
        template_labels_definition=template_labels_definition,
        alignment=alignment,
    )
    return measure_study(
        segmentation,
        settings,
        choice,
        dicom_options(settings["dicom"], reference_series),
        subject=subject,
        session=session,
        threads=threads,
    )


def indicate(
    features: Measurement | Mapping[str, Any] | PathLike,
    clinical: PathLike | Mapping[str, Any] | Sequence[Mapping[str, Any]] | pd.DataFrame | None = None,
    *,
    subject: str | None = None,
    session: str | None = None,
    config: PathLike | Mapping[str, Any] | None = None,
    rules: PathLike | None = None,
    thresholds: Mapping[str, Any] | None = None,
    followup: PathLike | Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Which treatments the review's Table 1 supports for one study, and why (research use only).

    ``features``: a :class:`Measurement`, a features document, or its JSON file. ``clinical``: the patient's
    row (a mapping or a pandas Series with the clinical table's columns; without ``subject`` it is the study's,
    with another subject an error), a table (TSV path, DataFrame or list of rows) in which the study's row is
    looked up by subject and session, or None: the config's ``clinical`` table, else imaging facts only
    (clinical inputs unknown). Read a table into a DataFrame with ``dtype=str``, so that "01" stays "01".
    ``rules`` replaces the built-in rule table, ``thresholds`` overrides its thresholds by name. ``followup``
    (a :func:`follow_up` result, its document or its file) supplies the facts that need time (rapid growth, CNS
    progression, recurrences) where the clinical row leaves them empty. When neither the arguments nor the
    features name the subject, one clinical row given as a mapping or Series names it (and its session).

    Returns:
        the indication document (a dict, what ``brainmets indicate --out-json`` writes): ``modalities`` (each
        treatment's ``status`` and the criteria behind it), ``missing_inputs``, ``warnings``, ``provenance``.

    Raises:
        ConfigError: the subject is unknown (neither given nor in the features or the row), the one row given
            is another study's, the follow-up is another subject's, or a threshold or rule table is invalid.
        InputDataError: the features or clinical file is unreadable, or a clinical value is invalid.

    Example::

        >>> demo = brainmets.datasets.demo()
        >>> study = brainmets.measure(demo.segmentation, subject="02", session="01")
        >>> brainmets.indicate(study, demo.clinical)["modalities"]["srs"]["status"]
        'not_indicated'
    """
    settings = load_config(config)
    features_path = None
    if isinstance(features, Measurement):
        document = features.document
    elif isinstance(features, Mapping):
        document = validate_with(
            "features_document.schema.yaml", from_jsonable(dict(features)), "features", infinity=True
        )
    else:
        features_path = features
        document = read_features_document(features, InputDataError)
    section = settings["indications"]
    return indications_document(
        document,
        settings["clinical"] if clinical is None else clinical,
        rules=rules or section["rules"],
        thresholds={**section["thresholds"], **(thresholds or {})},
        subject=subject,
        session=session,
        features_path=features_path,
        followup=read_json(followup, "brainmets follow-up document", InputDataError)
        if isinstance(followup, str | os.PathLike)
        else followup,
    )


def cohort(
    features: PathLike | Sequence[PathLike] = (),
    *,
    status: PathLike | Sequence[PathLike] = (),
    indications: PathLike | Sequence[PathLike] = (),
    followup: PathLike | Sequence[PathLike] = (),
    comparison: PathLike | Sequence[PathLike] = (),
) -> Cohort:
    """Gather the documents of many studies into the cohort tables: the features documents (given directly, or
    through the status documents of the workflow's features step), the indication documents, the follow-up
    documents and the comparison documents (``brainmets compare --out-json``); each argument takes one path or
    a list of paths (JSON files).

    Returns:
        a :class:`Cohort` of ten DataFrames: ``lesions``, ``studies``, ``indications``, ``status``,
        ``lesion_tracks``, ``responses``, ``comparison_lesions``, ``comparison_studies``,
        ``comparison_detection`` and ``comparison_lesion_table`` (empty when no document of their kind is
        given).

    Raises:
        InputDataError: a file is missing, unreadable or not a brainmets document of its kind.

    Example::

        >>> import json, tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "sub-02_ses-01_features.json"
        >>> study = brainmets.measure(brainmets.datasets.demo().segmentation, subject="02", session="01")
        >>> _ = path.write_text(json.dumps(study.document))
        >>> brainmets.cohort([path])
        <Cohort: 1 study of 1 subject, 3 lesions>
    """
    return cohort_frames(features, status=status, indications=indications, followup=followup, comparison=comparison)


def follow_up(
    timeline: PathLike | Sequence[Mapping[str, Any]] | pd.DataFrame,
    *,
    subject: str | None = None,
    config: PathLike | Mapping[str, Any] | None = None,
    register: bool = False,
    threads: int | None = None,
    **parameters: Any,
) -> FollowUp:
    """One subject's follow-up: every session measured, its lesions tracked in world space, each track's
    growth, the RANO-BM and volumetric responses, and the Table 1 facts that need time (the document of
    ``brainmets followup``). ``timeline``: a TSV path, or rows (mappings, a DataFrame) with the timeline's
    columns; with ``subject``, the workflow's studies sheet (with a ``date`` column), of which that subject's
    rows are taken. ``parameters`` are ``features`` keys, as for :func:`measure`; the ``followup`` section of
    ``config`` sets the matching and response thresholds. No registration is done unless ``register``: then
    each follow-up session without a ``transform`` gets one estimated from its ``subject_image`` and the
    baseline's (SimpleITK, linear; its quality is recorded).

    Returns:
        a :class:`FollowUp`: ``.lesions`` (by session and track), ``.tracks``, ``.changes``, ``.responses``
        (by session) as DataFrames, and ``.document`` (the dict ``brainmets followup --out-json`` writes:
        ``sessions``, ``lesions``, ``tracks``, ``rano_bm``, ``volumetric_response``, ``facts``, ``warnings``,
        ``assumptions``, ``provenance``), which indexing the result reads too (``result["facts"]``).

    Raises:
        InputDataError: the timeline holds several subjects and no ``subject=`` chooses one, a row lacks a date
            or segmentation, dates are out of order, a file is unreadable, or ``subject`` has no session.
        ConfigError: a parameter or config value is invalid, or ``register`` lacks a ``subject_image``.

    Example::

        >>> follow = brainmets.follow_up(brainmets.datasets.demo().studies, subject="10")
        >>> follow
        <FollowUp sub-10: 2 sessions 2024-01-10 to 2024-03-20, 2 lesion tracks, RANO-BM PR at ses-02>
        >>> follow.responses[["response", "sum_longest_diameters_mm", "percent_change_from_baseline"]]
                 response  sum_longest_diameters_mm  percent_change_from_baseline
        session
        01       baseline                   32.0162                           NaN
        02             PR                   18.0504                      -43.6209
    """
    return follow_up_timeline(
        timeline, subject=subject, config=config, register=register, threads=threads, **parameters
    )


def compare(
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
    detection_bins_mm3: Sequence[float] | None = None,
    **parameters: Any,
) -> Comparison:
    """Two segmentations of one study compared (research use only): the BraTS-METS lesion-wise metrics per
    region (``metrics``: ``brats2025``, the current official evaluator, or ``brats2023``, the 2023/2024
    challenge script, each reproduced exactly), the features of
    both with each lesion's and the study's differences, and, with ``clinical``, every Table 1 verdict that
    the prediction changes. The prediction is brought onto the reference's grid by world coordinates
    (nearest neighbour) for the metrics; each is measured on its own grid for the features. ``parameters``
    are ``features`` keys, as for :func:`measure` (``label_scheme`` applies to both); ``reference_options``
    (``parcellation``, ``posterior_fossa_mask``, ``atlas``, ``atlas_dir``, as for :func:`locate`) locate the
    lesions of both in the study's anatomy. ``detection_bins_mm3``: the lower edges of the ``brats2025``
    detection-by-size bins and of the lesion table's ``size_bin`` (default: the config's
    ``compare_detection_bins_mm3``, ``[0, 20, 100, 1000]``).

    Returns:
        a :class:`Comparison`: ``.lesions`` (one row per lesion group), ``.studies`` (the study's row of
        metrics and differences), ``.study`` (each study feature of both), ``.metrics`` (per region),
        ``.detection_by_size`` (per region and size bin, ``brats2025``) and ``.lesion_table`` (one row per
        reference and per predicted lesion of each region, by ``region``, ``side``, ``lesion_id``: volume,
        diameters and centroid in mm, match ``matched`` / ``missed`` / ``invented`` / ``merged`` / ``split``,
        panoptica's match and Dice, the parser's detection ``tp`` / ``fn`` / ``fp``, size bin; what
        ``brainmets compare --out-lesions-tsv`` writes) as DataFrames, and ``.document`` (the dict
        ``brainmets compare --out-json`` writes: ``metrics``, ``lesions``, ``lesion_table``, ``study``,
        ``indications``, ``warnings``, ``provenance``), which indexing the result reads too
        (``result["metrics"]``).

    Raises:
        ConfigError: ``metrics`` or a parameter is invalid.
        InputDataError: a segmentation or the clinical data is missing or unreadable.

    Example::

        >>> demo = brainmets.datasets.demo()
        >>> result = brainmets.compare(demo.segmentation, demo.prediction, subject="02", session="01")
        >>> result
        <Comparison sub-02 ses-01: 3 reference vs 3 predicted lesions (2 matched, 1 invented, 1 missed); ...>
        >>> result.lesions["agreement"].tolist()
        ['matched', 'invented', 'matched', 'missed']
    """
    return compare_segmentations(
        reference,
        prediction,
        metrics=metrics,
        clinical=clinical,
        subject=subject,
        session=session,
        config=config,
        reference_options=reference_options,
        threads=threads,
        detection_bins_mm3=detection_bins_mm3,
        **parameters,
    )
