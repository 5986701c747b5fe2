"""Carving along lines of sight: what lies between a camera and a point it sees is empty space.

A triangulated point (:mod:`engine.free_space.points`) seen by a camera proves that nothing opaque
lies between the two. Inside the visual hull that is what opens a hollow that every silhouette
covers (the inside of a cup, a bowl, a box): points on the inner wall are seen from above, and the
lines of sight to them cross the hollow.

The points are sparse (a few hundred per view), so single lines of sight leave a sponge. Each view
therefore splats the depths of the points it sees into a depth map, every pixel within its
``radius`` (a share of the mean spacing between that view's observations, see
:mod:`engine.free_space.start`) of an observation taking the *nearest* of their depths (so that near an edge in
the image, the nearer surface wins and what lies just behind it is not opened), and a grid point
is empty in that view when it lies at least ``margin`` in front of the depth at its pixel. A point
inside the hull that enough views call empty is carved.

A pixel ``r`` pixels from an observation does not see the observed point: the surface there may
lie nearer, the more so the more it slants away from the view. Each splatted depth is therefore
brought nearer by ``SPLAT_SLOPE * r`` pixel footprints (the surface's depth changes by up to that
across ``r`` pixels where it slants by up to ``atan(SPLAT_SLOPE)`` from facing the camera). Without
it, a view with few observations (spot: 65 points over 100 views, discs of 12 pixels) carved 907
lattice nodes inside the true surface at 64 cells, up to 0.13 deep, where a disc spread one depth
over a curved flank; with it, 5, none deeper than 0.025, while the bowl's hollow is still 81% open
(94% before, with 413 nodes inside its wall carved too). ``benchmarks/bench_sight_carve.py`` counts these.
"""

from __future__ import annotations

import torch

from ..cameras import Cameras
from .points import SparsePoints

# How steeply the surface may fall away across a splat disc: depth change per pixel footprint (3: up to 72 degrees).
# Lattice nodes carved inside the truth at DMTet's 64 cells, 100 views (benchmarks/bench_sight_carve.py; BENCHMARKS.md,
# Concavities, session 5), for slopes 0 / 2 / 3: spot 907 / 19 / 5, fandisk 1216 / 21 / 6, rocker-arm 238 / 13 / 9;
# of the bowl's empty hull nodes carved: 94% (413 inside its wall) / 85% (none) / 81% (none).
SPLAT_SLOPE = 3.0


def splatted_depths(sparse: SparsePoints, cameras: Cameras, radius: torch.Tensor) -> torch.Tensor:
    """``[N, H, W]`` for every view the camera-space depth of the nearest observation within the
    view's ``radius`` (``[N]`` whole pixels; a disc), brought nearer by ``SPLAT_SLOPE`` pixel
    footprints per pixel from the observation (module docstring); ``inf`` where there is none."""
    n, h, w = len(cameras), cameras.height, cameras.width
    device = sparse.points.device
    depth = torch.full((n * h * w,), float("inf"), device=device)
    if len(sparse.views) == 0:
        return depth.reshape(n, h, w)
    observed = sparse.depths(cameras)  # [O]
    column, row = sparse.pixels[:, 0].floor().long(), sparse.pixels[:, 1].floor().long()
    reach = radius.to(device)[sparse.views] ** 2  # [O]
    footprint = observed / cameras.fx.to(device)[sparse.views]  # [O] one pixel's width at the point's depth
    widest = int(radius.max())
    for dy in range(-widest, widest + 1):
        for dx in range(-widest, widest + 1):
            x, y = column + dx, row + dy
            inside = (x >= 0) & (x < w) & (y >= 0) & (y < h) & (dx * dx + dy * dy <= reach)
            flat = (sparse.views * h + y) * w + x
            nearer = observed - SPLAT_SLOPE * (dx * dx + dy * dy) ** 0.5 * footprint
            depth.scatter_reduce_(0, flat[inside], nearer[inside], reduce="amin")
    return depth.reshape(n, h, w)


def empty_votes(positions: torch.Tensor, sparse: SparsePoints, cameras: Cameras, *, radius: torch.Tensor, margin: float,
                chunk: int = 1 << 18) -> torch.Tensor:
    """``[P]`` int32: for each of ``positions [P, 3]`` (the cameras' frame), the number of views in
    which it lies at least ``margin`` in front of the splatted depth of the points they see
    (:func:`splatted_depths`)."""
    depths = splatted_depths(sparse, cameras, radius)  # [N, H, W]
    h, w = cameras.height, cameras.width
    votes = torch.zeros(len(positions), dtype=torch.int32, device=positions.device)
    for first in range(0, len(positions), chunk):
        part = positions[first:first + chunk]
        for view in range(len(cameras)):
            pixels, depth = cameras[view].project(part)  # [1, C, 2], [1, C]
            column, row = pixels[0, :, 0].floor().long(), pixels[0, :, 1].floor().long()
            inside = (depth[0] > 0) & (column >= 0) & (column < w) & (row >= 0) & (row < h)
            front = depths[view, row.clamp(0, h - 1), column.clamp(0, w - 1)]
            votes[first:first + chunk] += (inside & torch.isfinite(front) & (depth[0] < front - margin)).int()
    return votes
