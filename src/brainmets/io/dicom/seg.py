"""DICOM SEG (highdicom): segments to labels on the source series' grid, its frames and source series checked."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from brainmets.errors import InputDataError
from brainmets.io.core import (
    LPS_TO_RAS,
    check_voxel_count,
)
from brainmets.io.dicom.headers import (
    Header,
    Redactor,
    dicom_files,
    files_sha256,
    geometry_provenance,
    read_headers,
    uid_digest,
)
from brainmets.io.dicom.options import DicomOptions, combine_roles, role_scheme, segment_roles
from brainmets.io.dicom.series import series_geometry
from brainmets.io.labelmap import LabelMap

log = logging.getLogger(__name__)


def read_seg(header: Header, images: list[Header], options: DicomOptions, redactor: Redactor) -> LabelMap:
    """A DICOM SEG on its source series' grid when that series is at hand (the folder given, the SEG's folder
    or --reference-series), else on the grid of its own frames."""
    import highdicom as hd

    ds = header.dataset
    rows, columns, frames = int(ds.get("Rows", 0)), int(ds.get("Columns", 0)), int(ds.get("NumberOfFrames", 1) or 1)
    check_voxel_count(header.path, (columns, rows, frames), 1, options.max_voxels)
    seg = hd.seg.segread(header.path)
    redactor.add(seg)
    _check_frames(seg)
    items = []
    for number in seg.segment_numbers:
        desc = seg.get_segment_description(number)
        prop = desc.segmented_property_type
        items.append((number, str(desc.segment_label), f"{prop.scheme_designator}:{prop.value}"))
    roles = segment_roles(items, options, "segment")
    fractional = seg.segmentation_type == hd.seg.SegmentationTypeValues.FRACTIONAL
    source = _seg_source_series(seg, header, images, options, redactor)
    if source is not None:  # (slices, rows, columns, segments) -> (columns, rows, slices, segments)
        series, affine_lps, shape = source
        check_voxel_count(header.path, (*shape, len(items)), 1, options.max_voxels)
        uids = [str(h.dataset.SOPInstanceUID) for h in series]
        array = seg.get_pixels_by_source_instance(uids, rescale_fractional=True).transpose(2, 1, 0, 3)
        affine = LPS_TO_RAS @ affine_lps
        grid = "the source image series' grid"
    else:
        volume = seg.get_volume(combine_segments=False, rescale_fractional=True)
        array = np.asarray(volume.array)
        affine = volume.get_affine("RAH")
        grid = "the SEG's frames"
        _check_slice_spacing(seg, volume.affine)
    if array.ndim == 3:
        array = array[..., None]
    masks = []
    for channel, number in enumerate(seg.segment_numbers):
        values = array[..., channel]
        masks.append((roles[number], values >= options.fractional_threshold if fractional else values > 0))
    labels = combine_roles(masks, options)
    if source is None and _source_instance_count(seg) > labels.shape[0]:
        # empty frames omitted and the source series absent: one empty slice each side, so that no lesion
        # seems cut by the crop (touches_image_border cannot see the source's first and last slices)
        labels = np.pad(labels, ((1, 1), (0, 0), (0, 0)))
        affine[:3, 3] -= affine[:3, 0]
        grid = (
            "the extent of the SEG's frames plus one empty slice each side (its empty frames are omitted and its "
            "source series was not found; touches_image_border cannot see the source's first and last slices)"
        )
    return LabelMap(
        labels=labels,
        affine=affine,
        source=str(header.path),
        provenance={
            "input_format": "dicom-seg",
            **geometry_provenance(affine, labels.shape),
            "segmentation_type": seg.segmentation_type.value,
            "segments": [{"number": n, "label": redactor(lbl), "role": roles[n]} for n, lbl, _ in items],
            "fractional_threshold": options.fractional_threshold if fractional else None,
            "grid": grid,
            "overlap_priority": list(options.overlap_priority),
            "input_sha256": files_sha256([header.path, *(h.path for h in source[0])] if source else [header.path]),
        },
        scheme=role_scheme(roles.values()),
    )


def _seg_source_series(seg, header: Header, images: list[Header], options: DicomOptions, redactor: Redactor):
    """(sorted headers, LPS affine, shape) of the SEG's source series if it is at hand and in the SEG's frame
    of reference, else None. A series given explicitly (``reference_series``) must be that: otherwise an
    error names both, rather than a silent fallback to the SEG's own frames."""
    try:
        series_uid = str(seg.ReferencedSeriesSequence[0].SeriesInstanceUID)
    except (AttributeError, IndexError):
        series_uid = None
    given = Path(options.reference_series) if options.reference_series else None
    if given is not None:
        if not given.is_dir():
            raise InputDataError("", f"the reference series folder {given} does not exist")
        images = read_headers(dicom_files(given), redactor)
    elif series_uid is None:
        return None
    elif not images:
        images = read_headers(dicom_files(header.path.parent), redactor)
    if series_uid is None:
        raise InputDataError(
            "", f"the SEG names no source series, so the reference series {given} cannot be matched to it"
        )
    series = [h for h in images if h.series == series_uid]
    frame = str(getattr(seg, "FrameOfReferenceUID", ""))
    frames = {str(getattr(h.dataset, "FrameOfReferenceUID", "")) for h in series}
    if given is not None and not series:
        found = sorted({uid_digest(h.series) for h in images}) or ["none"]
        raise InputDataError(
            "",
            f"the SEG's source series {uid_digest(series_uid)} is not in the reference series {given} (series "
            f"found there: {', '.join(found)}): give the series the SEG was drawn on, or none",
        )
    if given is not None and frames != {frame}:
        raise InputDataError(
            "",
            f"the reference series {given} is in frame of reference {', '.join(uid_digest(f) for f in sorted(frames))}, "
            f"not the SEG's {uid_digest(frame)}",
        )
    if not series or frames != {frame}:
        return None
    return series_geometry(series)


def _check_slice_spacing(seg, affine_lps: np.ndarray) -> None:
    """Warn when the volume's slice spacing (from the SEG's SpacingBetweenSlices) is a fraction of the
    distance between its frames: the tag is then likely wrong and the volume stretched along the slices."""
    spacing = float(np.linalg.norm(affine_lps[:3, 0]))
    positions = [
        [float(v) for v in frame.PlanePositionSequence[0].ImagePositionPatient]
        for frame in getattr(seg, "PerFrameFunctionalGroupsSequence", [])
        if "PlanePositionSequence" in frame
    ]
    distances = np.unique(np.round(np.asarray(positions).reshape(-1, 3) @ (affine_lps[:3, 0] / spacing), 3))
    if distances.size > 1 and np.diff(distances).min() > 1.5 * spacing:
        log.warning(
            "the SEG's slice spacing (SpacingBetweenSlices, %.4g mm) is smaller than the smallest distance "
            "between its frames (%.4g mm): the tag is probably wrong; give the source series "
            "(--reference-series) to read the SEG on its grid",
            spacing,
            np.diff(distances).min(),
        )


def _source_instance_count(seg) -> int:
    """How many source images the SEG was derived from (0 when it does not say)."""
    return sum(
        len(getattr(series, "ReferencedInstanceSequence", []))
        for series in getattr(seg, "ReferencedSeriesSequence", [])
    )


def _check_frames(seg) -> None:
    """The frames the SEG declares are all there: one functional group each, and (uncompressed) their pixels."""
    frames = int(getattr(seg, "NumberOfFrames", 1))
    groups = len(getattr(seg, "PerFrameFunctionalGroupsSequence", []))
    if groups != frames:
        raise InputDataError("", f"missing frames: NumberOfFrames is {frames} but {groups} frames are described")
    if not seg.file_meta.TransferSyntaxUID.is_compressed and "PixelData" in seg:
        bits = int(seg.BitsAllocated) * int(seg.Rows) * int(seg.Columns) * int(getattr(seg, "SamplesPerPixel", 1))
        held = len(seg.PixelData) * 8 // bits
        if held < frames:
            raise InputDataError("", f"missing frames: the pixel data holds {held} of the {frames} frames declared")
