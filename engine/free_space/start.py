"""The carved start of an optimizing method: the visual hull, opened where the images say it is empty.

:func:`find_free_space` gathers the evidence once per run (the triangulated points, and the voxels
photo carving removes); :func:`carved_start` turns it into the signed distance a method starts
from at its own lattice, with the raw hull's (where the surface may still go).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..carving import mask_occupancy, node_occupancy, occupancy_sdf
from ..data.dataset import DatasetSplit
from ..progress import Progress
from ..utils.math import cell_centres, lattice_nodes
from .carve import empty_votes
from .options import FreeSpaceOptions
from .photo import photo_carve
from .points import SIGHT_MARGIN, SparsePoints, triangulate

# The splat radius of a view's points' depths (see carve.py), as a share of the mean spacing between its observations
# (the square root of its mask's area per observation), and its largest value in pixels. On the bowl's 100 views at
# 256 px (about 240 observations a view, spaced 10 px) 3 / 4 / 6 pixels left its 128-cell hull at Chamfer-L1
# 0.0109 / 0.0092 / 0.0114 (the hull: 0.0434); at 40 views of 128 px (12 observations a view) 2 pixels left a sponge.
SPLAT_SHARE = 0.4
MAX_SPLAT_PIXELS = 12
# A grid point inside the hull is opened when this many views call it empty: one view alone opens a sheet along the
# edges where a near surface hides a far one and only the far one has points nearby. On 100 of the bowl's views at
# 128 px (its start at 64 cells) one or two views gave Chamfer-L1 0.0167 both, normal consistency 0.74 / 0.80.
MIN_EMPTY_VOTES = 2
# The carved start "opened a hollow" when the carve emptied at least this share of the hull's lattice nodes; the methods
# then lean on the free-space evidence more (DMTet's and NeuS's ``hollow_*`` options). DMTet's balanced start (64
# cells) empties 57% of the bowl's, 1.9% of rocker-arm's, 0.8% of fandisk's, 0.1% of bunny's and 0.02% of spot's; NeuS's
# (192 cells) 58%, 2.0%, 0.8%, 0.2% and 0.02% (BENCHMARKS, Concavities, sessions 7 and 8).
HOLLOW_SHARE = 0.1
# Photo carving runs on a grid of this many cells (longest side), at most this many rounds.
PHOTO_RESOLUTION = 96
PHOTO_ROUNDS = 60
# Photo carving compares a voxel's colours only when at least this many views see it.
PHOTO_MIN_VIEWS = 3


@dataclass
class FreeSpace:
    """The evidence of empty space of one run, in the unit volume.

    Attributes:
        sparse: the triangulated points and their observations (``None`` when not asked for).
        removed: photo carving's removed voxels, ``[X, Y, Z]`` bool over the cells of the
            ``PHOTO_RESOLUTION`` grid of ``[lo, hi]`` (``None`` when not asked for).
        lo, hi: ``[3]`` each, the box of the photo-carving grid.
    """

    sparse: SparsePoints | None
    removed: np.ndarray | None
    lo: torch.Tensor
    hi: torch.Tensor

    def summary(self) -> dict[str, int]:
        """Counts for the method's statistics."""
        out = {}
        if self.sparse is not None:
            out.update(triangulated_points=len(self.sparse), point_observations=len(self.sparse.views))
        if self.removed is not None:
            out["photo_carved_voxels"] = int(self.removed.sum())
        return out


@dataclass
class CarvedStart:
    """A method's start at the lattice nodes of a grid.

    Attributes:
        sdf: ``[X+1, Y+1, Z+1]`` signed distance (negative inside) of the carved volume.
        hull_sdf: the same of the raw visual hull (the volume the surface may occupy).
    """

    sdf: torch.Tensor
    hull_sdf: torch.Tensor

    @property
    def opened_share(self) -> float:
        """The share of the hull's inside nodes that the carve emptied (0: nothing opened)."""
        hull = self.hull_sdf < 0
        inside = int(hull.sum())
        return float((hull & (self.sdf >= 0)).sum()) / inside if inside else 0.0

    @property
    def opened_hollow(self) -> bool:
        """Whether the carve opened a hollow: it emptied at least :data:`HOLLOW_SHARE` of the hull."""
        return self.opened_share >= HOLLOW_SHARE


def find_free_space(split: DatasetSplit, masked: DatasetSplit, *, lo: torch.Tensor, hi: torch.Tensor,
                    opts: FreeSpaceOptions, progress: Progress) -> FreeSpace:
    """The evidence ``opts`` asks for: points triangulated across ``split``'s views (its masks, if
    any, keep the features on the object), and photo carving of the hull of ``masked``'s masks
    (opened along the lines of sight first). Cameras in the unit volume."""
    sparse = triangulate(split, progress) if opts.wants_points() else None
    removed = None
    if opts.photo_carve:
        centres, shape = cell_centres(lo, hi, PHOTO_RESOLUTION)
        cell = float((hi - lo).max()) / PHOTO_RESOLUTION
        occupancy = mask_occupancy(centres, masked, progress.stage("photo carving: the hull"))
        if sparse is not None and opts.sight_carve:
            occupancy[empty_nodes(centres, occupancy, sparse, masked)] = 0.0
        occupancy = occupancy.reshape(shape).cpu().numpy()
        carved = photo_carve(occupancy, centres[0].cpu().numpy(), cell, masked, threshold=opts.photo_threshold,
                             min_views=PHOTO_MIN_VIEWS, rounds=PHOTO_ROUNDS, on_step=progress.stage("photo carving"))
        removed = (occupancy > 0.5) & (carved <= 0.5)
    return FreeSpace(sparse, removed, lo, hi)


def empty_nodes(positions: torch.Tensor, occupancy: torch.Tensor, sparse: SparsePoints, masked: DatasetSplit
                ) -> torch.Tensor:
    """``[P]`` bool: which of ``positions [P, 3]`` lie inside (``occupancy [P]`` above 0.5) and are
    called empty by at least ``MIN_EMPTY_VOTES`` of ``masked``'s views
    (:func:`engine.free_space.carve.empty_votes`, each view's splat radius from its mask's area)."""
    inside = occupancy > 0.5
    empty = torch.zeros_like(inside)
    empty[inside] = empty_votes(positions[inside], sparse, masked.cameras, radius=splat_radius(sparse, masked),
                                margin=SIGHT_MARGIN) >= MIN_EMPTY_VOTES
    return empty


def splat_radius(sparse: SparsePoints, masked: DatasetSplit) -> torch.Tensor:
    """``[N]`` whole pixels: ``SPLAT_SHARE`` of the mean spacing between each view's observations
    of the object (the square root of its mask's area per observation inside it; without masks, of
    the image's per observation), 1 to ``MAX_SPLAT_PIXELS``."""
    cameras, views = masked.cameras, sparse.views
    if masked.masks is not None:
        area = (masked.masks > 0.5).flatten(1).sum(1).float().to(views.device)
        column = sparse.pixels[:, 0].long().clamp(0, cameras.width - 1)
        row = sparse.pixels[:, 1].long().clamp(0, cameras.height - 1)
        views = views[masked.masks[views, row, column] > 0.5]  # the observations of the object
    else:
        area = torch.full((len(cameras),), float(cameras.width * cameras.height), device=views.device)
    seen = torch.bincount(views, minlength=len(cameras)).float()
    return (SPLAT_SHARE * (area / seen.clamp_min(1)).sqrt()).round().clamp(1, MAX_SPLAT_PIXELS).long()


def carved_start(free: FreeSpace, masked: DatasetSplit, *, lo: torch.Tensor, hi: torch.Tensor, resolution: int,
                 opts: FreeSpaceOptions, progress: Progress) -> CarvedStart:
    """The :class:`CarvedStart` at the lattice nodes of the ``resolution`` grid over ``[lo, hi]``:
    the hull of ``masked``'s masks, opened where the lines of sight to ``free``'s points cross it
    (``opts.sight_carve``) and where photo carving removed voxels."""
    cell = float((hi - lo).max()) / resolution
    occupancy = node_occupancy(masked, lo, hi, resolution, progress.stage("carving"))  # [X+1, Y+1, Z+1]
    hull = occupancy_sdf(occupancy, cell)
    nodes = lattice_nodes(lo, hi, resolution)
    carved = occupancy.clone()
    if opts.sight_carve and free.sparse is not None and len(free.sparse) > 0:
        progress.update("finding free space: lines of sight", 0, 1)
        carved[empty_nodes(nodes.reshape(-1, 3), occupancy.reshape(-1), free.sparse, masked).reshape(
            occupancy.shape)] = 0.0
        progress.update("finding free space: lines of sight", 1, 1)
    if free.removed is not None:
        carved[photo_removed_at(free, nodes)] = 0.0
    return CarvedStart(occupancy_sdf(carved, cell), hull)


def photo_removed_at(free: FreeSpace, positions: torch.Tensor) -> torch.Tensor:
    """``[...]`` bool: whether the photo-carving cell holding each of ``positions [..., 3]`` was removed."""
    removed = torch.from_numpy(free.removed).to(positions.device)
    cell = float((free.hi - free.lo).max()) / PHOTO_RESOLUTION
    index = ((positions - free.lo) / cell).floor().long()
    index = torch.minimum(index.clamp_min(0), torch.tensor(removed.shape, device=positions.device) - 1)
    return removed[index[..., 0], index[..., 1], index[..., 2]]
