"""Geometry helpers shared across the engine: regular grids over a box, rays through a box, planes.

Boxes are axis-aligned, given by their corners ``lo``/``hi`` (``[3]`` each, any frame and unit);
``resolution`` is the number of cells on the box's longest side, all cells cubes of side
``cell = max(hi - lo) / resolution``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from skimage.measure import ransac


def grid_shape(lo: torch.Tensor, hi: torch.Tensor, resolution: int) -> list[int]:
    """Cube counts ``[X, Y, Z]`` of the grid over ``[lo, hi]`` (at least one per axis; the grid may
    reach up to a cell past ``hi``)."""
    cell = float((hi - lo).max()) / resolution
    return [max(1, int(torch.ceil((hi[a] - lo[a]) / cell - 1e-6))) for a in range(3)]


def lattice_nodes(lo: torch.Tensor, hi: torch.Tensor, resolution: int) -> torch.Tensor:
    """``[X+1, Y+1, Z+1, 3]`` the cube corners of the :func:`grid_shape` grid, node ``(0, 0, 0)``
    at ``lo``; on the device and in the dtype of ``lo``."""
    cell = float((hi - lo).max()) / resolution
    shape = grid_shape(lo, hi, resolution)
    axes = [lo[a] + torch.arange(shape[a] + 1, device=lo.device, dtype=lo.dtype) * cell for a in range(3)]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), -1)


def cell_centres(lo: torch.Tensor, hi: torch.Tensor, resolution: int) -> tuple[torch.Tensor, list[int]]:
    """Cell centres of a grid over ``[lo, hi]`` with ``resolution`` cells on its longest side (at
    least two per axis, so marching cubes has a cell to cut).

    Returns ``points [X*Y*Z, 3]`` (x slowest, z fastest) and the grid shape ``[X, Y, Z]``.
    """
    cell = float((hi - lo).max()) / resolution
    shape = [max(2, int(torch.ceil((hi[a] - lo[a]) / cell - 1e-6))) for a in range(3)]
    axes = [lo[a] + (torch.arange(shape[a], device=lo.device, dtype=lo.dtype) + 0.5) * cell for a in range(3)]
    points = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)
    return points, shape


def ray_box(origins: torch.Tensor, directions: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Entry and exit distances ``(near [R], far [R])`` of rays ``origins/directions [R, 3]`` (or one
    origin ``[3]`` for all) through the box ``[lo, hi]``; ``far <= near`` for a ray that misses it.
    ``near >= 0`` (a ray starting inside enters at 0). Distances are in multiples of the directions'
    length."""
    inverse = 1.0 / torch.where(directions.abs() < 1e-9, torch.full_like(directions, 1e-9), directions)
    t0, t1 = (lo - origins) * inverse, (hi - origins) * inverse  # [R, 3]
    near = torch.minimum(t0, t1).max(-1).values.clamp_min(0.0)
    far = torch.maximum(t0, t1).min(-1).values
    return near, far


class Plane:
    """A plane ``normal . x = offset`` (unit normal), as a model for ``skimage.measure.ransac``."""

    def __init__(self, normal: np.ndarray, offset: float) -> None:
        self.normal, self.offset = normal, offset

    @classmethod
    def from_estimate(cls, points: np.ndarray) -> Plane:
        """Least-squares plane through ``points [P, 3]`` (P >= 3)."""
        centre = points.mean(0)
        normal = np.linalg.svd(points - centre)[2][-1]
        return cls(normal, float(normal @ centre))

    def __bool__(self) -> bool:
        return bool(np.isfinite(self.normal).all())

    def residuals(self, points: np.ndarray) -> np.ndarray:
        """``[P]`` distances of ``points [P, 3]`` to the plane."""
        return np.abs(points @ self.normal - self.offset)


def fit_plane(points: np.ndarray, tolerance: float, seed: int = 0, trials: int = 500
              ) -> tuple[Plane, np.ndarray] | None:
    """The RANSAC plane holding the most of ``points [P, 3]`` within ``tolerance`` (same unit), refit
    to its inliers, and the inlier mask ``[P]``; ``None`` when fewer than 3 points or no plane."""
    if len(points) < 3:
        return None
    plane, inliers = ransac(points, Plane, min_samples=3, residual_threshold=tolerance, max_trials=trials,
                            rng=np.random.default_rng(seed))
    if plane is None or inliers is None:
        return None
    return plane, inliers


def look_at(eye: torch.Tensor, target: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """``[N, 4, 4]`` camera-to-world matrices (the engine's convention: -Z forward, +Y up) of cameras at
    ``eye [N, 3]`` looking at ``target [3]``, with ``up [3]`` pointing up in the image."""
    forward = F.normalize(target - eye, dim=-1)  # [N, 3], the camera's -Z axis
    right = F.normalize(torch.cross(forward, up.expand_as(forward), dim=-1), dim=-1)
    cam_up = torch.cross(right, forward, dim=-1)
    c2w = torch.eye(4).repeat(eye.shape[0], 1, 1)
    c2w[:, :3, 0], c2w[:, :3, 1], c2w[:, :3, 2], c2w[:, :3, 3] = right, cam_up, -forward, eye
    return c2w
