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
from ..render import RayCaster

# The depth test's tolerance, in cells: a voxel centre lies up to about one cell behind the surface of its volume.
DEPTH_TOLERANCE_CELLS = 1.5
# Images are blurred by a Gaussian of this many pixels before they are compared (a voxel is about a pixel wide).
BLUR_PIXELS = 1.0
# A view compares a voxel's colour only when it faces the voxel's surface at least this much (cosine): grazing
# views see a smear of the surface around it.
MIN_FACING = 0.3
# A voxel is carved only when at least this share of its surface neighbours disagree too (see in_agreement).
NEIGHBOUR_SHARE = 0.6


def photo_carve(occupancy: np.ndarray, origin: np.ndarray, cell: float, split: DatasetSplit, *, threshold: float,
                min_views: int, rounds: int, on_step: Callable[[int, int], None] | None = None) -> np.ndarray:
    """``occupancy [X, Y, Z]`` (cell values, above 0.5 inside; cell ``[0, 0, 0]``'s centre at
    ``origin``) with its photo-inconsistent surface voxels removed (set to 0).

    Args:
        split: the views (cameras in the grid's frame; with masks, only pixels inside them count).
        threshold: a surface voxel is removed when its colours disagree by more than this across the
            views that see it (:func:`colour_spread`) and most of its surface neighbours' do too
            (:func:`in_agreement`).
        min_views: voxels seen by fewer views are kept (nothing to compare).
        rounds: at most this many rounds of (render the surface, test its voxels, carve); the
            rounds stop early once one carves less than 0.1% of the surface voxels.
    """
    occupancy = occupancy.copy()
    device = split.images.device
    views = Views(split)
    for round_index in range(rounds):
        if on_step is not None:
            on_step(round_index, rounds)
        inside = occupancy > 0.5
        surface = inside & ~binary_erosion(inside, border_value=0)
        index = np.argwhere(surface)  # [S, 3]
        if len(index) == 0:
            break
        centres = torch.tensor(origin + index * cell, dtype=torch.float32, device=device)
        spread = colour_spread(centres, occupancy, origin=origin, cell=cell, views=views, min_views=min_views)
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


class Views:
    """What every round of :func:`photo_carve` needs of the views: the blurred images ``[N, 3, H, W]``,
    the masks (or ``None``), the cameras and their pixel rays."""

    def __init__(self, split: DatasetSplit) -> None:
        self.cameras = split.cameras
        self.images = blurred(split.images).permute(0, 3, 1, 2)  # [N, 3, H, W]
        self.masks = split.masks
        directions = split.cameras.pixel_directions().float()  # [N, H, W, 3]
        self.directions = directions.reshape(-1, 3)
        self.origins = split.cameras.centers.float()[:, None, None].expand_as(directions).reshape(-1, 3)
        # Distance along a pixel's ray -> depth along the viewing axis.
        self.to_depth = (directions * split.cameras.forward.float()[:, None, None]).sum(-1)  # [N, H, W]

    def depth_maps(self, vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        """``[N, H, W]`` camera-space depth of the mesh at every pixel, ``inf`` where it is not seen."""
        _, t = RayCaster(vertices, faces).cast(self.origins, self.directions)
        return t.reshape(self.to_depth.shape) * self.to_depth


def colour_spread(centres: torch.Tensor, occupancy: np.ndarray, *, origin: np.ndarray, cell: float, views: Views,
                  min_views: int) -> torch.Tensor:
    """``[S]`` how much the colours of the voxels at ``centres [S, 3]`` disagree across the views
    that see them past the surface of ``occupancy`` and not at a grazing angle: the median over
    those views of the colour's distance (mean over RGB) to the per-channel median colour; 0 for
    voxels seen by fewer than ``min_views``."""
    mesh = extract_surface(occupancy, origin, cell)
    depth_maps = views.depth_maps(torch.tensor(mesh.vertices, dtype=torch.float32, device=centres.device),
                                  torch.tensor(mesh.faces, dtype=torch.long, device=centres.device))  # [N, H, W]
    normals = outward_normals(occupancy, origin, cell, centres)  # [S, 3]
    cameras = views.cameras
    n, h, w = depth_maps.shape
    pixels, depth = cameras.project(centres)  # [N, S, 2], [N, S]
    column, row = pixels[..., 0].floor().long().clamp(0, w - 1), pixels[..., 1].floor().long().clamp(0, h - 1)
    view = torch.arange(n, device=centres.device)[:, None].expand_as(column)
    size = torch.tensor([w, h], device=centres.device, dtype=pixels.dtype)
    visible = (depth > 0) & (pixels >= 0).all(-1) & (pixels < size).all(-1)
    visible &= depth <= depth_maps[view, row, column] + DEPTH_TOLERANCE_CELLS * cell
    towards = F.normalize(cameras.centers.float()[:, None] - centres[None], dim=-1)  # [N, S, 3]
    visible &= (towards * normals[None]).sum(-1) > MIN_FACING
    if views.masks is not None:
        visible &= views.masks[view, row, column] > 0.5
    grid = (pixels / size * 2.0 - 1.0)[:, None]  # [N, 1, S, 2]
    colours = F.grid_sample(views.images, grid.to(views.images.dtype), mode="bilinear",
                            align_corners=False)[:, :, 0].permute(2, 0, 1)  # [S, N, 3]
    colours = torch.where(visible.T[..., None], colours, torch.full_like(colours, float("nan")))
    median = colours.nanmedian(dim=1).values  # [S, 3]
    spread = (colours - median[:, None]).abs().mean(-1).nanmedian(dim=1).values  # [S]
    return torch.where(visible.sum(0) >= min_views, spread, torch.zeros_like(spread))


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


def outward_normals(occupancy: np.ndarray, origin: np.ndarray, cell: float, centres: torch.Tensor) -> torch.Tensor:
    """``[S, 3]`` unit outward normals at ``centres [S, 3]``: minus the gradient of the occupancy
    smoothed by a Gaussian of one cell."""
    smooth = gaussian_filter(occupancy.astype(np.float32), 1.0)
    gradient = np.stack(np.gradient(smooth), -1)  # [X, Y, Z, 3]
    index = np.clip(np.round((centres.cpu().numpy() - origin) / cell).astype(int), 0, np.array(occupancy.shape) - 1)
    normals = -torch.tensor(gradient[index[:, 0], index[:, 1], index[:, 2]], device=centres.device)
    return F.normalize(normals, dim=-1)
