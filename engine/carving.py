"""Silhouette carving: how strongly the masks agree that a 3D point lies inside the object, and the
visual hull that follows (its soft occupancy, its signed distance, its surface)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
import trimesh
from scipy.ndimage import distance_transform_edt

from .data.dataset import DatasetSplit
from .geometry.grid_surface import extract_surface
from .utils.math import cell_centres, lattice_nodes

# A point has to be inside the image of at least this share of the views to count as occupied:
# points that almost no camera sees are not evidence of an object.
MIN_SEEN_FRACTION = 0.5
# Once a point's occupancy falls below this it cannot come back above 0.5: stop updating it.
DEAD = 0.05


def mask_occupancy(
    points: torch.Tensor,
    split: DatasetSplit,
    on_view: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Soft visual-hull occupancy of world points.

    For each view that sees a point (in front of the camera and inside the image), the mask is
    sampled bilinearly at the point's projection; the occupancy is the minimum over those views,
    so a value above 0.5 means every view agrees the point is on the object. Points seen by fewer
    than ``MIN_SEEN_FRACTION`` of the views get 0.

    Args:
        points: ``[P, 3]`` world-space points, on the device of ``split``.
        split: views with masks.
        on_view: called as ``on_view(i, n_views)`` after each view (may raise to cancel).
    Returns:
        ``[P]`` occupancy in [0, 1].
    """
    assert split.masks is not None, "carving needs masks"
    cams = split.cameras
    n_views = len(split)
    occupancy = torch.ones(points.shape[0], device=points.device)  # [P]
    seen = torch.zeros(points.shape[0], device=points.device, dtype=torch.int32)  # [P]
    alive = torch.arange(points.shape[0], device=points.device)  # indices still worth updating
    size = torch.tensor([cams.width, cams.height], device=points.device, dtype=points.dtype)
    for i in range(n_views):
        pixels, depth = cams[i].project(points[alive])  # [1, A, 2], [1, A]
        pixels, depth = pixels[0], depth[0]
        inside = (depth > 0) & (pixels >= 0).all(-1) & (pixels <= size).all(-1)  # [A]
        grid = (pixels / size * 2.0 - 1.0)[None, None]  # [1, 1, A, 2] in grid_sample's [-1, 1]
        value = F.grid_sample(split.masks[i][None, None], grid, mode="bilinear", align_corners=False)[0, 0, 0]
        ids = alive[inside]
        occupancy[ids] = torch.minimum(occupancy[ids], value[inside])
        seen[ids] += 1
        alive = alive[occupancy[alive] > DEAD]
        if on_view is not None:
            on_view(i + 1, n_views)
    min_seen = max(1, int(MIN_SEEN_FRACTION * n_views + 0.5))
    return torch.where(seen >= min_seen, occupancy, torch.zeros_like(occupancy))


def node_occupancy(split: DatasetSplit, lo: torch.Tensor, hi: torch.Tensor, resolution: int,
                   on_view: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """``[X+1, Y+1, Z+1]`` the soft visual-hull occupancy (:func:`mask_occupancy`) at the lattice
    nodes of the grid over ``[lo, hi]``."""
    nodes = lattice_nodes(lo, hi, resolution)  # [X+1, Y+1, Z+1, 3]
    return mask_occupancy(nodes.reshape(-1, 3), split, on_view).reshape(nodes.shape[:3])


def occupancy_sdf(occupancy: torch.Tensor, cell: float) -> torch.Tensor:
    """``[X, Y, Z]`` signed distance (negative inside) of the volume where the soft ``occupancy``
    (same shape, values at grid points ``cell`` apart) is above 0.5: Euclidean distance transforms
    away from the surface, the soft occupancy's sub-cell crossing next to it."""
    values = occupancy.cpu().numpy()
    inside = values > 0.5
    distance = np.where(inside, -distance_transform_edt(inside), distance_transform_edt(~inside)) * cell
    near = np.abs(distance) <= 1.01 * cell
    sdf = np.where(near, (0.5 - values) * 2.0 * cell, distance - np.sign(distance) * 0.5 * cell)
    return torch.from_numpy(sdf.astype(np.float32)).to(occupancy.device)


def hull_sdf(split: DatasetSplit, lo: torch.Tensor, hi: torch.Tensor, resolution: int,
             on_view: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """``[X+1, Y+1, Z+1]`` signed distance (negative inside) to the visual hull at the lattice nodes of
    the grid over ``[lo, hi]`` (:func:`node_occupancy`, :func:`occupancy_sdf`)."""
    cell = float((hi - lo).max()) / resolution
    return occupancy_sdf(node_occupancy(split, lo, hi, resolution, on_view), cell)


def hull_occupancy(split: DatasetSplit, lo: torch.Tensor, hi: torch.Tensor, resolution: int,
                   on_view: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """``(occupancy [X, Y, Z], origin [3], cell)``: the visual hull's soft occupancy
    (:func:`mask_occupancy`) at the cell centres of a ``resolution`` grid over ``[lo, hi]``, the
    centre of cell ``(0, 0, 0)`` and the cell size."""
    points, shape = cell_centres(lo, hi, resolution)
    cell = float((hi - lo).max()) / resolution
    occupancy = mask_occupancy(points, split, on_view).reshape(shape).cpu().numpy()
    return occupancy, points[0].cpu().numpy(), cell


def hull_mesh(split: DatasetSplit, lo: torch.Tensor, hi: torch.Tensor, resolution: int,
              on_view: Callable[[int, int], None] | None = None) -> tuple[trimesh.Trimesh, list[int], float] | None:
    """The visual hull's surface in the box ``[lo, hi]`` (the frame of ``split``'s cameras), carved
    at the cell centres of a ``resolution`` grid: marching cubes of the soft occupancy at 0.5
    (closed at the box's sides), outward, small pieces dropped.

    Returns ``(mesh, grid shape [X, Y, Z], cell size)``, or ``None`` when the hull is empty (the
    masks share no point of the box).
    """
    occupancy, origin, cell = hull_occupancy(split, lo, hi, resolution, on_view)
    if occupancy.max() <= 0.5:
        return None
    return extract_surface(occupancy, origin, cell), list(occupancy.shape), cell
