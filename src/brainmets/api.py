"""The Python API, for notebooks and scripts: measure a segmentation, locate its lesions, evaluate the indications,
gather a cohort. The command line (:mod:`brainmets.cli`) is a thin layer over these functions.

Parameters use the names of the workflow config (``config/README.md``): ``measure(seg, min_lesion_volume_mm3=50,
rano_bm={"max_target_lesions": 3})`` sets the ``features`` section's keys, ``config=`` takes a whole config (a
YAML path or a dict of sections). Every value is validated as the config is; an invalid one raises
:class:`~brainmets.errors.ConfigError`, an unreadable input :class:`~brainmets.errors.InputDataError`.
Research use only: not a medical device.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, InputDataError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from .anatomy import ReferenceChoice
    from .config import FeatureParameters
    from .features import StudyFeatures
    from .io import LabelMap
    from .io.dicom import DicomOptions

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

#: The longest ``repr`` of a result object: one line.
REPR_MAX = 200
#: Rows of a table shown by a result's ``_repr_html_`` (notebooks); the rest are elided by pandas.
HTML_MAX_ROWS = 60


def load_config(config: PathLike | Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A validated config with every default filled in: from a YAML file, a mapping of sections, or nothing.

    Returns:
        the config as a dict of sections (``features``, ``anatomy``, ``indications``, ``followup``, ...).

    Raises:
        ConfigError: a value is invalid (the message names its key), or the file is not a YAML mapping.

    Example::

        >>> config = brainmets.load_config({"features": {"min_lesion_volume_mm3": 50}})
        >>> config["features"]["min_lesion_volume_mm3"], config["features"]["connectivity"]
        (50, 26)
    """
    from .config import read_config_file, validate_config

    if config is None:
        return validate_config({}, "defaults")
    if isinstance(config, Mapping):
        return validate_config(copy.deepcopy(dict(config)), "config")
    return validate_config(read_config_file(config), str(config))


def default_threads() -> int:
    """CPUs this process may use (respects affinity masks such as SLURM's), at most 4."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    return max(1, min(4, available))


def _one_line(text: str) -> str:
    """``text`` on one line of at most :data:`REPR_MAX` characters (a longer one is cut, ending ``...>``)."""
    text = " ".join(text.split())
    return text if len(text) <= REPR_MAX else text[: REPR_MAX - 4] + "...>"


def _who(subject: Any, session: Any) -> str:
    """``sub-01 ses-02``, ``sub-01`` or empty."""
    return " ".join(f"{prefix}-{label}" for prefix, label in (("sub", subject), ("ses", session)) if label)


def _count(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {plural or noun + 's'}"


def _html(title: str, tables: Sequence[tuple[str, pd.DataFrame]]) -> str:
    """A result for notebooks: its one-line summary, then each table (pandas ``to_html``, long ones elided)."""
    import html

    parts = [f"<p><code>{html.escape(title)}</code></p>"]
    for caption, frame in tables:
        parts.append(f"<p><b>{html.escape(caption)}</b> ({_count(len(frame), 'row')})</p>")
        parts.append(frame.to_html(max_rows=HTML_MAX_ROWS))
    return "\n".join(parts)


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
        who = _who(study.get("subject"), study.get("session")) or Path(str(self.label_map.source)).name
        volume = study.get("cumulative_tumor_volume_ml")
        volume = "" if volume is None else f", {volume:.3g} mL"
        return _one_line(
            f"<Measurement {who}: {_count(study.get('lesion_count', 0), 'lesion')}{volume}, "
            f"scheme {self.parameters.scheme.name}>"
        )

    def _repr_html_(self) -> str:
        return _html(repr(self), [("lesions", self.lesions)])

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
        from .features import LESION_FIELDS

        return _frame(self.document["lesions"], [f.name for f in LESION_FIELDS], "lesion_id")

    @property
    def edema_only_components(self) -> pd.DataFrame:
        from .features import EDEMA_ONLY_FIELDS

        return _frame(self.document["edema_only_components"], [f.name for f in EDEMA_ONLY_FIELDS], None)

    @property
    def resection_cavities(self) -> pd.DataFrame:
        from .features import CAVITY_FIELDS

        return _frame(self.document["resection_cavities"], [f.name for f in CAVITY_FIELDS], None)

    @property
    def instances(self) -> np.ndarray:
        """The lesion instance map on the segmentation's grid: core voxels carry their ``lesion_id``."""
        return self.features.instances

    @property
    def affine(self) -> np.ndarray:
        """The segmentation's voxel-to-world (RAS, mm) affine."""
        return self.features.affine


def _frame(rows: Sequence[Mapping[str, Any]], columns: list[str], index: str | list[str] | None) -> pd.DataFrame:
    """A table of ``rows`` (its ``columns``, in order), numbers rounded as the files have them
    (:data:`brainmets.io.writers.SIGNIFICANT_DIGITS` significant digits: 19.347, not 19.346999999999998)."""
    import pandas as pd

    from .io.writers import to_jsonable

    frame = pd.DataFrame([to_jsonable(dict(row)) for row in rows], columns=columns)
    return frame.set_index(index) if index else frame


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
    settings = _with_features(load_config(config), parameters)
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
    settings = _with_features(load_config(kwargs.pop("config", None)), kwargs)
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


def _with_features(config: dict[str, Any], parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The config with ``parameters`` set in its ``features`` section, validated: ``rano_bm`` is merged key by
    key, every other value (a custom ``label_scheme`` mapping included) replaces the config's."""
    from .config import validate_config

    section = copy.deepcopy(config["features"])
    for key, value in parameters.items():
        section[key] = {**section[key], **value} if key == "rano_bm" and isinstance(value, Mapping) else value
    return validate_config({**config, "features": section}, "parameters")


def reference_choice(anatomy: dict[str, Any], given: dict[str, str], **options: Any) -> ReferenceChoice:
    """The study's anatomical reference: the one ``given``, else the config's atlas or template (if any);
    ``options`` (atlas_dir, subject_image, definitions, alignment) override the config's ``anatomy`` section."""
    from .anatomy import ReferenceChoice

    if not given:
        given = {
            name: anatomy[name]
            for name in ("atlas", "template", "template_image", "template_labels")
            if anatomy.get(name)
        }
    return ReferenceChoice(
        **given,
        atlas_dir=_text(options.get("atlas_dir")) or anatomy["atlas_dir"],
        subject_image=_text(options.get("subject_image")),
        parcellation_definition=options.get("parcellation_definition") or anatomy["parcellation_definition"],
        template_labels_definition=options.get("template_labels_definition") or anatomy["template_labels_definition"],
        alignment=options.get("alignment") or anatomy["alignment"],
    )


def _text(value: PathLike | None) -> str | None:
    return str(value) if value else None


def dicom_options(section: dict[str, Any], reference_series: PathLike | None = None) -> DicomOptions:
    """How DICOM segments map to roles, from the config's ``dicom`` section (patterns checked here)."""
    from .io.dicom import DicomOptions

    for item in section["segment_roles"] or []:
        try:
            re.compile(item["pattern"])
        except re.error as exc:
            raise ConfigError(f"dicom.segment_roles: {item['pattern']!r} is not a regular expression ({exc})") from None
    return DicomOptions.from_config(section, _text(reference_series))


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
    from .anatomy import LocationParameters, build_reference
    from .config import FeatureParameters, RegistrationParameters
    from .features import compute_features
    from .identifiers import check_label
    from .io import load_segmentation

    check_label(subject, "subject")
    check_label(session, "session")
    threads = default_threads() if threads is None else threads
    if threads < 1:
        raise ConfigError(f"threads must be at least 1, not {threads}")
    params = FeatureParameters.from_config(config["features"])
    if background_image:  # refused before the segmentation is processed, when its header claims too much
        from .report.figures import check_background_image

        check_background_image(background_image, params.max_voxels)
    label_map = load_segmentation(segmentation, dicom, params.max_voxels)
    if label_map.scheme is not None:  # DICOM SEG / RTSTRUCT: the segments say what each label is
        params = dataclasses.replace(params, scheme=label_map.scheme, scheme_chosen=True)
    reference = build_reference(
        choice,
        label_map,
        RegistrationParameters.from_config(config["anatomy"]["registration"]),
        max_voxels=params.max_voxels,
    )
    result = compute_features(
        label_map,
        params,
        subject=subject,
        session=session,
        threads=threads,
        reference=reference,
        location=LocationParameters.from_config(config["anatomy"]),
    )
    return Measurement(result, label_map, params)


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
    from .config import read_features_document, read_json, validate_with

    settings = load_config(config)
    features_path = None
    if isinstance(features, Measurement):
        document = features.document
    elif isinstance(features, Mapping):
        document = validate_with("features_document.schema.yaml", copy.deepcopy(dict(features)), "features")
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


def indications_document(
    document: dict[str, Any],
    clinical: Any,
    *,
    rules: PathLike | None,
    thresholds: Mapping[str, Any],
    subject: str | None = None,
    session: str | None = None,
    features_path: PathLike | None = None,
    followup: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The indication document of one features document (what :func:`indicate` and ``brainmets indicate``
    share); ``clinical`` and ``followup`` as for :func:`indicate`."""
    import logging

    from .indications import RuleSet, evaluate_study
    from .indications.clinical import find_row
    from .io.core import file_sha256

    ruleset = RuleSet.load(_text(rules), dict(thresholds))
    subject = subject or document["study"].get("subject")
    session = session or document["study"].get("session")
    rows, source, clinical_path = _clinical_rows(clinical, subject)
    if subject is None and source == "clinical row" and rows and rows[0].get("subject"):
        subject, session = rows[0]["subject"], session or rows[0].get("session")  # the one row names the study
    row = None
    if rows is not None:
        if subject is None:
            raise ConfigError("give the subject: the features document names no subject")
        row = find_row(rows, subject, session, source)
        row = copy.deepcopy(row)  # the table's rows are shared by the studies of a batch
        if row is None and source == "clinical row":  # the one row given is another study's
            raise ConfigError(
                f"clinical row: it is for subject {rows[0]['subject']!r}, session {rows[0].get('session')!r}; "
                f"the study is subject {subject!r}, session {session!r}"
            )
        if row is None:
            logging.getLogger("brainmets").warning(
                "%s: no row for subject %s, session %s: clinical inputs unknown", source, subject, session
            )
    provenance = {
        "features_sha256": file_sha256(Path(features_path)) if features_path else None,
        "segmentation_sha256": document.get("provenance", {}).get("input_sha256"),
        "clinical_sha256": file_sha256(Path(clinical_path)) if clinical_path else None,
        "clinical_row_found": row is not None,
    }
    if followup is not None and followup.get("subject") not in (None, subject):
        raise ConfigError(f"the follow-up is of subject {followup.get('subject')!r}, the study of {subject!r}")
    result = evaluate_study(
        {**document, "study": {**document["study"], "subject": subject}},
        row,
        ruleset,
        provenance,
        None if followup is None else dict(followup),
    )
    result["subject"], result["session"], result["status"] = subject, session, "evaluated"
    used = result.get("followup")
    if used is not None and session is not None and used["session"] != session:
        result["warnings"].append(
            f"the follow-up's facts are as of its last session {used['session']}, not this study's session {session}"
        )
    return result


def _clinical_rows(clinical: Any, subject: str | None) -> tuple[list[dict[str, Any]] | None, str, PathLike | None]:
    """(typed rows, their source's name, the file they came from) of the ``clinical`` argument; one row given
    without a subject is the study's."""
    import pandas as pd

    from .indications.clinical import clinical_records, read_clinical
    from .indications.engine import histologies

    names = set(histologies())
    if clinical is None:
        return None, "", None
    if isinstance(clinical, str | os.PathLike):
        return read_clinical(clinical, names), str(clinical), clinical
    if isinstance(clinical, pd.Series):  # one row of a DataFrame
        clinical = clinical.to_dict()
    if isinstance(clinical, Mapping):
        named = clinical.get("subject") not in (None, "") and clinical.get("subject") == clinical.get("subject")
        if not named and subject is None:  # (NaN != NaN: pandas's empty cell)
            raise ConfigError("give the subject: neither the features document nor the clinical row names one")
        row = dict(clinical) if named else {**clinical, "subject": subject}
        return clinical_records([row], "clinical row", names), "clinical row", None
    if isinstance(clinical, pd.DataFrame):
        records = clinical.to_dict(orient="records")
        return clinical_records(records, "clinical table", names), "clinical table", None
    if isinstance(clinical, Sequence):
        return clinical_records([dict(r) for r in clinical], "clinical rows", names), "clinical rows", None
    raise ConfigError(f"clinical: expected a path, a row (mapping), rows or a DataFrame, not {type(clinical).__name__}")


@dataclass(repr=False)
class Cohort:
    """The six cohort tables (what ``brainmets cohort`` writes) as DataFrames, each with the columns of its TSV
    (``participant_id`` and ``session_id`` first, as strings: "sub-01", "ses-01"), numbers rounded as in the
    files, one row per:

    - ``lesions``: lesion of every features document;
    - ``studies``: features document (the study summary);
    - ``indications``: evaluated indication document (each treatment's status);
    - ``status``: status document of the workflow's features step (empty when none is given);
    - ``lesion_tracks``: lesion track and session of every follow-up document;
    - ``responses``: session of every follow-up document (RANO-BM and volumetric responses).

    A table with no document behind it is empty, with its columns. Its ``repr`` is one line; in a notebook it
    shows its studies and lesions."""

    lesions: pd.DataFrame
    studies: pd.DataFrame
    indications: pd.DataFrame
    status: pd.DataFrame
    lesion_tracks: pd.DataFrame
    responses: pd.DataFrame

    def __repr__(self) -> str:
        subjects = self.studies["participant_id"].nunique()
        parts = [
            f"{_count(len(self.studies), 'study', 'studies')} of {_count(subjects, 'subject')}",
            _count(len(self.lesions), "lesion"),
        ]
        if len(self.indications):
            parts.append(f"{len(self.indications)} with indications")
        if len(self.status):
            failed = int((self.status["features_status"] == "failed").sum())
            parts.append(f"{len(self.status)} with a status ({failed} failed)")
        if len(self.responses):
            followed = self.responses["participant_id"].nunique()
            parts.append(f"{_count(followed, 'subject')} followed up ({_count(len(self.responses), 'session')})")
        return _one_line(f"<Cohort: {', '.join(parts)}>")

    def _repr_html_(self) -> str:
        return _html(repr(self), [("studies", self.studies), ("lesions", self.lesions)])


def cohort(
    features: PathLike | Sequence[PathLike] = (),
    *,
    status: PathLike | Sequence[PathLike] = (),
    indications: PathLike | Sequence[PathLike] = (),
    followup: PathLike | Sequence[PathLike] = (),
) -> Cohort:
    """Gather the documents of many studies into the cohort tables: the features documents (given directly, or
    through the status documents of the workflow's features step), the indication documents and the follow-up
    documents; each argument takes one path or a list of paths (JSON files).

    Returns:
        a :class:`Cohort` of six DataFrames: ``lesions``, ``studies``, ``indications``, ``status``,
        ``lesion_tracks`` and ``responses`` (empty when no document of their kind is given).

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
    from .cohort_tables import gather, table_spec

    def paths(given: PathLike | Sequence[PathLike]) -> list[str]:
        return [str(given)] if isinstance(given, str | os.PathLike) else [str(p) for p in given]

    tables = gather(paths(features), paths(status), paths(indications), paths(followup))
    frames = {}
    for name in ("lesions", "studies", "indications", "status", "lesion_tracks", "responses"):
        rows = getattr(tables, name)
        columns = table_spec(name)[0]
        frames[name] = _frame(rows, columns, None).astype(
            {c: "string" for c in ("participant_id", "session_id") if c in columns}
        )
    return Cohort(**frames)


class _Document(Mapping):
    """A result that is also its document, read-only: ``result["key"]``, ``result.get``, ``in``, ``dict(result)``
    and ``==`` with a dict work as on the document (what :func:`follow_up` and :func:`compare` returned before
    they returned objects); ``.document`` is the dict itself (for ``json.dump``)."""

    __slots__ = ("document",)

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    def __getitem__(self, key: str) -> Any:
        return self.document[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.document)

    def __len__(self) -> int:
        return len(self.document)

    def __reduce__(self):
        return type(self), (self.document,)


class FollowUp(_Document):
    """One subject's follow-up (:func:`follow_up`): ``.document``, the dict ``brainmets followup --out-json``
    writes, and its tables as DataFrames, numbers rounded as in the files:

    - ``lesions``: one row per lesion track and session, by (``session``, ``track_id``): the columns of
      ``--out-lesiontracks`` (lesion id, event, volume, axial diameter, RANO-BM role, growth, ...);
    - ``tracks``: one row per track, by ``track_id``: where and when it starts and ends, its first and last
      volume and their change, its treatments, whether it grew beyond measurement noise;
    - ``changes``: one row per track and interval between two measurements, by (``track_id``, ``from_session``,
      ``to_session``): volume and diameter changes with their uncertainties, growth rate, doubling time;
    - ``responses``: one row per session, by ``session``: the columns of ``--out-responses`` (RANO-BM response
      with its sums and reasons, volumetric response).

    Indexing it (``result["rano_bm"]``) reads the document. Its ``repr`` is one line; in a notebook it shows
    its responses and lesions."""

    __slots__ = ()

    @property
    def subject(self) -> str:
        return self.document["subject"]

    @property
    def lesions(self) -> pd.DataFrame:
        from .followup import LESION_TRACK_FIELDS

        return _frame(self.document["lesions"], [f.name for f in LESION_TRACK_FIELDS], ["session", "track_id"])

    @property
    def responses(self) -> pd.DataFrame:
        from .followup import RESPONSE_FIELDS, table_rows

        return _frame(table_rows(self.document)[1], [f.name for f in RESPONSE_FIELDS], "session")

    @property
    def tracks(self) -> pd.DataFrame:
        rows = []
        for track in self.document["tracks"]:
            measured = [v for v in track["volumes_ml"] if v["volume_ml"] is not None]
            first, last = (measured[0], measured[-1]) if measured else ({}, {})
            change = None
            if first.get("volume_ml") and last.get("volume_ml") is not None:
                change = 100 * (last["volume_ml"] - first["volume_ml"]) / first["volume_ml"]
            rows.append({
                "track_id": track["track_id"],
                "first_session": track["first_session"],
                "last_session": last.get("session"),
                "sessions": len(measured),
                "first_volume_ml": first.get("volume_ml"),
                "last_volume_ml": last.get("volume_ml"),
                "volume_change_percent": change,
                "grew_beyond_noise": any(c["growth_beyond_noise"] for c in track["changes"]),
                "rano_bm_target": track["rano_bm_target"],
                "split_from": track["split_from"],
                "merged_into": track["merged_into"],
                "treatments": [f"{t['treatment']} after {t['session']}" for t in track["treatments"]],
            })  # fmt: skip
        columns = ["track_id", "first_session", "last_session", "sessions", "first_volume_ml", "last_volume_ml",
                   "volume_change_percent", "grew_beyond_noise", "rano_bm_target", "split_from", "merged_into",
                   "treatments"]  # fmt: skip
        return _frame(rows, columns, "track_id")

    @property
    def changes(self) -> pd.DataFrame:
        rows = [{"track_id": t["track_id"], **c} for t in self.document["tracks"] for c in t["changes"]]
        columns = ["track_id", "from_session", "to_session", "days", "volume_change_ml", "volume_uncertainty_ml",
                   "percent_change", "growth_percent_per_month", "growth_percent_per_month_uncertainty",
                   "volume_doubling_time_days", "axial_diameter_change_mm", "axial_diameter_uncertainty_mm",
                   "growth_beyond_noise", "not_beyond_noise_because", "failed_criteria"]  # fmt: skip
        columns += sorted({k for r in rows for k in r} - set(columns))  # any the document gains
        return _frame(rows, columns, ["track_id", "from_session", "to_session"])

    def __repr__(self) -> str:
        sessions, responses = self.document["sessions"], self.document["rano_bm"]
        span = f" {sessions[0]['date']} to {sessions[-1]['date']}" if len(sessions) > 1 else ""
        last = f", RANO-BM {responses[-1]['response']} at ses-{responses[-1]['session']}" if responses else ""
        return _one_line(
            f"<FollowUp {_who(self.subject, None)}: {_count(len(sessions), 'session')}{span}, "
            f"{_count(len(self.document['tracks']), 'lesion track')}{last}>"
        )

    def _repr_html_(self) -> str:
        return _html(repr(self), [("responses", self.responses), ("lesions", self.lesions)])


class Comparison(_Document):
    """Two segmentations of one study compared (:func:`compare`): ``.document``, the dict ``brainmets compare
    --out-json`` writes, and its tables as DataFrames, numbers rounded as in the files:

    - ``lesions``: one row per lesion group (a reference lesion and its predicted counterparts, a missed or an
      invented lesion), numbered from 1 in the document's order (index ``group``): agreement, lesion ids, Dice,
      the features of both and their differences (the cohort's ``comparison_lesions`` columns);
    - ``studies``: the study's one row, by (``subject``, ``session``): lesion-wise and global Dice and F1 per
      region, the study features' differences, missed and invented lesion counts (the cohort's
      ``comparison_studies`` columns);
    - ``study``: one row per study feature (lesion count, volumes, diameters, ...), by ``feature``: its
      ``reference``, ``prediction`` and ``difference``;
    - ``metrics``: one row per BraTS region, by ``region``: the evaluator's numbers (lists left out).

    Indexing it (``result["metrics"]``) reads the document. Its ``repr`` is one line; in a notebook it shows
    its lesion groups."""

    __slots__ = ()

    @property
    def lesions(self) -> pd.DataFrame:
        from .comparison import COMPARISON_LESION_FIELDS

        columns = [f.name for f in COMPARISON_LESION_FIELDS]
        rows = [{"group": k, **row} for k, row in enumerate(self.document["lesions"], start=1)]
        return _frame(rows, ["group", *columns], "group")

    @property
    def studies(self) -> pd.DataFrame:
        from .comparison import COMPARISON_STUDY_FIELDS, table_rows

        row = {"subject": self.document["subject"], "session": self.document["session"], **table_rows(self.document)[1]}
        return _frame([row], ["subject", "session", *[f.name for f in COMPARISON_STUDY_FIELDS]], ["subject", "session"])

    @property
    def study(self) -> pd.DataFrame:
        rows = [{"feature": name, **values} for name, values in self.document["study"].items()]
        return _frame(rows, ["feature", "reference", "prediction", "difference"], "feature")

    @property
    def metrics(self) -> pd.DataFrame:
        rows = []
        for region, result in self.document["metrics"]["regions"].items():
            scalars = {k: v for k, v in result.items() if v is None or isinstance(v, int | float | str)}
            rows.append({"region": region, **scalars})
        columns = ["region", *dict.fromkeys(k for r in rows for k in r if k != "region")]
        return _frame(rows, columns, "region")

    def __repr__(self) -> str:
        from collections import Counter

        from .comparison import table_rows

        count = self.document["study"]["lesion_count"]
        agreement = Counter(e["agreement"] for e in self.document["lesions"])
        study = table_rows(self.document)[1]
        dice = ", ".join(
            f"{r} {study[f'{r}_lesionwise_dice']:.3g}"
            for r in ("et", "tc", "wt")
            if study.get(f"{r}_lesionwise_dice") is not None
        )
        who = _who(self.document["subject"], self.document["session"])
        return _one_line(
            f"<Comparison{' ' + who if who else ''}: {count['reference']} reference vs {count['prediction']} "
            f"predicted lesions ({', '.join(f'{n} {kind}' for kind, n in agreement.items()) or 'none'}); "
            f"lesion-wise Dice {dice or 'n/a'} ({self.document['metrics']['mode']})>"
        )

    def _repr_html_(self) -> str:
        return _html(repr(self), [("lesions", self.lesions), ("study", self.study)])


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
    from .followup import FollowupParameters
    from .followup import follow_up as build
    from .timeline import check_one_subject, read_timeline, sessions_from_rows
    from .tracking import SessionLesions

    settings = _with_features(load_config(config), parameters)
    if isinstance(timeline, str | os.PathLike):
        sessions = read_timeline(timeline, subject)
    else:
        records = timeline.to_dict(orient="records") if hasattr(timeline, "to_dict") else list(timeline)
        rows = [{k: "" if v is None else str(v) for k, v in r.items()} for r in records]
        if subject is None:
            check_one_subject(rows, "timeline")
        sessions = sessions_from_rows([r for r in rows if subject in (None, r.get("subject"))], "timeline")
    registrations: list[dict[str, Any] | None] = [None] * len(sessions)
    if register:
        sessions, registrations = _registered(sessions, settings)
    documents, data, affines = [], [], []
    for session in sessions:
        study_config = settings
        if session.label_scheme:
            from .labels import scheme_setting

            study_config = _with_features(settings, {"label_scheme": scheme_setting(session.label_scheme)})
        reference = dict(session.reference)
        options = {k: reference.pop(k, None) for k in ("atlas_dir", "subject_image", "reference_series")}
        choice = reference_choice(
            settings["anatomy"],
            {k: v for k, v in reference.items() if k != "reference_alignment"},
            alignment=reference.get("reference_alignment"),
            **{k: v for k, v in options.items() if k != "reference_series"},
        )
        measured = measure_study(
            session.segmentation,
            study_config,
            choice,
            dicom_options(settings["dicom"], options["reference_series"]),
            subject=session.subject,
            session=session.session,
            threads=threads,
        )
        documents.append(measured.document)
        data.append(
            SessionLesions.from_measurement(
                measured.features.lesions, measured.instances, measured.affine, session.transform
            )
        )
        affines.append(measured.affine)
    document = build(
        sessions, documents, data, affines, FollowupParameters.from_config(settings["followup"]), registrations
    )
    rano = settings["features"]["rano_bm"]
    document["assumptions"].insert(
        0,
        f"targets: up to features.rano_bm.max_target_lesions = {rano['max_target_lesions']} measurable lesions, "
        f"largest first; measurable: axial longest diameter >= features.rano_bm.min_longest_diameter_mm = "
        f"{rano['min_longest_diameter_mm']:g} mm, perpendicular >= min_perpendicular_diameter_mm = "
        f"{rano['min_perpendicular_diameter_mm']:g} mm, on >= min_axial_slices = {rano['min_axial_slices']} axial "
        "slices (RANO-BM, Lin NU et al., Lancet Oncol 2015)",
    )
    return FollowUp(document)


def _registered(sessions: list, settings: dict[str, Any]) -> tuple[list, list[dict[str, Any] | None]]:
    """The sessions with a transform estimated for each follow-up that has none, and each one's quality."""
    from .config import FeatureParameters, RegistrationParameters
    from .registration import session_to_baseline

    images = [dict(s.reference).get("subject_image") for s in sessions]
    if not images[0]:
        raise ConfigError("register: the baseline session has no subject_image to register to")
    params = RegistrationParameters.from_config(settings["anatomy"]["registration"])
    max_voxels = FeatureParameters.from_config(settings["features"]).max_voxels
    out, qualities = [sessions[0]], [None]
    for session, image in zip(sessions[1:], images[1:]):
        if session.transform is not None:
            out.append(session)
            qualities.append({"estimated": False, "reason": "the timeline gives this session's transform"})
            continue
        if not image:
            raise ConfigError(f"register: session {session.session} has no subject_image (and no transform)")
        matrix, quality = session_to_baseline(Path(image), Path(images[0]), params, max_voxels)
        out.append(dataclasses.replace(session, transform=matrix))
        qualities.append({"estimated": True, **quality})
    return out, qualities


#: BraTS-METS label values by role (what the official metrics read), for maps in another scheme.
_METS_LABELS = {"necrotic": 1, "core": 1, "edema": 2, "enhancing": 3, "cavity": 4}


def _mets_labels(label_map: LabelMap, scheme) -> np.ndarray:
    """The label map in BraTS-METS values (1 necrotic / core, 2 edema, 3 enhancing, 4 cavity), whatever its
    scheme; labels the scheme ignores become 0."""
    import numpy as np

    from .labels import Role, role_mask

    if scheme.name == "brats-mets-2023":
        return label_map.labels
    out = np.zeros(label_map.shape, np.uint8)
    for role in (Role.EDEMA, Role.CAVITY, Role.NECROTIC, Role.CORE, Role.ENHANCING):
        if scheme.has(role):
            out[role_mask(label_map.labels, scheme, role)] = _METS_LABELS[role.name.lower()]
    return out


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
    lesions of both in the study's anatomy.

    Returns:
        a :class:`Comparison`: ``.lesions`` (one row per lesion group), ``.studies`` (the study's row of
        metrics and differences), ``.study`` (each study feature of both) and ``.metrics`` (per region) as
        DataFrames, and ``.document`` (the dict ``brainmets compare --out-json`` writes: ``metrics``,
        ``lesions``, ``study``, ``indications``, ``warnings``, ``provenance``), which indexing the result reads
        too (``result["metrics"]``).

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
    import numpy as np

    from .brats_metrics import VERSION, VERSION_2023, evaluate, evaluate_2023
    from .comparison import add_dice, lesion_agreement, onto_grid, study_agreement, verdict_changes
    from .tracking import SessionLesions, TrackingParameters

    modes = {"brats2025": (evaluate, VERSION), "brats2023": (evaluate_2023, VERSION_2023)}
    if metrics not in modes:
        raise ConfigError(f"metrics: {metrics!r} is not one of {', '.join(modes)}")
    settings = _with_features(load_config(config), parameters)
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
        _mets_labels(pred.label_map, pred.parameters.scheme), pred.affine, ref.affine, ref.label_map.shape
    )
    if warning:
        warnings.append(warning)
    zooms = np.linalg.norm(ref.affine[:3, :3], axis=0)
    evaluator, follows = modes[metrics]
    regions = evaluator(_mets_labels(ref.label_map, ref.parameters.scheme), moved, zooms)
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
        "study": study_agreement(ref.document, pred.document),
        "indications": None,
        "warnings": warnings,
        "provenance": {
            "reference_sha256": ref.document["provenance"].get("input_sha256"),
            "prediction_sha256": pred.document["provenance"].get("input_sha256"),
        },
    }
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
