"""Template registration with SimpleITK: bring a template's label images into a segmentation's space.

The template's T1 image (moving) is registered to the subject's T1/T1c image (fixed) by mutual
information: similarity (rigid + isotropic scale), then affine, then optionally a B-spline. The resulting
transform maps subject points to template points, so the template's labels are resampled (nearest
neighbour) straight onto the segmentation's voxel grid.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from brainmets.io import LabelMap
from brainmets.io.core import DEFAULT_MAX_VOXELS, LPS_TO_RAS
from brainmets.io.images import read_intensity, to_sitk
from brainmets.location.parameters import RegistrationParameters

log = logging.getLogger(__name__)

SEED = 20240601  # fixed metric sampling: the same inputs give the same transform


@dataclass
class Registration:
    """An estimated subject-to-template transform and how good it looks."""

    transform: sitk.Transform
    quality: dict[str, Any] = field(default_factory=dict)


def head_mask(image: sitk.Image) -> sitk.Image:
    """Brain (skull-stripped images: their non-zero voxels) or head (Otsu threshold) of an intensity image."""
    array = sitk.GetArrayViewFromImage(image)
    if np.count_nonzero(array == 0) > 0.2 * array.size:
        return sitk.Cast(image != 0, sitk.sitkUInt8)
    return sitk.OtsuThreshold(image, 0, 1)


def _dice(a: sitk.Image, b: sitk.Image) -> float:
    x, y = sitk.GetArrayViewFromImage(a) > 0, sitk.GetArrayViewFromImage(b) > 0
    total = int(x.sum()) + int(y.sum())
    return 2.0 * int((x & y).sum()) / total if total else 0.0


def _method(params: RegistrationParameters, shrink: list[int], smooth: list[float]) -> sitk.ImageRegistrationMethod:
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=params.histogram_bins)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(params.sampling_fraction, SEED)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetShrinkFactorsPerLevel(shrink)
    method.SetSmoothingSigmasPerLevel(smooth)
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    return method


def register(
    subject_path: Path, template_path: Path, params: RegistrationParameters, max_voxels: int = DEFAULT_MAX_VOXELS
) -> Registration:
    """Register the template's T1 (moving) to the subject's image (fixed) by mutual information."""
    start = time.perf_counter()
    fixed, moving = read_intensity(subject_path, max_voxels), read_intensity(template_path, max_voxels)
    stages = []

    linear = sitk.CenteredTransformInitializer(
        fixed, moving, sitk.Similarity3DTransform(), sitk.CenteredTransformInitializerFilter.MOMENTS
    )
    for name, transform in (("similarity", linear), ("affine", None)):
        if transform is None:  # affine stage, starting from the similarity result
            transform = sitk.AffineTransform(3)
            transform.SetMatrix(linear.GetMatrix())
            transform.SetTranslation(linear.GetTranslation())
            transform.SetCenter(linear.GetCenter())
        shrink = list(params.shrink_factors)
        method = _method(params, shrink, [max(f - 1, 0) * 1.0 for f in shrink])
        method.SetOptimizerAsRegularStepGradientDescent(
            learningRate=1.0, minStep=1e-4, numberOfIterations=params.iterations, gradientMagnitudeTolerance=1e-8
        )
        method.SetOptimizerScalesFromPhysicalShift()
        method.SetInitialTransform(transform, inPlace=True)
        method.Execute(fixed, moving)
        stages.append({"stage": name, "metric": method.GetMetricValue(), "iterations": method.GetOptimizerIteration()})
        linear = transform
    final: sitk.Transform = linear

    if params.deformable:
        mesh = [params.bspline_mesh_size] * 3
        bspline = sitk.BSplineTransformInitializer(fixed, mesh)
        coarsest = max(params.shrink_factors)  # a B-spline at full resolution costs minutes, not seconds
        method = _method(params, [coarsest], [max(coarsest - 1, 0) * 1.0])
        method.SetOptimizerAsLBFGSB(
            gradientConvergenceTolerance=1e-5,
            numberOfIterations=params.bspline_iterations,
            maximumNumberOfCorrections=5,
        )
        method.SetMovingInitialTransform(linear)
        method.SetInitialTransform(bspline, inPlace=True)
        method.Execute(fixed, moving)
        stages.append(
            {"stage": "bspline", "metric": method.GetMetricValue(), "iterations": method.GetOptimizerIteration()}
        )
        final = sitk.CompositeTransform([linear, bspline])

    warped_mask = sitk.Resample(head_mask(moving), fixed, final, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    dice = _dice(warped_mask, head_mask(fixed))
    quality = {
        "final_metric": stages[-1]["metric"],
        "stages": stages,
        "brain_mask_dice": dice,
        "seconds": time.perf_counter() - start,
        "deformable": params.deformable,
        "poor": dice < params.min_brain_dice,
    }
    if quality["poor"]:
        log.warning(
            "%s: template registration looks poor (brain-mask Dice %.2f < %.2f); check the location results",
            subject_path,
            dice,
            params.min_brain_dice,
        )
    return Registration(transform=final, quality=quality)


def resample_onto(labels: LabelMap, grid: LabelMap, transform: sitk.Transform) -> LabelMap:
    """``labels`` (template space) resampled with nearest neighbour onto ``grid``'s voxels through ``transform``
    (grid points to template points); voxels mapping outside the template get -1."""
    moving = to_sitk(LabelMap(labels.labels.astype(np.int32), labels.affine, labels.source))
    reference = to_sitk(LabelMap(np.zeros(grid.shape, np.uint8), grid.affine, grid.source))
    out = sitk.Resample(moving, reference, transform, sitk.sitkNearestNeighbor, -1, sitk.sitkInt32)
    return LabelMap(
        labels=sitk.GetArrayFromImage(out).transpose(2, 1, 0),
        affine=grid.affine,
        source=labels.source,
        provenance=dict(labels.provenance),
    )


def linear_ras_matrix(transform: sitk.Transform) -> np.ndarray:
    """A linear (similarity or affine) SimpleITK transform as a 4x4 matrix on RAS world points (mm): ITK maps
    LPS points, p -> A (p - c) + c + t."""
    matrix = np.asarray(transform.GetMatrix(), dtype=float).reshape(3, 3)
    centre = np.asarray(transform.GetCenter(), dtype=float)
    lps = np.eye(4)
    lps[:3, :3] = matrix
    lps[:3, 3] = np.asarray(transform.GetTranslation(), dtype=float) + centre - matrix @ centre
    return LPS_TO_RAS @ lps @ LPS_TO_RAS


def session_to_baseline(
    session_image: Path, baseline_image: Path, params: RegistrationParameters, max_voxels: int = DEFAULT_MAX_VOXELS
) -> tuple[np.ndarray, dict[str, Any]]:
    """The linear transform taking a follow-up session's world (RAS, mm) to the baseline's, estimated from the
    two sessions' images (the baseline's image registered onto the session's), and its quality."""
    from dataclasses import replace

    result = register(session_image, baseline_image, replace(params, deformable=False), max_voxels)
    return linear_ras_matrix(result.transform), result.quality
