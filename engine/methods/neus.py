"""NeuS: a neural SDF optimized by volume rendering, fast enough for a CPU.

The technique of NeuS (Wang et al. 2021) with the speed-ups of instant-nsr-pl and NeuS2 (a
multi-resolution grid encoding, empty-space skipping), reimplemented in our own pure-torch code:

1. **Field**: :class:`~engine.fields.SDFField` (hash grid + small SiLU MLP) for geometry, a separate
   :class:`~engine.fields.AlbedoField` for the view-independent surface colour (what gets baked
   into the texture) plus a small residual conditioned on the normal, view direction and geometry
   features (:class:`~engine.fields.ColourHead`). A separate appearance grid keeps texture detail
   from roughening the geometry.
2. **Initialization**: with masks the SDF is first fitted (a few hundred cheap steps, no rendering)
   to the signed distance of the visual hull; without masks, to the hull of the automatic masks
   of ``MethodInput.hints`` (:mod:`engine.sfm.object_hints`), or, when the pipeline could not
   locate the object, to a sphere filling the region of interest (the field then learns the table
   too). Encoding levels are switched on coarse to fine.
3. **Sampling**: the SDF is cached on a coarse lattice over the region of interest (the
   "occupancy grid", refreshed from the network every ``update_every`` steps). Each ray marches the
   cache (no network) to its first zero crossing and puts all its network samples in a band
   around it; rays that meet no surface cost nothing. Rays are drawn at random across all views.
4. **Rendering and losses**: NeuS alpha with learned ``inv_s`` and cosine annealing
   (``engine.render.volume``); L1 on colour (and on the albedo alone, so that it explains the
   images by itself), eikonal loss, mask BCE when masks exist. With masks every ray gets a random
   background colour (so opacity must match the mask); without masks a direction-only background
   field (:class:`~engine.fields.BackgroundField`) explains what lies outside the region of interest.
   When the object was located on its table, the table is a second, analytic surface (a plane
   whose height is learned) rendered beside the field (:func:`table_alphas`): the field holds the
   object alone.
5. **Mesh**: marching cubes (scikit-image) of the SDF over the region of interest at
   ``mesh_resolution`` (the network is evaluated only near the cached surface), small pieces
   dropped. With an analytic table the field is cut at the table top and closed there. Without
   masks or a located table, the support the object stands on (the dominant plane that spans the
   region of interest, found by RANSAC) is cut away first, keeping the side the cameras are on.

All geometry lives in the unit volume (see ``engine.roi``).

Decisions worth knowing:

* Samples only cover a band around the cached surface, so ``neus_alpha`` extends the band's first
  section back to free space and its last one on to the deepest cached SDF along the ray. Without
  that, oblique and silhouette rays lose opacity and the fit inflates the whole object by about
  1/inv_s (measured: spot grew by 0.035 at inv_s 30, Chamfer-L1 0.03).
* ``inv_s`` starts at 100 from the hull (the surface is already close), at 30 from the sphere.
* Hash-grid learning rate 5e-3 with a 50-step warm-up, MLPs 1e-3: Adam's first full-size steps on
  the MLP (lr 1e-2) shifted the whole SDF by several cells.
* Rays per step matter most on a CPU. With 1024 rays x 600 steps each pixel is seen less than
  once and the fit roughens the hull start by about +-0.005 (spot: Chamfer-L1 0.0033 before any
  rendering, 0.0044 after); 4096 x 1500 averages that noise out (0.0032, F@0.2% 0.87). Adam's
  ``eps``, a coarser finest level, a stronger mask loss, a sharper ``inv_s`` start and a
  normal-smoothness loss were tried instead; none came close, and the sharp start ruined
  rocker-arm's pockets (BENCHMARKS.md).
* The hull start is fitted to the hull's signed distance at 192 cells: at 128 the start alone
  scored 0.0052 on spot.
* Without masks the automatic masks are only a start, never a loss: they miss the lowest part of
  the legs and keep some ground under the body, which the images must correct. From that start
  the first ``geometry_warmup`` share of the steps trains the colours and the background alone
  (``inv_s`` waits too, so the surface can still move when it is freed): with the surface free
  from the first step, the random colours pushed it outwards (spot-tabletop, 30 views, 300 steps
  of 1024 rays: Chamfer-L1 0.025 free, 0.016 with 0.3 of the steps frozen). Once ``balanced``
  took 3000 steps, 0.15 of them (450, about as many as 0.3 of the former 1500) was enough and
  left the surface more steps to move: 0.0073 -> 0.0064 and 0.0068 in two runs (from the
  photos: 0.0081 -> 0.0076).
* The located table is a plane beside the field, not part of it (spot-tabletop, ``balanced``:
  Chamfer-L1 0.0086 with the table learned by the field and cut away by RANSAC, 0.0123 with the
  plane united with the field by ``min``, 0.0078 as two surfaces, :func:`table_alphas`). The union
  starves the field of gradient just above the table (the feet), and cutting a learned table left
  the soles open and the table's own bumps on them. Rays that meet only the table cost one sample
  (a quarter off the step time).
* The table is diffuse: where it is seen, the colour is the albedo alone, without the
  view-dependent residual, which could otherwise paint on the table a stand-in for a foot the
  field lacks that changes with the view (spot-tabletop, 1500 steps: Chamfer-L1 0.0079 -> 0.0077).
* The table's albedo is a field of its own (:meth:`NeuSModel.table_colour`). With one albedo field
  for both, a surface hanging a few hundredths above the table (the hull's keel under the belly)
  took the table's colours from the shared grid cells, and the few low views that see past it
  could not tell it from the table (spot-tabletop, 5000 steps, one thread: 0.0065 -> 0.0057).
* A step costs about half what it did once the SDF's gradient for the eikonal loss came in closed
  form (:meth:`~engine.fields.hash_grid.HashGrid.with_jacobian`), and a third less again once the
  hash grid interpolated axis by axis on contiguous ``[N, L]`` slices, the march covered only the
  box around the cached surface and the colours-only warm-up skipped the field's backward
  (mask-free step 0.22 -> 0.145 s on two threads). ``balanced`` takes 5000 steps (3000 gave
  0.0064-0.0068 mask-free, 5000 0.0060-0.0065 before the table had its own albedo).
* No prior decides what few views see. On spot-tabletop most of the remaining error is the
  belly's underside and the legs below it, which at most five of the 60 views (all 10-65 degrees
  above the table) see (``benchmarks/error_by_height.py``); the fit leaves it near the hull of the
  automatic masks. A volume prior pressing the surface inwards dug out the belly (weight 0.05:
  Chamfer-L1 0.0225) or traded a higher belly for thinner hooves (0.01: 0.0066), and drawing the
  low views more often did not help beyond noise (BENCHMARKS.md, session 6).

Status: see BENCHMARKS.md (NeuS, issue 5) for the numbers of the ``balanced`` preset on the
2-core CPU, with and without masks, and the commands that measure them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
import trimesh

from ..carving import hull_sdf
from ..data.dataset import DatasetSplit
from ..errors import InputError
from ..fields import AlbedoField, HashGrid, albedo_colours
from ..fields.sdf import BackgroundField, ColourHead, SDFField
from ..geometry.grid_surface import extract_surface
from ..geometry.tet_grid import grid_shape
from ..render.volume import composite_weights, neus_alpha, ray_box
from ..roi import grid_points
from .base import Method, MethodInput, MethodOutput

# The network is evaluated (for the mesh) only where the cached SDF is within this many cache cells.
EXTRACT_BAND = 2.5
# Rays that pass within this many cache cells of the surface without crossing it still get samples.
GRAZING = 1.5
# Learning-rate warm-up (steps): Adam's first steps are full-size whatever the gradient.
WARMUP = 50


class SurfaceCache:
    """The SDF sampled on the nodes of a coarse lattice over the box ``[lo, hi]`` (unit volume),
    ``resolution`` cells on the longest side: cheap trilinear look-ups for ray marching and for
    restricting mesh extraction to the surface's neighbourhood."""

    def __init__(self, lo: torch.Tensor, hi: torch.Tensor, resolution: int) -> None:
        self.lo, self.hi = lo, hi
        self.cell = float((hi - lo).max()) / resolution
        shape = grid_shape(lo, hi, resolution)
        axes = [lo[a] + torch.arange(shape[a] + 1, device=lo.device, dtype=lo.dtype) * self.cell for a in range(3)]
        self.nodes = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1)  # [X+1, Y+1, Z+1, 3]
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


def pixel_rays(split: DatasetSplit, view: torch.Tensor, px: torch.Tensor, py: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(origins [R, 3], unit directions [R, 3])`` of the rays through pixel centres ``(px, py)`` (``[R]``
    integer columns and rows) of the views ``view [R]``, in the split's frame (OpenGL cameras)."""
    cams = split.cameras
    x = (px.float() + 0.5 - cams.cx[view]) / cams.fx[view]
    y = -(py.float() + 0.5 - cams.cy[view]) / cams.fy[view]
    d_cam = torch.stack([x, y, -torch.ones_like(x)], dim=-1)  # [R, 3]
    directions = torch.einsum("rij,rj->ri", cams.c2w[view, :3, :3], d_cam)
    return cams.c2w[view, :3, 3], F.normalize(directions, dim=-1)


class NeuSModel(torch.nn.Module):
    """Everything that is optimized: the SDF, the colour, the background, ``inv_s`` and, when the
    object stands on a known table, that table's height.

    With ``table = (point [3], up [3])`` (unit volume) the table is a second surface: the plane
    through ``point`` with normal ``up``, moved along ``up`` by a learned offset (the located table
    is off by a few thousandths; its texture pins it down). The field then holds the object alone.
    The table has an albedo field of its own (``table_albedo``, read where a ray meets its plane):
    were it the object's, any surface hanging just above the table would wear the table's colours
    for free, and the few views that see under the object could not tell it from the table.
    """

    def __init__(self, opts: dict, mask_free: bool, hull_start: bool,
                 table: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        super().__init__()
        self.sdf = SDFField(levels=opts["levels"], finest=opts["finest"], table_size=2 ** opts["log2_table"])
        self.colour = ColourHead(AlbedoField(levels=opts["levels"], finest=opts["finest"]), self.sdf.features)
        self.background = BackgroundField() if mask_free else None
        # Started sharp from a hull (of the masks, or of the automatic masks without them), softer
        # from the blind sphere start (the surface has far to go; ``inv_s_init_mask_free``).
        inv_s = opts["inv_s_init"] if hull_start else opts["inv_s_init_mask_free"]
        self.log_inv_s = torch.nn.Parameter(torch.tensor(math.log(inv_s)))
        self.has_table = table is not None
        point, up = table if table is not None else (np.zeros(3), np.array([0.0, 0.0, 1.0]))
        self.register_buffer("table_point", torch.tensor(point, dtype=torch.float32))
        self.register_buffer("table_up", torch.tensor(up, dtype=torch.float32))
        self.table_offset = torch.nn.Parameter(torch.zeros(())) if table is not None else None
        self.table_albedo = AlbedoField(levels=opts["levels"], finest=opts["finest"]) if table is not None else None

    def height(self, points: torch.Tensor) -> torch.Tensor:
        """``[...]`` signed distance of ``points [..., 3]`` above the table top (requires a table)."""
        return (points - self.table_point) @ self.table_up - self.table_offset

    def table_colour(self, origins: torch.Tensor, directions: torch.Tensor, far: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(t [R], albedo [R, 3])``: where rays ``[R, 3]`` meet the table top (at most ``far [R]``
        along them) and the table's colour there (requires a table)."""
        t = self.height(origins) / (-(directions @ self.table_up)).clamp_min(1e-6)
        t = torch.minimum(t, far)
        return t, self.table_albedo(origins + directions * t[:, None])


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


def render_rays(model: NeuSModel, cache: SurfaceCache, origins: torch.Tensor, directions: torch.Tensor, *,
                lo: torch.Tensor, hi: torch.Tensor, opts: dict, anneal: float, training: bool,
                frozen_geometry: bool = False) -> dict[str, torch.Tensor]:
    """Volume-render rays ``[R, 3]`` (unit volume). Returns ``colour``/``albedo`` ``[R, 3]`` and ``depth [R]``
    (distance along the ray), all premultiplied by the opacity, no background; ``opacity [R]`` and
    ``eikonal`` (mean over the samples, scalar).

    Each ray gets ``samples`` samples in a band around where it first meets the cached surface (or
    the table). With a table, the object and the table are two surfaces: see :func:`table_alphas`;
    a ray that meets only the table (neither crossing nor grazing the object) gets one sample, where
    it meets the table top, which stops it (the plane's opacity is all there).

    With ``frozen_geometry`` the SDF and ``inv_s`` get no gradient (the colours-only warm-up of a
    mask-free fit): no backward through the field, about a third of a step.
    """
    near, far = ray_box(origins, directions, lo, hi)
    table = model.height if model.has_table else None
    centre, hit, deepest, bare = march_cache(cache, origins, directions, near, far, table=table)
    count = len(origins)
    colour = origins.new_zeros(count, 3)
    albedo = origins.new_zeros(count, 3)
    opacity = origins.new_zeros(count)
    depth = origins.new_zeros(count)
    eikonal = origins.new_zeros(())
    if bool(bare.any()):
        t, table_albedo = model.table_colour(origins[bare], directions[bare], far[bare])  # [B], [B, 3]
        colour[bare], albedo[bare], opacity[bare], depth[bare] = table_albedo, table_albedo, 1.0, t
    hit = hit & ~bare
    if not bool(hit.any()):
        return {"colour": colour, "albedo": albedo, "opacity": opacity, "depth": depth, "eikonal": eikonal}
    o, d, c = origins[hit], directions[hit], centre[hit]  # [H, 3], [H, 3], [H]
    inv_s = model.log_inv_s.exp().detach() if frozen_geometry else model.log_inv_s.exp()
    half = max(opts["band"] * cache.cell, opts["band_sharp"] / float(inv_s.detach()))
    samples = int(opts["samples"])
    jitter = torch.rand(len(o), samples, device=o.device) if training else torch.full((len(o), samples), 0.5,
                                                                                     device=o.device)
    t = c[:, None] - half + 2 * half * (torch.arange(samples, device=o.device) + jitter) / samples  # [H, S]
    deltas = torch.full_like(t, 2 * half / samples)
    if table is not None:  # one more sample, where the ray meets the table top beyond the band
        end, rise = c + half, d @ model.table_up  # [H] each
        beyond = table(o + d * end[:, None]).detach().clamp_min(0) / (-rise).clamp_min(1e-6)
        t = torch.cat([t, torch.minimum(end + beyond, far[hit])[:, None]], 1)  # [H, S + 1]
    taken = t.shape[1]
    points = (o[:, None] + d[:, None] * t[..., None]).reshape(-1, 3)  # [H*T, 3]
    views = d[:, None].expand(-1, taken, -1).reshape(-1, 3)
    sdf, features, gradient = model.sdf.with_gradient(points, create_graph=training and not frozen_geometry)
    if frozen_geometry:
        sdf, features, gradient = sdf.detach(), features.detach(), gradient.detach()
    slope = (gradient * views).sum(-1)  # [H*T]
    normals = F.normalize(gradient, dim=-1)
    if table is None:
        alpha = neus_alpha(sdf.view(-1, taken), slope.view(-1, taken), deltas, inv_s, anneal=anneal,
                           deepest=deepest[hit])  # [H, S]
    else:
        lowest = table(o + d * far[hit][:, None])  # [H] the table's height where the ray leaves the box
        alpha, table_share = table_alphas(model, sdf.view(-1, taken), slope.view(-1, taken), points.view(-1, taken, 3),
                                          rise=rise, lowest=lowest, deltas=deltas, inv_s=inv_s, anneal=anneal,
                                          deepest=deepest[hit])
        normals = F.normalize(normals + table_share.reshape(-1, 1) * (model.table_up - normals), dim=-1)
    weights = composite_weights(alpha)  # [H, T]
    sample_colour, sample_albedo = model.colour(points, features, normals, views)
    if table is not None:  # the table is diffuse: its share of a sample's colour is its albedo alone
        table_albedo = model.table_colour(o, d, far[hit])[1][:, None].expand(-1, taken, -1).reshape(-1, 3)
        share = table_share.reshape(-1, 1)
        sample_colour = sample_colour + share * (table_albedo - sample_colour)
        sample_albedo = sample_albedo + share * (table_albedo - sample_albedo)
    colour[hit] = (weights[..., None] * sample_colour.view(-1, taken, 3)).sum(1)
    albedo[hit] = (weights.detach()[..., None] * sample_albedo.view(-1, taken, 3)).sum(1)
    opacity[hit] = weights.sum(1)
    depth[hit] = (weights * t).sum(1)
    eikonal = ((gradient.norm(dim=-1) - 1.0) ** 2).mean()
    return {"colour": colour, "albedo": albedo, "opacity": opacity, "depth": depth, "eikonal": eikonal}


def table_alphas(model: NeuSModel, sdf: torch.Tensor, slope: torch.Tensor, points: torch.Tensor, *,
                 rise: torch.Tensor, lowest: torch.Tensor, deltas: torch.Tensor, inv_s: torch.Tensor, anneal: float,
                 deepest: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Opacity ``[H, S + 1]`` of the object on its table, and the table's share of it (``[H, S + 1]``,
    no gradient) for the normals, from the field's ``sdf``/``slope`` at ``points [H, S + 1, 3]`` (the
    ``S`` samples of the band, then one where the ray meets the table top beyond it), the rays'
    ``rise [H]`` (direction . up) and the table's height where they leave the box (``lowest [H]``).

    Two surfaces, each with its own NeuS opacity; a section lets light through only where both do
    (``1 - alpha = (1 - alpha_object)(1 - alpha_table)``). The object is the field cut by the table
    top (``max(sdf, -height)``), seen only in the band. The table's opacity is exact for a plane:
    in the band from its heights (extended back to free space), and the rest of it, from the
    band's end down to ``lowest``, in the extra sample. Neither surface hides the other's gradient:
    a union by ``min`` would give the field none just above the table, where the automatic masks
    lose the feet and the fit must grow them back.
    """
    band = deltas.shape[1]
    height, rise = model.height(points), rise[:, None].expand_as(sdf)  # [H, S + 1] each
    below = -height > sdf
    object_alpha = neus_alpha(torch.where(below, -height, sdf)[:, :band], torch.where(below, -rise, slope)[:, :band],
                              deltas, inv_s, anneal=anneal, deepest=deepest)  # [H, S]
    in_band = neus_alpha(height[:, :band], rise[:, :band], deltas, inv_s, anneal=anneal,
                         deepest=torch.full_like(deepest, math.inf))  # [H, S]
    end = height[:, band - 1] + rise[:, 0] * deltas[:, -1] / 2  # [H] height at the band's end
    lowest = torch.minimum(end, lowest)
    opaque_end = torch.sigmoid(end * inv_s)
    rest = ((opaque_end - torch.sigmoid(lowest * inv_s)) / (opaque_end + 1e-5)).clamp(0.0, 1.0)  # [H]
    table_alpha = torch.cat([in_band, rest[:, None]], 1)
    object_alpha = torch.cat([object_alpha, torch.zeros_like(rest)[:, None]], 1)
    share = (table_alpha / (object_alpha + table_alpha).clamp_min(1e-6)).detach()
    return 1 - (1 - object_alpha) * (1 - table_alpha), share


def initial_sdf(data: MethodInput, cache: SurfaceCache, resolution: int) -> torch.Tensor:
    """The SDF the field starts from, at the cache's nodes: the visual hull's signed distance when
    there are masks; without masks, the hull of the automatic masks of ``data.hints`` (the table is
    a surface of its own then, see :class:`NeuSModel`), or (no hints) a sphere of radius 0.6 around
    the centre of the region of interest."""
    lo, hi = cache.lo, cache.hi
    split, hints = data.split, data.hints
    if split.masks is None and hints is None:
        centre = (torch.tensor(data.normalization.box_min) + torch.tensor(data.normalization.box_max)) / 2
        return (cache.nodes - centre.to(cache.nodes.device)).norm(dim=-1) - 0.6
    masked = split if split.masks is not None else DatasetSplit(split.images, hints.masks, split.cameras, split.names)
    sdf = hull_sdf(masked, lo, hi, resolution, data.progress.stage("carving"))
    if float(sdf.min()) >= 0:
        raise InputError("The visual hull is empty: the masks do not overlap in space")
    return sdf


def fit_to_cache(model: NeuSModel, cache: SurfaceCache, data: MethodInput, generator: torch.Generator,
                 size: int = 16384) -> None:
    """Fit the SDF field to ``cache`` (L1 on ``size`` random points per step, half of them near the surface)."""
    steps = int(data.options["init_iterations"])
    optimizer = torch.optim.Adam(model.sdf.parameters(), lr=1e-2)
    lo, extent = cache.lo, cache.extent
    nodes = cache.nodes.reshape(-1, 3)
    near_surface = nodes[cache.values.reshape(-1).abs() < 3 * cache.cell]
    for step in range(steps):
        data.progress.update("initializing the SDF", step, steps)
        uniform = lo + torch.rand(size // 2, 3, generator=generator).to(lo.device) * extent
        pick = torch.randint(len(near_surface), (size - size // 2,), generator=generator).to(lo.device)
        jitter = (torch.rand(len(pick), 3, generator=generator).to(lo.device) - 0.5) * 2 * cache.cell
        points = torch.cat([uniform, near_surface[pick] + jitter])
        loss = (model.sdf(points)[0] - cache.lookup(points)).abs().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    data.progress.update("initializing the SDF", steps, steps)


def sample_pixels(split: DatasetSplit, count: int, generator: torch.Generator
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Random pixels across all views: ``(origins [R, 3], directions [R, 3], colours [R, 3], masks [R] or None)``."""
    n, h, w = split.images.shape[:3]
    view, py, px = (torch.randint(k, (count,), generator=generator).to(split.images.device) for k in (n, h, w))
    origins, directions = pixel_rays(split, view, px, py)
    mask = None if split.masks is None else split.masks[view, py, px]
    return origins, directions, split.images[view, py, px], mask


def train(model: NeuSModel, cache: SurfaceCache, data: MethodInput, generator: torch.Generator) -> dict:
    """The main optimization; returns statistics for the report."""
    opts, split, progress = data.options, data.split, data.progress
    lo, hi = cache.lo, cache.hi
    iterations = int(opts["iterations"])
    grids = [module.tables for module in model.modules() if isinstance(module, HashGrid)]
    networks = [p for p in model.parameters() if all(p is not q for q in [*grids, model.log_inv_s])]
    groups = [{"params": grids, "lr": opts["lr"]}, {"params": networks, "lr": opts["lr_mlp"]},
              {"params": [model.log_inv_s], "lr": opts["lr_inv_s"]}]
    optimizer = torch.optim.Adam(groups, eps=1e-15, fused=True)  # mask-free step 0.166 -> 0.154 s (2 threads)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    levels = model.sdf.levels
    start_levels = int(opts["start_levels"])
    per_level = max(1, int(iterations * opts["coarse_to_fine"]) // max(1, levels - start_levels))
    anneal_steps = max(1, int(iterations * opts["anneal"]))
    # Only a mask-free fit from the located object's hull waits for the colours; the blind sphere has far to go.
    frozen_steps = int(iterations * opts["geometry_warmup"]) if split.masks is None and data.hints is not None else 0
    rays_seen, started = 0, time.perf_counter()
    for step in range(iterations):
        frozen = step < frozen_steps  # the colours learn first; the surface and its sharpness wait
        progress.update("optimizing the SDF", step, iterations)
        model.sdf.set_active_levels(start_levels + step // per_level)
        decay = 0.1 ** (step / iterations) * min(1.0, (step + 1) / WARMUP)
        for group, base in zip(optimizer.param_groups, base_lrs, strict=True):
            group["lr"] = base * decay
        origins, directions, target, mask = sample_pixels(split, int(opts["rays"]), generator)
        out = render_rays(model, cache, origins, directions, lo=lo, hi=hi, opts=opts,
                          anneal=min(1.0, step / anneal_steps), training=True, frozen_geometry=frozen)
        if mask is None:
            background = model.background(directions)
        else:
            background = torch.rand(len(origins), 3, generator=generator).to(origins.device)
            target = target * mask[:, None] + background * (1 - mask[:, None])
        clear = 1.0 - out["opacity"][:, None]
        loss = ((out["colour"] + clear * background - target).abs().mean()
                + (out["albedo"] + clear.detach() * background.detach() - target).abs().mean())
        if not frozen:
            free = lo + torch.rand(len(origins), 3, generator=generator).to(lo.device) * (hi - lo)  # [R, 3]
            free_gradient = model.sdf.with_gradient(free)[2]
            eikonal = out["eikonal"] + ((free_gradient.norm(dim=-1) - 1.0) ** 2).mean()
            loss = loss + opts["eikonal_weight"] * eikonal
        if mask is not None:
            loss = loss + opts["mask_weight"] * F.binary_cross_entropy(out["opacity"].clamp(1e-4, 1 - 1e-4), mask)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()  # Adam leaves the parameters without a gradient (frozen) as they are
        rays_seen += len(origins)
        if (step + 1) % int(opts["update_every"]) == 0:
            cache.update(model.sdf)
    seconds = time.perf_counter() - started
    progress.update("optimizing the SDF", iterations, iterations)
    model.sdf.set_active_levels(levels)
    cache.update(model.sdf)
    table = {"table_offset": round(float(model.table_offset.detach()), 5)} if model.has_table else {}
    return {**table, "iterations": iterations, "rays": rays_seen,
            "inv_s": round(float(model.log_inv_s.detach().exp()), 2),
            "seconds_per_iteration": round(seconds / max(1, iterations), 4),
            "rays_per_second": round(rays_seen / max(seconds, 1e-9), 1)}


@torch.no_grad()
def extract_mesh(model: NeuSModel, cache: SurfaceCache, hi: torch.Tensor, resolution: int, progress_step
                 ) -> trimesh.Trimesh:
    """Marching cubes of the SDF on cell centres of a ``resolution`` grid over the cache's box; the
    network is evaluated only within ``EXTRACT_BAND`` cache cells of the cached surface. With a
    table, the object alone: the field cut by the table top, closed where the object stands on it."""
    points, shape = grid_points(cache.lo, hi, resolution)
    cell = float((hi - cache.lo).max()) / resolution
    sdf = cache.lookup(points)
    band = (sdf.abs() < EXTRACT_BAND * cache.cell).nonzero()[:, 0]
    chunk = 65536
    for i in range(0, len(band), chunk):
        progress_step(i, len(band))
        index = band[i:i + chunk]
        sdf[index] = model.sdf(points[index])[0]
    progress_step(len(band), len(band))
    if model.has_table:  # below the table top is outside
        sdf = torch.maximum(sdf, -model.height(points))
    volume = (0.5 - sdf).reshape(shape).cpu().numpy()  # "occupancy" above 0.5 inside, for extract_surface
    if volume.max() <= 0.5:
        raise InputError("NeuS found no surface in the region of interest")
    return extract_surface(volume, points[0].cpu().numpy(), cell)


def remove_support_plane(mesh: trimesh.Trimesh, lo: np.ndarray, hi: np.ndarray, camera_centres: np.ndarray, *,
                         generator: np.random.Generator, tries: int = 300, rounds: int = 3) -> trimesh.Trimesh:
    """Cut away the surface the object stands on, for mask-free data.

    RANSAC finds the plane holding the most vertices (tolerance 1% of the box). It counts as a
    support only when its inliers span at least 80% of the box along two axes (a table crossing the
    whole region of interest, not a flat face of the object). Faces on the far side of the plane
    from the median camera, or within the tolerance of it, are removed. Repeated up to ``rounds``
    times (a table is a slab: its underside may be found before its top); the largest piece is kept.
    """
    tolerance = 0.01 * float((hi - lo).max())
    for _ in range(rounds):
        plane = spanning_plane(mesh.vertices, lo, hi, tolerance, generator=generator, tries=tries)
        if plane is None:
            break
        normal, origin = plane
        if (np.median(camera_centres, axis=0) - origin) @ normal < 0:
            normal = -normal
        keep = np.nonzero((mesh.triangles_center - origin) @ normal > tolerance)[0]
        if len(keep) == 0:
            break
        mesh = mesh.submesh([keep], append=True)
    pieces = mesh.split(only_watertight=False)
    return max(pieces, key=lambda p: p.area) if len(pieces) > 1 else mesh


def spanning_plane(vertices: np.ndarray, lo: np.ndarray, hi: np.ndarray, tolerance: float, *,
                   generator: np.random.Generator, tries: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The RANSAC plane ``(unit normal [3], point [3])`` with the most of ``vertices [V, 3]`` within
    ``tolerance``, if those span at least 80% of the box ``[lo, hi]`` along two axes; else None."""
    sample = vertices[generator.choice(len(vertices), min(len(vertices), 20000), replace=False)]
    best, best_count = None, 0
    for _ in range(tries):
        a, b, c = sample[generator.choice(len(sample), 3, replace=False)]
        normal = np.cross(b - a, c - a)
        if np.linalg.norm(normal) < 1e-12:
            continue
        normal /= np.linalg.norm(normal)
        count = int((np.abs((sample - a) @ normal) < tolerance).sum())
        if count > best_count:
            best, best_count = (normal, a), count
    if best is None:
        return None
    inliers = sample[np.abs((sample - best[1]) @ best[0]) < tolerance]
    spans = (inliers.max(0) - inliers.min(0)) / (hi - lo)
    return best if (spans >= 0.8).sum() >= 2 else None


def run_neus(data: MethodInput) -> MethodOutput:
    """The ``neus`` method; options are documented in the presets of :data:`NEUS`."""
    opts, device = data.options, data.device
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    lo = torch.tensor(data.normalization.box_min, device=device)
    hi = torch.tensor(data.normalization.box_max, device=device)
    mask_free = data.split.masks is None
    target = SurfaceCache(lo, hi, int(opts["init_resolution"]))
    target.values = initial_sdf(data, target, int(opts["init_resolution"]))
    hints = data.hints if mask_free else None
    model = NeuSModel(opts, mask_free, hull_start=not mask_free or hints is not None,
                      table=None if hints is None else (hints.ground, hints.up)).to(device)
    model.sdf.set_active_levels(int(opts["start_levels"]))
    fit_to_cache(model, target, data, generator)
    cache = SurfaceCache(lo, hi, int(opts["grid"]))
    cache.update(model.sdf)
    stats = train(model, cache, data, generator)
    data.progress.update("extracting the surface", 0, 1)
    mesh = extract_mesh(model, cache, hi, int(opts["mesh_resolution"]), data.progress.stage("extracting the surface"))
    if mask_free and hints is None:  # the table was learned as part of the field: find it and cut it away
        mesh = remove_support_plane(mesh, lo.cpu().numpy(), hi.cpu().numpy(),
                                    data.split.cameras.centers.cpu().numpy(), generator=np.random.default_rng(0))
    start = "visual hull" if not mask_free else "located object" if data.hints is not None else "sphere"
    stats.update({"mask_free": mask_free, "start": start, "mesh_resolution": int(opts["mesh_resolution"]),
                  "faces_extracted": len(mesh.faces)})
    albedo = model.colour.albedo
    return MethodOutput(mesh.vertices.astype(np.float32), mesh.faces.astype(np.int32), stats,
                        albedo=lambda points: albedo_colours(albedo, points))


_COMMON = {"levels": 8, "finest": 256, "log2_table": 16, "samples": 16, "band": 1.5, "band_sharp": 4.0,
           "lr": 5e-3, "lr_mlp": 1e-3, "lr_inv_s": 1e-2, "inv_s_init": 100.0, "inv_s_init_mask_free": 30.0,
           "eikonal_weight": 0.1, "mask_weight": 0.1,
           "start_levels": 4, "coarse_to_fine": 0.4, "anneal": 0.1, "update_every": 50, "init_iterations": 150,
           "init_resolution": 192, "geometry_warmup": 0.15}

NEUS = Method(
    name="neus",
    title="NeuS",
    description="Optimizes a neural SDF by volume rendering: concavities and thin parts, works without masks "
                "(objects on a table); minutes.",
    needs_masks=False,
    presets={
        "fast": {**_COMMON, "grid": 64, "iterations": 600, "rays": 2048, "mesh_resolution": 192,
                 "faces": 20_000, "texture_size": 1024},
        "balanced": {**_COMMON, "grid": 64, "iterations": 5000, "rays": 4096, "mesh_resolution": 256,
                     "faces": 20_000, "texture_size": 1024},
        "quality": {**_COMMON, "grid": 96, "iterations": 5000, "rays": 8192, "mesh_resolution": 384,
                    "faces": 40_000, "texture_size": 2048},
    },
    run=run_neus,
)
