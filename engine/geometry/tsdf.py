"""Truncated signed distance fusion of depth maps (Curless & Levoy 1996; KinectFusion's TSDF), vectorized.

Only voxels near a measured surface point are fused, and the work follows the pixels: every pixel
with a depth marches its own ray over ``[-truncation, +truncation]`` around the surface point it
sees, in half-cell steps, and each voxel those samples fall in gets that pixel's signed distance:

* with a normal at the pixel, the distance of the voxel's centre to the surface's tangent plane,
  ``n . (v - p)`` (exact for a plane whatever the angle, and whatever pixel's ray reached the voxel);
* without one, the projective distance along the optical axis, ``depth - z`` (exact only at the
  surface itself).

Positive is in front of the surface (outside). Distances are truncated to ``[-1, 1]`` times the
truncation distance. Each sample is weighted by the incidence of its ray on the surface,
``|cos| ** incidence_power`` of the angle between the ray and the normal (grazing views measure depth
worst), or 1 without normals, and, behind the surface, by a weight that may fall linearly to
``behind_weight`` at the truncation distance: a wide band (for noisy depth) would otherwise let
the views of one side of a thin part mark the free space beyond its other side as inside, and
thicken it. The fused value is the weighted mean. A pixel-driven march costs
pixels x samples (about 10 million for 100 views at 256²) rather than voxels x views.

Voxels no ray reached (deep inside the object, far outside it) are outside where some view sees
past them (they lie more than the truncation distance in front of a trusted depth, or project
outside a mask), and otherwise take the side of the nearest measured voxel: inside behind the
band of an object's surface, outside in front of it. (A rule by connectivity, "unmeasured and
connected to the border is outside", would hollow out every object whose inside some view sees
through a hole, as the views from below see the bunny scan's; those views' depths are not
trusted.) The carving keeps the stray samples of noisy depth, far from the surface, from claiming
the unmeasured space around them. All tensors follow the device of the inputs; the nearest-voxel
search is scipy's distance transform. Outside regions enclosed by the object (voids no outside
camera sees) are filled.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from ..cameras import Cameras

# Voxels whose summed weight is below this are unmeasured.
MIN_WEIGHT = 1e-3
# Ray samples fused per chunk of views (bounds the temporary tensors).
CHUNK = 1 << 22
# Pixels whose weight factor is above this may carve free space (see ``pixel_weights``).
TRUSTED = 0.5


@dataclass
class FusedVolume:
    """A fused TSDF on the cell centres of a regular grid.

    Attributes:
        values: ``[X, Y, Z]`` float32 truncated signed distance in units of the truncation distance,
            in [-1, 1]: negative inside, positive outside; unmeasured voxels are -1 or 1, the side of
            the nearest measured one (see the module docstring).
        weights: ``[X, Y, Z]`` float32 summed weights (0 where unmeasured).
        origin: ``[3]`` position of cell ``(0, 0, 0)``'s centre; cell: the cells' side.
        truncation: the truncation distance (units of the cameras' frame).
    """

    values: np.ndarray
    weights: np.ndarray
    origin: np.ndarray
    cell: float
    truncation: float


def fuse_depth_maps(
    cameras: Cameras,
    depths: torch.Tensor,
    normals: torch.Tensor | None,
    *,
    lo: torch.Tensor,
    hi: torch.Tensor,
    resolution: int,
    truncation: float,
    incidence_power: float = 1.0,
    behind_weight: float = 1.0,
    pixel_weights: torch.Tensor | None = None,
    background: torch.Tensor | None = None,
    on_view: Callable[[int, int], None] | None = None,
) -> FusedVolume:
    """Fuse ``depths [N, H, W]`` (along the optical axis, 0 = none) seen by ``cameras`` into a TSDF
    over the box ``[lo, hi]`` with ``resolution`` cells on its longest side.

    Args:
        normals: ``[N, H, W, 3]`` unit world normals facing the cameras (0 = none), or ``None``.
        truncation: the truncation distance, in the frame's units.
        incidence_power: exponent of the incidence weight.
        behind_weight: the weight of a sample at the truncation distance behind the surface, relative
            to one on it (linear in between; in front of the surface it is 1).
        pixel_weights: ``[N, H, W]`` a factor on every weight of each pixel's samples, or ``None``;
            only pixels whose factor is above ``TRUSTED`` carve free space (below).
        background: ``[N, H, W]`` bool, pixels known to see nothing (outside the masks), or ``None``.
        on_view: ``(views_done, n_views)`` after each chunk of views; it may raise to cancel.
    """
    device = depths.device
    cell = float((hi - lo).max()) / resolution
    shape = [max(2, math.ceil(float(hi[a] - lo[a]) / cell - 1e-6)) for a in range(3)]
    value_sum = torch.zeros(math.prod(shape), device=device)
    weight_sum = torch.zeros(math.prod(shape), device=device)
    # Distances along each ray from its surface point (positive: beyond it, behind the surface).
    offsets = torch.arange(-truncation, truncation + 1e-9, cell / 2, device=device, dtype=lo.dtype)  # [K]
    behind = 1.0 - (1.0 - behind_weight) * (offsets / truncation).clamp(0.0, 1.0)  # [K] weight along the ray
    pixels_per_view = depths.shape[1] * depths.shape[2]
    views_per_chunk = max(1, CHUNK // (len(offsets) * pixels_per_view // 4))
    for start in range(0, len(cameras), views_per_chunk):
        part = slice(start, start + views_per_chunk)
        chunk = cameras[part]
        valid = depths[part] > 0  # [n, H, W]
        surface = chunk.unproject(depths[part])[valid]  # [Q, 3]
        view = valid.nonzero()[:, 0]  # [Q] view of each pixel within the chunk
        ray = F.normalize(surface - chunk.centers[view], dim=-1)  # [Q, 3]
        samples = surface[:, None] + ray[:, None] * offsets[:, None]  # [Q, K, 3]
        cells = ((samples - lo) / cell).floor().long()  # [Q, K, 3]
        inside = ((cells >= 0) & (cells < torch.tensor(shape, device=device))).all(-1)  # [Q, K]
        pixel, step = inside.nonzero(as_tuple=True)  # [S] the pixel and step of each sample
        cells = cells[inside]  # [S, 3]
        centres = lo + (cells.to(lo.dtype) + 0.5) * cell  # [S, 3]
        trust = torch.ones(len(surface), device=device) if pixel_weights is None else pixel_weights[part][valid]
        if normals is None:
            distance = ((surface[pixel] - centres) * chunk.forward[view[pixel]]).sum(-1)
            weight = trust[pixel]
        else:
            normal = normals[part][valid]  # [Q, 3]
            has_normal = normal.abs().sum(-1) > 0  # [Q]
            incidence = (normal * ray).sum(-1).abs().clamp_min(1e-3) ** incidence_power  # [Q]
            plane = ((centres - surface[pixel]) * normal[pixel]).sum(-1)
            ahead = ((surface[pixel] - centres) * chunk.forward[view[pixel]]).sum(-1)
            distance = torch.where(has_normal[pixel], plane, ahead)
            weight = (trust * torch.where(has_normal, incidence, torch.ones_like(incidence)))[pixel]
        weight = weight * behind[step]
        flat = (cells[:, 0] * shape[1] + cells[:, 1]) * shape[2] + cells[:, 2]
        value_sum.index_add_(0, flat, weight * (distance / truncation).clamp(-1.0, 1.0))
        weight_sum.index_add_(0, flat, weight)
        if on_view is not None:
            on_view(min(start + views_per_chunk, len(cameras)), len(cameras))
    measured = weight_sum > MIN_WEIGHT
    fused = torch.where(measured, value_sum / weight_sum.clamp_min(MIN_WEIGHT), torch.ones_like(value_sum))
    carving = depths if pixel_weights is None else torch.where(pixel_weights > TRUSTED, depths, 0.0)
    if background is not None:
        carving = torch.where(background & (carving <= 0), torch.full_like(carving, math.inf), carving)

    def free(points: np.ndarray) -> np.ndarray:
        world = torch.from_numpy(points).to(device=device, dtype=lo.dtype)
        return seen_free(cameras, carving, world, truncation + math.sqrt(3) * cell).cpu().numpy()

    values = fill_voids(fill_unmeasured(fused.reshape(shape).cpu().numpy(), measured.reshape(shape).cpu().numpy(),
                                        free=free, origin=lo.cpu().numpy(), cell=cell))
    weights = torch.where(measured, weight_sum, torch.zeros_like(weight_sum)).reshape(shape).cpu().numpy()
    return FusedVolume(values, weights, (lo + 0.5 * cell).cpu().numpy(), cell, truncation)


def seen_free(cameras: Cameras, depths: torch.Tensor, points: torch.Tensor, margin: float,
              chunk: int = 1 << 18) -> torch.Tensor:
    """``[P]`` whether some view sees each of ``points [P, 3]`` as empty: the point projects onto a
    pixel with a depth (``depths [N, H, W]``, 0 = none, ``inf`` = nothing there) more than
    ``margin`` beyond the point's own depth along that view's axis."""
    free = torch.zeros(len(points), dtype=torch.bool, device=points.device)
    for start in range(0, len(points), chunk):
        alive = torch.arange(start, min(start + chunk, len(points)), device=points.device)
        for view in range(len(cameras)):
            if len(alive) == 0:
                break
            pixels, depth = cameras[view].project(points[alive])  # [1, A, 2], [1, A]
            column, row = pixels[0, :, 0].floor().long(), pixels[0, :, 1].floor().long()
            inside = (depth[0] > 0) & (column >= 0) & (column < cameras.width) & (row >= 0) & (row < cameras.height)
            seen = torch.zeros_like(depth[0])
            seen[inside] = depths[view, row[inside], column[inside]]
            empty = inside & (seen > depth[0] + margin)
            free[alive[empty]] = True
            alive = alive[~empty]
    return free


def fill_unmeasured(values: np.ndarray, measured: np.ndarray, block: int = 2, *,
                    free: Callable[[np.ndarray], np.ndarray] | None = None, origin: np.ndarray | None = None,
                    cell: float = 1.0) -> np.ndarray:
    """``values [X, Y, Z]`` with every unmeasured voxel set to the sign (-1 inside, 1 outside) of
    the nearest measured voxel, found on a grid ``block`` times coarser (a coarse cell's sign is
    that of the mean of its measured voxels; far from the surface, only the side matters).

    With ``free`` (world points ``[C, 3]`` -> ``[C]`` bool, whether some view sees them as empty
    space), the coarse cells without a measured voxel whose centre is free are outside before the
    nearest sign spreads: a few stray samples of noisy depth, far from the surface, then no longer
    claim the unmeasured space around them as inside. ``origin`` is the corner of voxel
    ``(0, 0, 0)`` and ``cell`` the voxels' side."""
    if measured.all():
        return values
    if not measured.any() and free is None:
        return np.ones_like(values)
    pad = [(0, (-n) % block) for n in values.shape]
    coarse_shape = [(n + p[1]) // block for n, p in zip(values.shape, pad, strict=True)]

    def blocks(array: np.ndarray) -> np.ndarray:
        return np.pad(array, pad).reshape(coarse_shape[0], block, coarse_shape[1], block, coarse_shape[2], block
                                          ).sum(axis=(1, 3, 5))

    count = blocks(measured.astype(np.float32))
    total = blocks(np.where(measured, values, 0.0).astype(np.float32))
    known = count > 0
    if free is not None:
        unknown = np.argwhere(~known)  # [C, 3] coarse cells
        carved = free(np.asarray(origin) + (unknown + 0.5) * block * cell)
        total[tuple(unknown[carved].T)] = 1.0
        known[tuple(unknown[carved].T)] = True
        if not known.any():
            return np.ones_like(values)
    nearest = ndimage.distance_transform_edt(~known, return_distances=False, return_indices=True)
    side = np.where(total[tuple(nearest)] > 0, 1.0, -1.0).astype(values.dtype)  # [X', Y', Z']
    fine = np.repeat(np.repeat(np.repeat(side, block, 0), block, 1), block, 2)[
        : values.shape[0], : values.shape[1], : values.shape[2]]
    return np.where(measured, values, fine)


def fill_voids(values: np.ndarray) -> np.ndarray:
    """``values [X, Y, Z]`` with every outside region (positive) that does not reach the grid's
    border set to -1: a void enclosed by the object, which no camera outside could have seen (the
    views that look into a scan through its holes leave such bubbles)."""
    labels, count = ndimage.label(values > 0)
    if count <= 1:
        return values
    border = np.unique(np.concatenate([labels[[0, -1]].ravel(), labels[:, [0, -1]].ravel(),
                                       labels[:, :, [0, -1]].ravel()]))
    enclosed = (labels > 0) & ~np.isin(labels, border)
    return np.where(enclosed, -1.0, values).astype(values.dtype)
