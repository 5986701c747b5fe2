"""Region of interest: where the object is, found from the cameras and masks alone.

Methods work in a *unit working volume*: the region of interest, an axis-aligned box in the
dataset's world frame, is centred at the origin and scaled uniformly so that its longest side
spans [-1, 1]. :class:`Normalization` maps points and cameras between the two frames (a uniform
scale and a translation, no rotation, so "up" stays up), and results are mapped back before
export so that they overlay the input cameras exactly.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from .cameras import Cameras
from .carving import mask_occupancy
from .data.dataset import DatasetSplit
from .data.transforms import find_transforms
from .errors import InputError
from .utils.math import cell_centres

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

    def world_box(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(lo, hi)``, ``[3]`` float64 each: the object's box in the dataset's world frame."""
        return (self.to_world(torch.tensor(self.box_min, dtype=torch.float64)),
                self.to_world(torch.tensor(self.box_max, dtype=torch.float64)))

    def describe(self) -> dict[str, Any]:
        """The region for ``report.json``, each number named by its frame: ``world_min`` and
        ``world_max`` (the box in the dataset's world frame, as a job's ``region`` gives it),
        ``world_center`` and ``world_radius`` (unit = (world - world_center) / world_radius), and
        ``unit_min``/``unit_max`` (the same box in the unit volume the methods work in)."""
        lo, hi = self.world_box()
        return {"world_min": lo.tolist(), "world_max": hi.tolist(), "world_center": list(self.center),
                "world_radius": self.radius, "unit_min": list(self.box_min), "unit_max": list(self.box_max)}

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
        """The split with its cameras (and depths) in the unit volume."""
        depths = None if split.depths is None else split.depths / self.radius
        return replace(split, cameras=self.cameras_to_unit(split.cameras), depths=depths)


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
        points, _ = cell_centres(lo, hi, COARSE_RESOLUTION)
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


def depth_roi(split: DatasetSplit, margin: float = 0.04, share: float = 0.001) -> Normalization:
    """The region of interest of views with depth maps (and no masks): the box of the back-projected
    depth samples without the ``share`` most outlying on each side of each axis, padded by
    ``margin`` of its size."""
    assert split.depths is not None, "needs depth maps"
    points = split.cameras.unproject(split.depths)[split.depths > 0]  # [P, 3]
    sample = points[torch.randperm(len(points), generator=torch.Generator().manual_seed(0))[:1_000_000]
                    .to(points.device)]
    lo = torch.quantile(sample, share, dim=0)
    hi = torch.quantile(sample, 1.0 - share, dim=0)
    pad = margin * float((hi - lo).max())
    return Normalization.from_box(lo - pad, hi + pad)


# --- Stored and user-given boxes (photos without poses, the add-on's override) ---------------

def stored_region(dataset: str | Path) -> list[float] | None:
    """The box a camera file names as ``region_of_interest: {"min": [3], "max": [3]}`` (written by
    ``python -m engine poses``), as ``[xmin, ymin, zmin, xmax, ymax, zmax]``, or ``None``."""
    path = find_transforms(Path(dataset), "train")
    if path is None:
        return None
    try:
        box = json.loads(path.read_text()).get("region_of_interest")
        return None if box is None else [float(v) for v in (*box["min"], *box["max"])]
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
        raise InputError(f"{path.name} has an unreadable region_of_interest: {error}") from error


def crop_to_region(normalization: Normalization, region: list[float] | None, replace: bool = False) -> Normalization:
    """``normalization``'s box cut to ``region`` (``[xmin, ymin, zmin, xmax, ymax, zmax]``, world
    frame), or ``region`` itself when ``replace``; unchanged when ``region`` is ``None``."""
    if region is None:
        return normalization
    if len(region) != 6 or not all(isinstance(v, int | float) for v in region):
        raise InputError(f"The region must be six numbers (min x y z, max x y z), got {region!r}")
    lo, hi = torch.tensor(region[:3], dtype=torch.float64), torch.tensor(region[3:], dtype=torch.float64)
    if not bool((hi > lo).all()):
        raise InputError(f"The region's maximum must exceed its minimum on every axis, got {region!r}")
    if not replace:
        current_lo, current_hi = normalization.world_box()
        lo, hi = torch.maximum(lo, current_lo), torch.minimum(hi, current_hi)
        if not bool((hi > lo).all()):
            raise InputError("The object found in the masks lies outside the camera file's region_of_interest")
    return Normalization.from_box(lo, hi)
