"""Region of interest: where the object is, found from the cameras and masks alone.

Methods work in a *unit working volume*: the region of interest, an axis-aligned box in the
dataset's world frame, is centred at the origin and scaled uniformly so that its longest side
spans [-1, 1]. :class:`Normalization` maps points and cameras between the two frames (a uniform
scale and a translation, no rotation, so "up" stays up), and results are mapped back before
export so that they overlay the input cameras exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .cameras import Cameras
from .carving import mask_occupancy
from .data.dataset import DatasetSplit
from .errors import InputError

COARSE_RESOLUTION = 48


@dataclass(frozen=True)
class Normalization:
    """``unit = (world - center) / radius``; ``box_min``/``box_max`` bound the object in unit space."""

    center: tuple[float, float, float]
    radius: float
    box_min: tuple[float, float, float]
    box_max: tuple[float, float, float]

    @staticmethod
    def from_box(lo: torch.Tensor, hi: torch.Tensor) -> Normalization:
        """The normalization that maps the world box ``[lo, hi]`` (``[3]`` each) into [-1, 1]^3."""
        center = (lo + hi) / 2
        radius = float((hi - lo).max()) / 2
        return Normalization(
            tuple(center.tolist()), radius,
            tuple(((lo - center) / radius).tolist()), tuple(((hi - center) / radius).tolist()),
        )

    def to_unit(self, points: torch.Tensor) -> torch.Tensor:
        """World points ``[..., 3]`` -> unit-volume points ``[..., 3]``."""
        return (points - points.new_tensor(self.center)) / self.radius

    def to_world(self, points: torch.Tensor) -> torch.Tensor:
        """Unit-volume points ``[..., 3]`` -> world points ``[..., 3]``."""
        return points * self.radius + points.new_tensor(self.center)

    def cameras_to_unit(self, cameras: Cameras) -> Cameras:
        """The same cameras expressed in the unit volume (intrinsics unchanged)."""
        c2w = cameras.c2w.clone()
        c2w[:, :3, 3] = self.to_unit(c2w[:, :3, 3])
        return Cameras(c2w, cameras.fx, cameras.fy, cameras.cx, cameras.cy, cameras.width, cameras.height)

    def split_to_unit(self, split: DatasetSplit) -> DatasetSplit:
        """The split with its cameras in the unit volume."""
        return DatasetSplit(split.images, split.masks, self.cameras_to_unit(split.cameras), split.names)


def look_at_point(cameras: Cameras) -> torch.Tensor:
    """``[3]`` the world point closest (least squares) to every camera's optical axis."""
    origins = cameras.centers.double()  # [N, 3]
    dirs = torch.nn.functional.normalize(cameras.forward.double(), dim=-1)  # [N, 3]
    proj = torch.eye(3, dtype=torch.float64, device=origins.device) - dirs[:, :, None] * dirs[:, None, :]
    a = proj.sum(0)
    b = (proj @ origins[:, :, None]).sum(0)[:, 0]
    if torch.linalg.matrix_rank(a) < 3:  # all axes parallel: fall back to the camera centroid
        return origins.mean(0).float()
    return torch.linalg.solve(a, b).float()


def grid_points(lo: torch.Tensor, hi: torch.Tensor, resolution: int) -> tuple[torch.Tensor, list[int]]:
    """Cell centres of a grid over the box ``[lo, hi]`` with ``resolution`` cells on its longest side.

    Returns ``points [X*Y*Z, 3]`` (x slowest, z fastest) and the grid shape ``[X, Y, Z]``.
    """
    cell = float((hi - lo).max()) / resolution
    shape = [max(2, int(torch.ceil((hi[a] - lo[a]) / cell - 1e-6))) for a in range(3)]
    axes = [lo[a] + (torch.arange(shape[a], device=lo.device, dtype=lo.dtype) + 0.5) * cell for a in range(3)]
    points = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)
    return points, shape


def find_roi(split: DatasetSplit, margin: float = 0.04, on_step: Callable[[int, int], None] | None = None
             ) -> Normalization:
    """The object's bounding box from the cameras and masks, as a :class:`Normalization`.

    Two coarse carving passes: the first over a cube centred where the optical axes meet, as large
    as the median camera distance allows; the second over the box the first one found. The
    result is padded by ``margin`` of its size on every side.

    Raises:
        InputError: when the masks agree on no common object.
    """
    cams = split.cameras
    center = look_at_point(cams)
    half = float((cams.centers - center).norm(dim=-1).median())
    lo, hi = center - half, center + half
    for n_pass in range(2):
        points, _ = grid_points(lo, hi, COARSE_RESOLUTION)
        cell = float((hi - lo).max()) / COARSE_RESOLUTION
        report = None if on_step is None else (lambda i, n, p=n_pass: on_step(p * n + i, 2 * n))
        occupied = mask_occupancy(points, split, report) > 0.5
        if not bool(occupied.any()):
            raise InputError(
                "The cameras do not see a common object: no point in space is inside every mask. "
                "Check that the poses belong to the images and share one world frame."
            )
        inside = points[occupied]
        lo, hi = inside.min(0).values - 1.5 * cell, inside.max(0).values + 1.5 * cell
    pad = margin * float((hi - lo).max())
    return Normalization.from_box(lo - pad, hi + pad)


def view_roi(split: DatasetSplit) -> Normalization:
    """The region of interest for images without masks: the cube around the sphere that every camera
    sees whole, centred where the optical axes meet (radius = median camera distance times the sine
    of the narrower half field of view). It holds what the cameras are aimed at, plus whatever it
    stands on nearby; methods without masks must tell the two apart."""
    cams = split.cameras
    center = look_at_point(cams)
    distance = float((cams.centers - center).norm(dim=-1).median())
    half_fov = min(float(torch.atan(cams.width / 2 / cams.fx).min()),
                   float(torch.atan(cams.height / 2 / cams.fy).min()))
    half = distance * float(torch.sin(torch.tensor(half_fov)))
    return Normalization.from_box(center - half, center + half)
