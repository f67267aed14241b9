"""Intensity images (a T1 or T1c: the registration's subject, a picture's background): their headers checked
before they are read, read as float, brought onto a segmentation's grid; and label maps as SimpleITK images
(RAS affine to ITK's LPS origin, spacing and direction)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import nibabel as nib
import numpy as np

from brainmets.errors import InputDataError
from brainmets.io.compressed import check_compressed, itk_readable, read_image
from brainmets.io.core import LPS_TO_RAS, check_voxel_count
from brainmets.io.dicom import dicom_files
from brainmets.io.labelmap import LabelMap
from brainmets.io.readers import check_image_header

if TYPE_CHECKING:
    import SimpleITK as sitk


def to_sitk(label_map: LabelMap) -> sitk.Image:
    """A LabelMap as a SimpleITK image (RAS affine to ITK's LPS origin, spacing and direction)."""
    import SimpleITK as sitk  # loaded when used: a run on NIfTI labels without a template never needs it

    lps = np.linalg.inv(LPS_TO_RAS) @ label_map.affine
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    image = sitk.GetImageFromArray(np.ascontiguousarray(label_map.labels.transpose(2, 1, 0)))
    image.SetSpacing(spacing.tolist())
    image.SetOrigin(lps[:3, 3].tolist())
    try:
        image.SetDirection((lps[:3, :3] / spacing).ravel().tolist())
    except RuntimeError:
        raise InputDataError(label_map.source, "its voxel axes are not orthogonal; cannot resample onto it") from None
    return image


def read_intensity(path: Path, max_voxels: int) -> sitk.Image:
    """A 3D intensity image (a T1 or T1c) as a float SimpleITK image, its header checked before it is read."""
    import SimpleITK as sitk  # loaded when used: a run on NIfTI labels without a template never needs it

    check_image_header(path, max_voxels)
    try:
        image = read_image(path, sitk.sitkFloat32)
    except RuntimeError as exc:
        lines = str(exc).strip().splitlines()
        raise InputDataError(path, f"not a readable image ({lines[-1] if lines else exc})") from None
    if image.GetDimension() == 4 and image.GetSize()[3] == 1:
        image = image[:, :, :, 0]
    if image.GetDimension() != 3:
        raise InputDataError(path, f"is a {image.GetDimension()}D image; expected a 3D T1-weighted image")
    return image


def check_intensity_image(path: str | Path, max_voxels: int) -> None:
    """The header checks of a picture's background image (a file, or a DICOM series folder: rows x columns x
    frames x files), before any of it is read."""
    path = Path(path)
    if not path.is_dir():
        check_image_header(path, max_voxels)
        return

    import pydicom  # a DICOM folder only: most runs never import it (0.1 s)

    files = dicom_files(path)
    if not files:
        raise InputDataError(path, "is a folder without DICOM files")
    try:
        first = pydicom.dcmread(files[0], stop_before_pixels=True)
        shape = (int(first.Columns), int(first.Rows), int(first.get("NumberOfFrames", 1) or 1) * len(files))
    except Exception as exc:
        raise InputDataError(files[0], f"not a DICOM image ({type(exc).__name__}: {exc})") from None
    check_voxel_count(path, shape, max(1, int(first.get("BitsAllocated", 16) or 16) // 8), max_voxels)


def image_on_grid(path: str | Path, affine: np.ndarray, shape: tuple[int, ...], max_voxels: int) -> np.ndarray:
    """An intensity image (e.g. the T1c) on the segmentation's voxel grid: as stored when the grids match,
    else resampled (linear) through both images' world coordinates. A file whose header claims more than
    ``max_voxels`` voxels is refused before it is read."""
    check_intensity_image(path, max_voxels)
    check_compressed(path)  # nibabel and SimpleITK verify no checksum
    try:
        img = nib.load(str(path))
        if img.shape[:3] == tuple(shape) and np.allclose(img.affine, affine, atol=1e-3):
            return np.asanyarray(img.dataobj).reshape(shape).astype(np.float32)
    except Exception:  # not NIfTI, or another grid: SimpleITK reads and resamples it
        pass

    import SimpleITK as sitk  # another grid or format: resampled by SimpleITK

    try:
        if Path(path).is_dir():  # a DICOM series (e.g. the planning MR of an RTSTRUCT)
            series = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(path))
            if len(series) != 1:
                raise InputDataError(path, f"holds {len(series)} DICOM image series; expected one")
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(path), series[0]))
            reader.SetOutputPixelType(sitk.sitkFloat32)
            moving = reader.Execute()
        else:
            with itk_readable(path) as readable:
                moving = sitk.ReadImage(str(readable), sitk.sitkFloat32)
    except RuntimeError as exc:
        raise InputDataError(path, f"not a readable image ({str(exc).strip().splitlines()[-1]})") from None
    grid = to_sitk(LabelMap(np.zeros(shape, np.uint8), affine, str(path)))
    out = sitk.Resample(moving, grid, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    return sitk.GetArrayFromImage(out).transpose(2, 1, 0)
