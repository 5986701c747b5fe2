"""Photo-consistent carving: remove the voxels of the start that the views see in different colours.

Space carving (Kutulakos and Seitz 2000) on the occupancy grid of the start. A voxel on the
surface of the current volume is seen by the views in which nothing of the current volume lies in
front of it (a depth test against the surface of the current volume, rendered into every view);
if the colours those views show at its projection disagree, it cannot be on the object's surface
and is removed. Removing it uncovers the voxels behind it, so the test repeats on the new surface
until a round removes (almost) nothing. A lid that a hull puts over a hollow is seen, from every
view above it, in the colour of a different part of the hollow's wall: it is carved layer by
layer. Where the object is uniform in colour nothing disagrees and nothing is carved.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import binary_erosion, gaussian_filter, uniform_filter

from ..data.dataset import DatasetSplit
from ..geometry.grid_surface import extract_surface
from ..render import rasterize

# The depth test's tolerance, in cells: a voxel centre lies up to about one cell behind the surface of its volume.
DEPTH_TOLERANCE_CELLS = 1.5
# Images are blurred by a Gaussian of this many pixels before they are compared (a voxel is about a pixel wide).
BLUR_PIXELS = 1.0
# A view compares a voxel's colour only when it faces the voxel's surface at least this much (cosine): grazing
# views see a smear of the surface around it.
MIN_FACING = 0.3
# A voxel is carved only when at least this share of its surface neighbours disagree too (see in_agreement).
NEIGHBOUR_SHARE = 0.6
# Views rasterized per chunk (bounds the memory of the depth maps' ray casts).
VIEWS_PER_CHUNK = 16


def photo_carve(occupancy: np.ndarray, origin: np.ndarray, cell: float, split: DatasetSplit, *, threshold: float,
                min_views: int, rounds: int, on_step: Callable[[int, int], None] | None = None) -> np.ndarray:
    """``occupancy [X, Y, Z]`` (cell values, above 0.5 inside; cell ``[0, 0, 0]``'s centre at
    ``origin``) with its photo-inconsistent surface voxels removed (set to 0).

    Args:
        split: the views (cameras in the grid's frame; with masks, only pixels inside them count).
        threshold: a surface voxel is removed when the standard deviation of its colours across the
            views that see it (RGB in [0, 1], averaged over the channels) is above this.
        min_views: voxels seen by fewer views are kept (nothing to compare).
        rounds: at most this many rounds of (render the surface, test its voxels, carve).
    """
    occupancy = occupancy.copy()
    device = split.images.device
    images = blurred(split.images)
    for round_index in range(rounds):
        if on_step is not None:
            on_step(round_index, rounds)
        inside = occupancy > 0.5
        surface = inside & ~binary_erosion(inside, border_value=0)
        index = np.argwhere(surface)  # [S, 3]
        if len(index) == 0:
            break
        centres = torch.tensor(origin + index * cell, dtype=torch.float32, device=device)
        spread = colour_spread(centres, occupancy, origin=origin, cell=cell, split=split, images=images,
                               min_views=min_views)
        carve = in_agreement(index, (spread > threshold).cpu().numpy(), occupancy.shape)
        if not carve.any():
            break
        chosen = index[carve]
        occupancy[chosen[:, 0], chosen[:, 1], chosen[:, 2]] = 0.0
        if carve.mean() < 1e-3:
            break
    if on_step is not None:
        on_step(rounds, rounds)
    return occupancy


def in_agreement(index: np.ndarray, inconsistent: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``[S]`` which of the surface voxels at ``index [S, 3]`` to carve: the ``inconsistent`` ones
    (``[S]`` bool) whose surface neighbours (the 3x3x3 block) are mostly (``NEIGHBOUR_SHARE``)
    inconsistent too. A lid over a hollow is a wide patch of disagreement; a voxel of the true
    surface that disagrees by chance (texture finer than a voxel) is alone, and carving it would
    uncover the inside of the wall, which disagrees everywhere and would be carved next."""
    surface = np.zeros(shape, np.float32)
    bad = np.zeros(shape, np.float32)
    surface[tuple(index.T)] = 1.0
    bad[tuple(index[inconsistent].T)] = 1.0
    share = uniform_filter(bad, 3) / np.maximum(uniform_filter(surface, 3), 1e-6)
    return inconsistent & (share[tuple(index.T)] >= NEIGHBOUR_SHARE)


def blurred(images: torch.Tensor) -> torch.Tensor:
    """``[N, H, W, 3]`` images blurred by a separable Gaussian of ``BLUR_PIXELS``."""
    radius = int(np.ceil(3 * BLUR_PIXELS))
    x = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-0.5 * (x / BLUR_PIXELS) ** 2)
    kernel = kernel / kernel.sum()
    channels = images.permute(0, 3, 1, 2).reshape(-1, 1, *images.shape[1:3])  # [3N, 1, H, W]
    channels = F.conv2d(F.pad(channels, (radius, radius, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1))
    channels = F.conv2d(F.pad(channels, (0, 0, radius, radius), mode="replicate"), kernel.view(1, 1, -1, 1))
    return channels.reshape(images.shape[0], 3, *images.shape[1:3]).permute(0, 2, 3, 1)


def colour_spread(centres: torch.Tensor, occupancy: np.ndarray, *, origin: np.ndarray, cell: float,
                  split: DatasetSplit, images: torch.Tensor, min_views: int) -> torch.Tensor:
    """``[S]`` how much the colours of the voxels at ``centres [S, 3]`` disagree across the views
    that see them past the surface of ``occupancy`` and not at a grazing angle: the median over
    those views of the colour's distance (mean over RGB) to the per-channel median colour; 0 for
    voxels seen by fewer than ``min_views``."""
    mesh = extract_surface(occupancy, origin, cell)
    vertices = torch.tensor(mesh.vertices, dtype=torch.float32, device=centres.device)
    faces = torch.tensor(mesh.faces, dtype=torch.long, device=centres.device)
    normals = outward_normals(occupancy, origin, cell, centres)  # [S, 3]
    cameras = split.cameras
    size = torch.tensor([cameras.width, cameras.height], device=centres.device, dtype=torch.float32)
    colours = torch.full((len(centres), len(cameras), 3), float("nan"), device=centres.device)
    for first in range(0, len(cameras), VIEWS_PER_CHUNK):
        chunk = cameras[first:first + VIEWS_PER_CHUNK]
        depth_maps = rasterize(vertices, faces, chunk).depth  # [n, H, W], 0 where nothing is hit
        pixels, depth = chunk.project(centres)  # [n, S, 2], [n, S]
        towards = F.normalize(chunk.centers.to(centres)[:, None] - centres[None], dim=-1)  # [n, S, 3]
        for k in range(len(chunk)):
            view = first + k
            inside = (depth[k] > 0) & (pixels[k] >= 0).all(-1) & (pixels[k] < size).all(-1)
            column = pixels[k, :, 0].long().clamp(0, cameras.width - 1)
            row = pixels[k, :, 1].long().clamp(0, cameras.height - 1)
            front = depth_maps[k, row, column]
            visible = inside & (front > 0) & (depth[k] <= front + DEPTH_TOLERANCE_CELLS * cell)
            visible &= (towards[k] * normals).sum(-1) > MIN_FACING
            if split.masks is not None:
                visible &= split.masks[view, row, column] > 0.5
            grid = (pixels[k] / size * 2.0 - 1.0)[None, None]  # [1, 1, S, 2]
            colour = F.grid_sample(images[view].permute(2, 0, 1)[None], grid, mode="bilinear",
                                   align_corners=False)[0, :, 0].T  # [S, 3]
            colours[visible, view] = colour[visible]
    median = colours.nanmedian(dim=1).values  # [S, 3]
    spread = (colours - median[:, None]).abs().mean(-1).nanmedian(dim=1).values  # [S]
    seen = (~colours[..., 0].isnan()).sum(1)
    return torch.where(seen >= min_views, spread, torch.zeros_like(spread))


def outward_normals(occupancy: np.ndarray, origin: np.ndarray, cell: float, centres: torch.Tensor) -> torch.Tensor:
    """``[S, 3]`` unit outward normals at ``centres [S, 3]``: minus the gradient of the occupancy
    smoothed by a Gaussian of one cell."""
    smooth = gaussian_filter(occupancy.astype(np.float32), 1.0)
    gradient = np.stack(np.gradient(smooth), -1)  # [X, Y, Z, 3]
    index = np.clip(np.round((centres.cpu().numpy() - origin) / cell).astype(int), 0, np.array(occupancy.shape) - 1)
    normals = -torch.tensor(gradient[index[:, 0], index[:, 1], index[:, 2]], device=centres.device)
    return F.normalize(normals, dim=-1)
