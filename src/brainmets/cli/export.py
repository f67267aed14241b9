"""``brainmets export``: one study's lesions back to the clinic's viewers as a DICOM SEG or an RTSTRUCT, on the
reference series given or on a derived MR series written beside the export."""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
from pathlib import Path

from brainmets.cli.common import (
    check_identity,
    command_config,
    command_inputs,
    config_options,
    identity_options,
    parent_parser,
    scheme_options,
    status_options,
    study_label,
    summarize,
)
from brainmets.display import count
from brainmets.errors import ConfigError, InputDataError

FORMATS = ("dicom-seg", "rtstruct")


def add_parser(sub, parents: list[argparse.ArgumentParser]) -> None:
    own = parent_parser()
    own.add_argument(
        "segmentation",
        metavar="SEGMENTATION",
        help="label map: NIfTI, NRRD, MetaImage, or DICOM (SEG, RTSTRUCT or a label series)",
    )
    own.add_argument("--format", required=True, choices=FORMATS, help="dicom-seg (a binary DICOM SEG) or rtstruct")
    own.add_argument(
        "--out",
        required=True,
        metavar="PATH",
        help="the DICOM file; without --reference-series a derived MR series is written beside it, in <stem>_series/",
    )
    own.add_argument(
        "--reference-series",
        metavar="DIR",
        help="the image series the segmentation was drawn on (same grid): the export refers to it and carries its "
        "patient and study attributes (the one output that may); also the series of a SEG or RTSTRUCT input",
    )
    own.add_argument(
        "--image",
        metavar="FILE",
        help="without --reference-series: the derived series' pixels (e.g. the T1c, put on the segmentation's grid); "
        "default: the label map scaled",
    )
    own.add_argument(
        "--followup",
        metavar="FOLLOWUP.json",
        help="the subject's follow-up document (brainmets followup --out-json): lesions carry their track ids",
    )
    com = sub.add_parser(
        "export",
        parents=[
            *parents,
            own,
            identity_options("subject label", "session label: the session of --followup this segmentation is"),
            scheme_options(
                'label scheme (default auto: brats-mets-2023, a map of only 0 and 1 binary; or "enhancing=3;edema=2")'
            ),
            config_options("config file (its features section: the lesions as the other commands find them)"),
            status_options("always write a status document; exit 0 on a bad study"),
        ],
        help="write one study's lesions as a DICOM SEG or RTSTRUCT for the clinic's viewers (research use only)",
        description="Write one study's lesions as a DICOM SEG (per lesion a segment per sub-region and its edema) "
        "or an RTSTRUCT (one ROI per lesion core), numbered as in the lesion table, or by track with --followup.",
    )
    com.set_defaults(func=run, outputs=planned_outputs)


def series_folder(out: Path) -> Path:
    """Where the derived MR series goes: ``<stem>_series/`` beside the export."""
    return out.with_name(re.sub(r"\.dcm$", "", out.name, flags=re.IGNORECASE) + "_series")


def planned_outputs(args: argparse.Namespace) -> dict[str, Path]:
    """The export file (and the derived series' folder); refuses an output that is an input or a folder."""
    from brainmets.io.writers import check_outputs

    out = Path(args.out)
    check_outputs([out, *([args.status_json] if args.status_json else [])], command_inputs(args))
    outputs = {args.format: out}
    if not args.reference_series:
        folder = series_folder(out)
        if any(Path(i).resolve() == folder.resolve() for i in command_inputs(args)):
            raise ConfigError(f"{folder}: the derived series' folder is an input")
        outputs["series"] = folder
    return outputs


def _tracks(args: argparse.Namespace, measurement):
    """The session's track ids and the follow-up's key (None without --followup); the follow-up must have
    measured this segmentation."""
    from brainmets.config import read_json
    from brainmets.longitudinal.followup import followup_key, session_tracks
    from brainmets.study.export import Tracks

    if not args.followup:
        return None
    document = read_json(args.followup, "follow-up document", InputDataError)
    if "lesions" not in document or "sessions" not in document:
        raise InputDataError(args.followup, "is not a follow-up document (brainmets followup --out-json)")
    track_ids, index = session_tracks(document, args.session, args.followup)
    ids = [row["lesion_id"] for row in measurement.features.lesions]
    digests = (document.get("provenance") or {}).get("segmentation_sha256") or []
    digest = measurement.label_map.provenance.get("input_sha256")
    if index < len(digests) and digests[index] and digest and digests[index] != digest:
        raise InputDataError(
            args.segmentation, f"is not the segmentation {args.followup} measured for session {args.session}"
        )
    if set(ids) != set(track_ids):
        raise InputDataError(
            args.segmentation,
            f"has {count(len(ids), 'lesion')} but session {args.session} of {args.followup} has "
            f"{count(len(track_ids), 'lesion')}: export with the config the follow-up was made with",
        )
    return Tracks(track_ids, followup_key(document))


def run(args: argparse.Namespace) -> dict[str, Path]:
    from brainmets.io.dicom.export import (
        derived_series,
        display_pixels,
        read_reference_series,
        reference_grid,
        write_seg,
    )
    from brainmets.io.dicom.export_rtstruct import write_rtstruct
    from brainmets.io.dicom.headers import Redactor, guarded
    from brainmets.io.images import image_on_grid
    from brainmets.io.writers import atomic_path
    from brainmets.schemes import scheme_setting
    from brainmets.study import measure
    from brainmets.study.export import study_rois, study_segments

    check_identity(args)
    if args.followup and not args.session:
        raise ConfigError("--followup needs --session: the session of the follow-up this segmentation is")
    if args.image and args.reference_series:
        raise ConfigError("give --image or --reference-series, not both: --image makes the derived series' pixels")
    outputs = planned_outputs(args)
    config = command_config(args)
    if args.scheme:
        from brainmets.errors import LabelSchemeError

        try:
            config["features"]["label_scheme"] = scheme_setting(args.scheme)
        except LabelSchemeError as exc:
            raise ConfigError(f"--scheme: {exc}") from None
    redactor = Redactor()
    source = None
    if args.reference_series:
        with guarded(Path(args.reference_series), redactor):
            source = read_reference_series(Path(args.reference_series), redactor)
    no_anatomy = {**config["anatomy"], **dict.fromkeys(("atlas", "template", "template_image", "template_labels"))}
    measurement = measure.measure_study(
        args.segmentation,
        config,
        measure.reference_choice(no_anatomy, {}),
        measure.dicom_options(config["dicom"], args.reference_series),
        subject=args.subject,
        session=args.session,
        threads=1,
        background_image=args.image,
    )
    tracks = _tracks(args, measurement)
    label_map = measurement.label_map
    items = study_segments(measurement, tracks) if args.format == "dicom-seg" else study_rois(measurement, tracks)
    if not items:  # valid data with nothing to draw: a SEG or RTSTRUCT needs at least one segment or ROI
        import logging

        logging.getLogger(__name__).warning(
            "%s: no lesion: no %s written (a DICOM %s needs at least one %s)", Path(args.segmentation).name,
            args.format, "SEG" if args.format == "dicom-seg" else "RTSTRUCT",
            "segment" if args.format == "dicom-seg" else "ROI",
        )  # fmt: skip
        return {}
    if source is not None:
        on_grid = reference_grid(label_map.affine, label_map.shape, source, args.segmentation)
        for item in items:
            item.mask = on_grid(item.mask)
    label = study_label(args)
    out, folder, tmp_folder = Path(args.out), outputs.get("series"), None
    try:
        with guarded(out, redactor), atomic_path(out) as tmp:
            if folder is not None:
                tmp_folder = Path(tempfile.mkdtemp(prefix=".brainmets-", suffix=".tmp", dir=folder.parent))
                image = (
                    image_on_grid(args.image, label_map.affine, label_map.shape, measurement.parameters.max_voxels)
                    if args.image
                    else None
                )
                what = "image" if args.image else "label map"
                source = derived_series(
                    tmp_folder, display_pixels(image, label_map.labels), label_map.affine, f"brainmets {what}"
                )
            description = f"brainmets lesions {label}"
            if args.format == "dicom-seg":
                write_seg(tmp, items, source, description)
            else:
                write_rtstruct(tmp, items, source, description)
            if folder is not None:
                if folder.is_dir():
                    shutil.rmtree(folder)
                tmp_folder.rename(folder)
                tmp_folder = None
    finally:
        if tmp_folder is not None:
            shutil.rmtree(tmp_folder, ignore_errors=True)
    what = f"{count(len(items), 'segment' if args.format == 'dicom-seg' else 'ROI')}"
    lesions = count(measurement.study["lesion_count"], "lesion")
    summarize(args, f"{label}: {lesions}, {what} ({args.format})", outputs)
    return outputs
