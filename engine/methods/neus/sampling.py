"""Where NeuS samples: the SDF cached on a lattice, rays marched through it, pixels drawn."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ...data.dataset import DatasetSplit
from ...fields.sdf import SDFField
from ...utils.math import lattice_nodes, ray_box

# Rays that pass within this many cache cells of the surface without crossing it still get samples.
GRAZING = 1.5


class SurfaceCache:
    """The SDF sampled on the nodes of a coarse lattice over the box ``[lo, hi]`` (unit volume),
    ``resolution`` cells on the longest side: cheap trilinear look-ups for ray marching and for
    restricting mesh extraction to the surface's neighbourhood."""

    def __init__(self, lo: torch.Tensor, hi: torch.Tensor, resolution: int) -> None:
        self.lo, self.hi = lo, hi
        self.cell = float((hi - lo).max()) / resolution
        self.nodes = lattice_nodes(lo, hi, resolution)  # [X+1, Y+1, Z+1, 3]
        shape = [n - 1 for n in self.nodes.shape[:3]]
        self.extent = torch.tensor(shape, device=lo.device, dtype=lo.dtype) * self.cell  # [3]
        self.values = torch.zeros(self.nodes.shape[:3], device=lo.device)  # [X+1, Y+1, Z+1]

    @torch.no_grad()
    def update(self, field: SDFField, chunk: int = 65536) -> None:
        """Re-evaluate ``field`` at every node."""
        nodes = self.nodes.reshape(-1, 3)
        self.values = torch.cat([field(nodes[i:i + chunk])[0] for i in range(0, len(nodes), chunk)]
                                ).reshape(self.values.shape)

    def surface_box(self, within: float) -> tuple[torch.Tensor, torch.Tensor]:
        """``(lo [3], hi [3])``: the box around the nodes whose cached SDF is below ``within`` cells,
        padded by one cell (so on its faces the cache is at least ``within`` cells); the cache's own
        box when no node is."""
        near = (self.values < within * self.cell).nonzero()  # [M, 3] node indices
        if len(near) == 0:
            return self.lo, self.hi
        lo = self.nodes[tuple(near.min(0).values)] - self.cell
        hi = self.nodes[tuple(near.max(0).values)] + self.cell
        return torch.maximum(lo, self.lo), torch.minimum(hi, self.hi)

    def lookup(self, points: torch.Tensor) -> torch.Tensor:
        """Trilinear SDF ``[...]`` at unit-volume ``points [..., 3]`` (clamped to the lattice)."""
        grid = ((points - self.lo) / self.extent * 2.0 - 1.0).flip(-1)  # grid_sample wants (z, y, x)
        flat = grid.reshape(1, 1, 1, -1, 3)
        out = F.grid_sample(self.values[None, None], flat, mode="bilinear", padding_mode="border", align_corners=True)
        return out.reshape(points.shape[:-1])


def march_cache(cache: SurfaceCache, origins: torch.Tensor, directions: torch.Tensor, near: torch.Tensor,
                far: torch.Tensor, *, table: Callable[[torch.Tensor], torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Where each ray ``[R]`` first meets the cached surface: ``(t [R], hit [R] bool, deepest [R],
    bare [R] bool)``, ``deepest`` being the lowest cached SDF along the ray (above the table) and
    ``bare`` the rays that meet only the table.

    The cache is sampled at two points per cell between where the ray enters and leaves the box
    around the cached surface (:meth:`SurfaceCache.surface_box`; nothing outside it can be crossed
    or grazed); the first sign change is located by linear interpolation. A ray that never crosses
    but passes within ``GRAZING`` cells gets the distance of its closest approach. With a ``table``
    (points ``[..., 3]`` -> height above it ``[...]``, linear) the field only counts above the table
    top, and a ray that neither crosses nor grazes it gets the point where it meets the table
    (exactly: a plane) between ``near`` and ``far``. Other rays miss.
    """
    box_lo, box_hi = cache.surface_box(GRAZING + 1.0)
    enter, leave = ray_box(origins, directions, box_lo, box_hi)
    enter, leave = torch.maximum(enter, near), torch.minimum(leave, far)  # [R] each
    steps = max(8, int(2 * float((leave - enter).max().clamp_min(0)) / cache.cell))
    frac = (torch.arange(steps, device=origins.device, dtype=origins.dtype) + 0.5) / steps  # [K]
    t = enter[:, None] + (leave - enter).clamp_min(0)[:, None] * frac  # [R, K]
    points = origins[:, None] + directions[:, None] * t[..., None]  # [R, K, 3]
    sdf = cache.lookup(points)  # [R, K]
    if table is not None:  # under the table the field is never seen (nor fitted): its values there mean nothing
        sdf = torch.where(table(points).detach() > 0, sdf, sdf.new_tensor(GRAZING * cache.cell))
    crosses, t_cross = first_crossing(sdf, t, enter)
    closest = sdf.min(1)
    t_closest = t.gather(1, closest.indices[:, None])[:, 0]
    found = (leave > enter) & (crosses | (closest.values < GRAZING * cache.cell))
    t_hit = torch.where(crosses, t_cross, t_closest)
    bare = torch.zeros_like(found)
    if table is not None:
        entry = origins + directions * near[:, None]  # [R, 3]
        start, rise = table(entry).detach(), (table(entry + directions) - table(entry)).detach()  # [R] each
        t_table = torch.where(start > 0, near + start / (-rise).clamp_min(1e-9), near)
        on_table = (start <= 0) | ((rise < 0) & (t_table < far))
        t_hit = torch.where(found, t_hit, t_table)
        bare = (far > near) & on_table & ~found
        found = found | on_table
    return t_hit, (far > near) & found, closest.values, bare


def first_crossing(values: torch.Tensor, t: torch.Tensor, near: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(crosses [R] bool, t [R])``: whether ``values [R, K]`` (sampled at distances ``t [R, K]``)
    turn negative, and where, by linear interpolation (``near`` when the first sample already is)."""
    inside = values < 0
    first = inside.float().argmax(1)  # [R]
    prev = (first - 1).clamp_min(0)
    v0, v1 = values.gather(1, prev[:, None])[:, 0], values.gather(1, first[:, None])[:, 0]
    t0, t1 = t.gather(1, prev[:, None])[:, 0], t.gather(1, first[:, None])[:, 0]
    return inside.any(1), torch.where(first > 0, t0 + (v0 / (v0 - v1).clamp_min(1e-9)).clamp(0, 1) * (t1 - t0), near)


@dataclass
class Pixels:
    """Pixels drawn for one step: their rays and what the views say about them.

    Attributes:
        origins, directions: ``[R, 3]`` the rays (unit directions), in the split's frame.
        colours: ``[R, 3]`` the images' colours; masks: ``[R]`` or ``None`` without masks.
        depths: ``[R]`` the depth maps' distance *along each ray* (0 = none), or ``None``.
        normals: ``[R, 3]`` the normal maps' world normals (0 = none), or ``None``.
        views: ``[R]`` the index of each pixel's view (int64).
    """

    origins: torch.Tensor
    directions: torch.Tensor
    colours: torch.Tensor
    masks: torch.Tensor | None
    depths: torch.Tensor | None
    normals: torch.Tensor | None
    views: torch.Tensor


def sample_pixels(split: DatasetSplit, count: int, generator: torch.Generator) -> Pixels:
    """``count`` random pixels across all views (see :class:`Pixels`)."""
    n, h, w = split.images.shape[:3]
    view, py, px = (torch.randint(k, (count,), generator=generator).to(split.images.device) for k in (n, h, w))
    origins, directions = split.cameras.rays(view, px, py)
    mask = None if split.masks is None else split.masks[view, py, px]
    depth = None
    if split.depths is not None:  # along the optical axis -> along the ray
        depth = split.depths[view, py, px] / (directions * split.cameras.forward[view]).sum(-1)
    normals = None if split.normals is None else split.normals[view, py, px]
    return Pixels(origins, directions, split.images[view, py, px], mask, depth, normals, view)
