"""Known deformations of a real label map, for validation tests: resampling onto another grid (nearest
neighbour, so labels stay labels), a smooth Gaussian displacement whose centre moves by a stated amount, and
a grid rotated about its centre. No tests here; the helpers work in world (scanner) millimetres.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation

#: A backward warp: world points (n x 3) of the output to the world points of the input they take their label from.
Warp = Callable[[np.ndarray], np.ndarray]

_CHUNK = 1 << 18  # points solved at a time by a warp


def resample(
    labels: np.ndarray,
    affine: np.ndarray,
    out_affine: np.ndarray,
    out_shape: Sequence[int],
    warp: Warp | None = None,
) -> np.ndarray:
    """Labels on a new grid (``out_affine``, ``out_shape``): each output voxel takes the input label at the world
    point ``warp(x)`` of its centre ``x`` (``x`` itself when ``warp`` is None); 0 outside the input."""
    out_shape = tuple(out_shape)
    out = np.zeros(out_shape, labels.dtype)
    to_input = np.linalg.inv(affine) @ out_affine  # output index to input index, without a warp
    slab = max(1, _CHUNK // int(np.prod(out_shape[1:])))
    for start in range(0, out_shape[0], slab):  # slabs of the first axis: the temporaries stay small
        stop = min(start + slab, out_shape[0])
        ijk = np.indices((stop - start, *out_shape[1:]), dtype=float).reshape(3, -1).T
        ijk[:, 0] += start
        if warp is None:
            src = ijk @ to_input[:3, :3].T + to_input[:3, 3]
        else:
            world = warp(ijk @ out_affine[:3, :3].T + out_affine[:3, 3])
            src = (world - affine[:3, 3]) @ np.linalg.inv(affine[:3, :3]).T
        values = ndimage.map_coordinates(labels, src.T, order=0, mode="constant", cval=0)
        out[start:stop] = values.reshape(stop - start, *out_shape[1:])
    return out


def lateral_bulge(
    centre: Sequence[float],
    amount: float,
    sigma: float,
    direction: Sequence[float] = (1.0, 0.0, 0.0),
    tolerance_mm: float = 1e-4,
) -> Warp:
    """The backward warp of the smooth displacement D(p) = amount * exp(-|p - centre|^2 / (2 sigma^2)) * direction
    (unit ``direction``, world mm): the tissue at ``centre`` moves by exactly ``amount`` mm, tissue far from it
    stays. For each output point x it solves p + D(p) = x (one-to-one while |amount| / sigma < 1.6).

    p = x - t d with a scalar t per point, and |p - c|^2 = |x - c|^2 - 2 t d.(x - c) + t^2: the equation is
    solved for t alone, t = amount * exp(-|p(t) - c|^2 / (2 sigma^2)), by a fixed-point step then Newton's
    method to ``tolerance_mm``; points too far from the centre to move by that much are left where they are."""
    d = np.asarray(direction, float) / np.linalg.norm(direction)
    c = np.asarray(centre, float)
    two_var = 2.0 * sigma**2
    # |p - c| >= |x - c| - |amount|, so beyond this reach D(p) < tolerance_mm
    reach = abs(amount) + sigma * math.sqrt(2.0 * max(math.log(abs(amount) / tolerance_mm), 0.0)) if amount else 0.0

    def solve(world: np.ndarray) -> np.ndarray:
        offset = world - c
        r2 = np.einsum("ij,ij->i", offset, offset)
        active = np.flatnonzero(r2 < reach**2)
        r2, along = r2[active], offset[active] @ d
        t = amount * np.exp(-r2 / two_var)
        for _ in range(50):
            moved = amount * np.exp(-(r2 - 2.0 * t * along + t * t) / two_var)
            step = (t - moved) / (1.0 - moved * (along - t) / sigma**2)
            t -= step
            if not len(step) or np.abs(step).max() < tolerance_mm:
                break
        out = world.copy()
        out[active] -= np.outer(t, d)
        return out

    def warp(world: np.ndarray) -> np.ndarray:
        world = np.asarray(world, float)
        out = np.empty_like(world)
        for start in range(0, len(world), _CHUNK):  # chunks: the temporaries stay small and are reused
            out[start : start + _CHUNK] = solve(world[start : start + _CHUNK])
        return out

    return warp


def rotation_matrix(degrees_xyz: Sequence[float]) -> np.ndarray:
    """The rotation (3 x 3) of ``degrees_xyz`` about the world x, y and z axes in turn (extrinsic)."""
    return Rotation.from_euler("xyz", degrees_xyz, degrees=True).as_matrix()


def rotated_affine(affine: np.ndarray, shape: Sequence[int], degrees_xyz: Sequence[float]) -> np.ndarray:
    """The affine of the same grid rotated by ``degrees_xyz`` (see :func:`rotation_matrix`) about its centre.
    ``resample(labels, rotated_affine(affine, ...), affine, shape)`` shows the head rotated by that rotation
    about the grid's centre, on the original grid."""
    rot = rotation_matrix(degrees_xyz)
    middle = (np.asarray(shape, float) - 1) / 2
    centre = affine[:3, :3] @ middle + affine[:3, 3]
    out = np.eye(4)
    out[:3, :3] = rot @ affine[:3, :3]
    out[:3, 3] = centre - out[:3, :3] @ middle
    return out
