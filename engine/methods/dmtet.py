"""DMTet: an SDF on a deformable tetrahedral grid, optimized through the differentiable rasterizer.

The technique of nvdiffrec (Munkberg et al. 2022, "Extracting Triangular 3D Models, Materials, and
Lighting From Images"), reimplemented in our own code:

1. A tetrahedral grid over the region of interest (six tets per cube), kept only where the surface
   can be: inside the visual hull (all of it, not only near its surface) and a few cells around it.
   The SDF starts as the signed distance to the visual hull opened where the images show empty
   space (:mod:`engine.free_space`: lines of sight to triangulated points, optionally photo
   carving), so optimization starts close to the answer, hollows included. What lets the topology
   open: every node inside the hull is a free SDF value, the carved start already has the hollow,
   and the ``free_space`` loss pushes the SDF positive wherever a line of sight crosses. When the
   carve opened a hollow (:attr:`engine.free_space.CarvedStart.opened_hollow`), the grid pass runs longer and the
   points' depths hold the inner walls (``hollow_steps_factor``, ``hollow_sparse_depth_weight``):
   no silhouette constrains those walls, and in the default steps they stay lumpy.
2. Per-vertex SDF values and offsets bounded by ``tanh`` (less than half a cell, so tets never
   invert), optimized with Adam together with an albedo field (hash grid + small MLP).
3. Each step: marching tetrahedra -> rasterize a few training views -> albedo at the visible
   surface points -> silhouette antialiasing -> losses: L1 on tone-mapped colour over a random
   background, L2 on coverage against the mask, DMTet's SDF sign regularizer (decaying), albedo
   smoothness, and the free-space terms (``free_space``, ``sparse_depth``, :mod:`engine.free_space.losses`).
4. Halfway, the grid is refined (resolution x ``refine_factor``) and the SDF carried over.
5. The final surface is extracted by marching cubes on the node values (``lattice_surface``:
   smoother and lighter than the marching-tetrahedra mesh), floaters dropped, Taubin-smoothed.
6. Second pass on that mesh, topology fixed: vertex positions with a Laplacian term, then Taubin
   smoothing again. The albedo field keeps learning and is offered to the pipeline for baking.

All geometry lives in the unit volume (see ``engine.roi``). Measured numbers are in BENCHMARKS.md.

Decisions, from measurements on the shared datasets:

* On spot's mostly white texture the image gradients of the SDF are tiny and noisy (median ~1e-6,
  90th percentile ~5e-5 per value); with Adam's default eps (1e-8) every such value takes a
  full-size step and the surface gets bumpy (NC 0.905). ``adam_eps`` = 1e-4 damps the weak
  gradients and keeps the strong ones (NC 0.965, rocker-arm unchanged).
* Extracting with marching tetrahedra left the second pass a mesh of slivers (spot: Chamfer 0.0036,
  NC 0.965 at the end); marching cubes on the same values plus Taubin steps before and after the
  second pass reach 0.0032 / 0.989 and help every object.
* The node offsets learn at ``lr_deform`` 0.01 (before ``tanh``); against frozen offsets this was
  neutral on spot, rocker-arm and fandisk (Chamfer within 0.00006). Before ``adam_eps`` was raised
  they made the surface noisy.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
import trimesh

from ..cameras import Cameras
from ..data.dataset import DatasetSplit
from ..fields import AlbedoField, albedo_colours
from ..free_space import CarvedStart, FreeSpaceOptions, SparsePoints, carved_start, find_free_space
from ..free_space.losses import free_space_loss, sparse_depth_loss
from ..free_space.points import SIGHT_MARGIN
from ..geometry import TetGrid, marching_tets, regular_tet_grid, sdf_sign_loss, unique_edges
from ..geometry.cleanup import drop_small_pieces, taubin_smooth
from ..geometry.lattice_surface import lattice_surface
from ..losses import LossLog, depth_normal_losses, descend, weighted_sum, without_off_maps
from ..options import check_presets, option
from ..render import antialias, interpolate, rasterize
from ..render.maps import surface_normals
from ..roi import Normalization
from ..shading.colour import srgb_decode, tonemap
from ..shading.material import PBRMaterial
from ..shading.options import PBROptions, pbr_weights
from ..shading.rendering import render_material
from ..shading.visibility import mesh_occlusion
from ..utils.math import lattice_nodes
from .base import Method, MethodInput, MethodOutput

# The progress stages of the two passes (benchmarks time the first).
OPTIMIZE_STAGE = "optimizing the tetrahedral grid"
REFINE_STAGE = "refining the mesh"
# Surface points per step at which the albedo smoothness is measured.
SMOOTHNESS_POINTS = 4096
# Points per step on the lines of sight at which the free-space loss is measured.
FREE_SPACE_POINTS = 4096


@dataclass(frozen=True)
class DMTetOptions(FreeSpaceOptions, PBROptions):
    """Options of the ``dmtet`` method; the defaults are the ``balanced`` preset."""

    resolution: int = option(64, "Tetrahedral grid cubes on the longest side of the region of interest (before "
                             "the refinement).", unit="cells", min=8, max=512)
    refine_factor: float = option(1.5, "Halfway, the grid is refined by this factor and the SDF carried over "
                                  "(1: no refinement).", min=1.0, max=4.0)
    band_outside: int = option(3, "Cubes kept outside the visual hull: the surface cannot move further out.",
                               unit="cells", min=1, max=32)
    max_deform: float = option(0.45, "Largest node offset, as a share of the cell (below 0.5 no tetrahedron "
                               "inverts).", min=0.0, max=0.49)
    iterations: int = option(600, "Optimization steps on the tetrahedral grid.", unit="steps", min=1)
    refine_iterations: int = option(200, "Steps of the second pass on the extracted mesh's vertices.",
                                    unit="steps", min=0)
    batch: int = option(2, "Training views rendered per step.", unit="views", min=1, max=64)
    lr_sdf: float = option(0.01, "Adam learning rate of the node SDF values, in cells per step.", min=0.0)
    lr_deform: float = option(0.01, "Adam learning rate of the node offsets (before tanh).", min=0.0)
    lr_albedo: float = option(0.01, "Adam learning rate of the albedo field.", min=0.0)
    lr_vertices: float = option(1e-3, "Adam learning rate of the second pass's vertex offsets.",
                                unit="unit-volume units", min=0.0)
    adam_eps: float = option(1e-4, "Adam's eps for the SDF and offsets: damps the tiny, noisy image gradients of "
                             "uniform surfaces.", min=0.0)
    mask_weight: float = option(5.0, "Weight of the L2 between the antialiased coverage and the mask.", min=0.0)
    depth_weight: float = option(10.0, "Weight of the L1 between the rendered depth and the views' depth maps, in "
                                 "unit-volume units (only when the dataset has depth maps; 0: off).", min=0.0)
    normal_weight: float = option(1.0, "Weight of 1 - cos between the rendered face normals and the views' normal "
                                  "maps (only when the dataset has normal maps; 0: off).", min=0.0)
    sdf_smooth_weight: float = option(0.1, "Weight of the squared Laplacian of the node SDF (in cells).", min=0.0)
    sdf_sign_start: float = option(0.2, "Weight of DMTet's SDF sign regularizer at the first step.", min=0.0)
    sdf_sign_end: float = option(0.01, "Weight of the sign regularizer once it has decayed.", min=0.0)
    sdf_sign_decay: float = option(0.5, "Share of the steps over which the sign weight decays linearly.",
                                   min=0.0, max=1.0)
    laplacian_weight: float = option(0.2, "Weight of the second pass's squared uniform Laplacian (in mean edge "
                                     "lengths).", min=0.0)
    smoothing: int = option(5, "Taubin smoothing iterations before and after the second pass.", unit="iterations",
                            min=0, max=100)
    min_piece_area: float = option(0.02, "Connected pieces with less than this share of the area are dropped.",
                                   min=0.0, max=1.0)
    # The bowl (balanced): 600 steps Chamfer-L1 0.0081, F@0.5% 0.864 with the points' depths; 1200 steps 0.0056 / 0.966.
    hollow_steps_factor: float = option(2.0, "When the carved start opened a hollow (the carve emptied at least 10% "
                                        "of the hull), the grid pass runs this many times `iterations`: the inner "
                                        "walls, which no silhouette holds, settle slower than the outside.",
                                        min=1.0, max=8.0)
    hollow_sparse_depth_weight: float = option(1.0, "When the carved start opened a hollow, `sparse_depth_weight` is "
                                               "at least this (the points on the inner walls hold them).", min=0.0)


def grid_box(normalization: Normalization, opts: DMTetOptions, device: torch.device | str = "cpu"
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lo [3], hi [3])`` unit-volume corners of DMTet's first grid: the object's box padded by
    ``opts.band_outside`` cells of ``opts.resolution``, so the grid can hold the surface a few cells
    outside the hull's box."""
    lo = torch.tensor(normalization.box_min, device=device)
    hi = torch.tensor(normalization.box_max, device=device)
    pad = opts.band_outside * float((hi - lo).max()) / opts.resolution
    return lo - pad, hi + pad


def band_grid(lattice_sdf: torch.Tensor, reach_sdf: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor,
              resolution: int, *, band_outside: int) -> tuple[TetGrid, torch.Tensor]:
    """The tet grid of the cubes with a corner closer than ``band_outside`` cells to the inside of
    ``lattice_sdf`` or of ``reach_sdf`` (the raw hull: a carved hollow keeps its tets, so the surface
    can grow back into it), and ``lattice_sdf`` at its vertices (``[V]``)."""
    cell = float((hi - lo).max()) / resolution
    nearest = torch.minimum(lattice_sdf, reach_sdf)
    corner_min = -F.max_pool3d(-nearest[None, None], kernel_size=2, stride=1)[0, 0]  # [X, Y, Z]
    grid = regular_tet_grid(lo, hi, resolution, keep=corner_min < band_outside * cell)
    lattice = ((grid.vertices - lo) / cell).round().long()
    return grid, lattice_sdf[lattice[:, 0], lattice[:, 1], lattice[:, 2]]


def sdf_at(grid: TetGrid, sdf: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """``[...]`` the node SDF of ``grid`` (``[V]``, differentiable) trilinearly interpolated on its
    rest lattice at ``points [..., 3]``; nodes the grid dropped count as its largest value (outside)."""
    far = sdf.detach().max()
    used = grid.node_index >= 0
    dense = torch.where(used, sdf[grid.node_index.clamp_min(0)], far)  # [X+1, Y+1, Z+1]
    extent = (torch.tensor(grid.node_index.shape, device=points.device) - 1) * grid.cell
    normalized = (points - grid.origin) / extent * 2.0 - 1.0  # grid_sample's [-1, 1] over the lattice
    sample = F.grid_sample(dense[None, None], normalized.flip(-1).reshape(1, 1, 1, -1, 3), mode="bilinear",
                           padding_mode="border", align_corners=True)
    return sample.reshape(points.shape[:-1])


def resample_lattice(grid: TetGrid, sdf: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, resolution: int
                     ) -> torch.Tensor:
    """The SDF of ``grid`` (``[V]``) trilinearly resampled at the lattice nodes of a finer grid."""
    return sdf_at(grid, sdf.detach(), lattice_nodes(lo, hi, resolution))


@dataclass
class Batch:
    """The views of one optimization step."""

    cameras: Cameras
    target: torch.Tensor  # [B, H, W, 3] images over the random background
    mask: torch.Tensor  # [B, H, W]
    background: torch.Tensor  # [B, 1, 1, 3]
    views: list[int]  # their indices in the split (for the sparse points)
    depths: torch.Tensor | None = None  # [B, H, W] along the optical axis, unit volume, 0 = none
    normals: torch.Tensor | None = None  # [B, H, W, 3] world frame, 0 = none


def sample_batch(split: DatasetSplit, size: int, generator: torch.Generator) -> Batch:
    """``size`` random views of ``split`` over random uniform backgrounds."""
    index = torch.randperm(len(split), generator=generator)[:size].tolist()
    device = split.images.device
    background = torch.rand(len(index), 1, 1, 3, generator=generator).to(device)
    mask = split.masks[index]
    target = split.images[index] * mask[..., None] + background * (1 - mask[..., None])
    views = split[index]
    return Batch(views.cameras, target, mask, background, index, views.depths, views.normals)


def render_losses(vertices: torch.Tensor, faces: torch.Tensor, albedo: AlbedoField | PBRMaterial, batch: Batch,
                  smooth_radius: float, *, sparse: SparsePoints | None = None, cell: float = 1.0
                  ) -> dict[str, torch.Tensor]:
    """The image terms of the mesh ``(vertices [M, 3], faces [K, 3])`` rendered at ``batch``:
    ``colour`` (L1 on tone-mapped colour over the background), ``mask`` (L2 of the antialiased
    coverage against the mask), ``albedo_smooth`` (L1 between the albedo at visible points and
    ``smooth_radius`` away); with depth or normal maps also ``depth`` and ``normal``
    (:func:`engine.losses.depth_normal_losses` on the covered pixels); with ``sparse`` points,
    ``sparse_depth`` (L1 in ``cell`` units between the rendered depth at their pixels in the batch's
    views and theirs). With a :class:`PBRMaterial` (``material=pbr``) the mesh is shaded under the
    learned light and compared in linear colour, and the material's and light's priors are added
    (:meth:`PBRMaterial.regularizers`)."""
    frags = rasterize(vertices, faces, batch.cameras)
    covered = frags.face_id >= 0  # [B, H, W]
    target = batch.target
    if isinstance(albedo, PBRMaterial):
        target = srgb_decode(target)
        colour, points = render_material(albedo, vertices, faces, frags, cameras=batch.cameras,
                                         background=batch.background, target=target)
    else:
        points = interpolate(vertices, faces, frags)[covered]  # [P, 3]
        colour = batch.background.expand(*covered.shape, 3).clone()  # [B, H, W, 3]
        colour[covered] = albedo(points)
    rgba = torch.cat([colour, covered[..., None].float()], dim=-1)
    rgba = antialias(rgba, frags, vertices, faces, batch.cameras)  # [B, H, W, 4]
    losses = {
        "colour": (tonemap(rgba[..., :3]) - tonemap(target)).abs().mean(),
        "mask": ((rgba[..., 3] - batch.mask) ** 2).mean(),
    }
    if batch.depths is not None or batch.normals is not None:
        normals = surface_normals(vertices, faces, frags, batch.cameras)[covered]
        losses.update(depth_normal_losses(frags.depth[covered], None if batch.depths is None else batch.depths[covered],
                                          normals, None if batch.normals is None else batch.normals[covered]))
    jitter = points[torch.randperm(len(points), device=points.device)[:SMOOTHNESS_POINTS]]
    if isinstance(albedo, PBRMaterial):
        losses.update(albedo.regularizers(jitter, smooth_radius))
    else:
        losses["albedo_smooth"] = (albedo(jitter) - albedo(jitter + torch.randn_like(jitter) * smooth_radius)
                                   ).abs().mean()
    if sparse is not None:
        slot, row, column, target = sparse.in_views(batch.views, batch.cameras)
        valid = frags.face_id[slot, row, column] >= 0
        losses["sparse_depth"] = sparse_depth_loss(frags.depth[slot, row, column], target, valid, cell)
    return losses


def scalar_laplacian(values: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """``[V]`` each value minus the mean over its grid neighbours (``edges [E, 2]``). Zero for a
    linear field on the Kuhn lattice (its neighbourhoods are symmetric), so on an SDF it penalizes
    only bumps: where the images say little (uniform colour), it keeps the surface smooth."""
    both = torch.cat([edges, edges.flip(1)])
    total = torch.zeros_like(values).index_add_(0, both[:, 0], values[both[:, 1]])
    degree = torch.zeros_like(values).index_add_(0, both[:, 0], torch.ones_like(values[both[:, 1]]))
    return values - total / degree.clamp_min(1)


def uniform_laplacian(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """``[M, 3]`` each vertex minus the mean of its neighbours (zero on a flat, regular patch)."""
    edges = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges = torch.cat([edges, edges.flip(1)])  # both directions
    total = torch.zeros_like(vertices).index_add_(0, edges[:, 0], vertices[edges[:, 1]])
    degree = torch.zeros(len(vertices), device=vertices.device).index_add_(
        0, edges[:, 0], torch.ones(len(edges), device=vertices.device))
    return vertices - total / degree.clamp_min(1)[:, None]


def loss_weights(opts: DMTetOptions, step: int) -> dict[str, float]:
    """The weight of each named term at ``step`` of the grid pass (and the second pass's, which
    has no SDF terms): the sign regularizer decays linearly from ``sdf_sign_start`` to
    ``sdf_sign_end`` over the first ``sdf_sign_decay`` share of the steps (nvdiffrec's schedule)."""
    decay = max(0.0, 1.0 - step / (opts.sdf_sign_decay * opts.iterations)) if opts.sdf_sign_decay > 0 else 0.0
    return {"colour": 1.0, "mask": opts.mask_weight,
            "sdf_sign": opts.sdf_sign_end + (opts.sdf_sign_start - opts.sdf_sign_end) * decay,
            "albedo_smooth": opts.albedo_smooth_weight, "sdf_smooth": opts.sdf_smooth_weight,
            "laplacian": opts.laplacian_weight, "depth": opts.depth_weight, "normal": opts.normal_weight,
            "free_space": opts.free_space_weight, "sparse_depth": opts.sparse_depth_weight, **pbr_weights(opts)}


def for_hollow(opts: DMTetOptions, start: CarvedStart) -> DMTetOptions:
    """``opts`` for the carved ``start``: unchanged unless it opened a hollow
    (:attr:`~engine.free_space.CarvedStart.opened_hollow`), else with ``hollow_steps_factor`` times the steps and
    ``sparse_depth_weight`` at least ``hollow_sparse_depth_weight``."""
    if not start.opened_hollow:
        return opts
    return replace(opts, iterations=max(1, round(opts.iterations * opts.hollow_steps_factor)),
                   sparse_depth_weight=max(opts.sparse_depth_weight, opts.hollow_sparse_depth_weight))


def run_dmtet(data: MethodInput) -> MethodOutput:
    """The ``dmtet`` method (options: :class:`DMTetOptions`).

    Named losses of the grid pass: ``colour``, ``mask``, ``sdf_sign`` (DMTet's sign regularizer,
    :func:`engine.geometry.sdf_sign_loss`), ``albedo_smooth``, ``sdf_smooth`` (squared Laplacian
    of the node SDF, :func:`scalar_laplacian`), ``free_space`` (the SDF, interpolated on the
    lattice, positive at ``FREE_SPACE_POINTS`` random points of the lines of sight) and
    ``sparse_depth`` (:func:`render_losses`); of the second pass:
    ``colour``, ``mask``, ``albedo_smooth``, ``sparse_depth`` and ``laplacian`` (see
    :func:`refine_vertices`); in both, ``depth`` and ``normal`` when the dataset has depth or normal
    maps, and the material's priors with ``material=pbr``. Weights: :func:`loss_weights`; a term
    whose weight is 0 is not computed.
    """
    opts: DMTetOptions = data.options
    data = replace(data, split=without_off_maps(data.split, opts.depth_weight, opts.normal_weight))
    split, progress, device = data.split, data.progress, data.device
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    resolution = opts.resolution
    lo, hi = grid_box(data.normalization, opts, device)

    free = find_free_space(split, split, lo=lo, hi=hi, opts=opts, progress=progress)
    start = carved_start(free, split, lo=lo, hi=hi, resolution=resolution, opts=opts, progress=progress)
    opts = for_hollow(opts, start)
    data = replace(data, options=opts)
    lattice_sdf = start.sdf
    sparse = free.sparse if opts.sparse_depth_weight > 0 else None
    lines = free.sparse.sight_lines(split.cameras) if opts.free_space_weight > 0 and free.sparse else None
    albedo = (PBRMaterial(opts) if opts.material == "pbr" else AlbedoField()).to(device)
    app_optimizer = torch.optim.Adam(appearance_groups(albedo, opts), betas=(0.9, 0.99), eps=1e-15)
    iterations = opts.iterations
    refine_at = iterations // 2 if opts.refine_factor > 1 else -1
    stats: dict[str, object] = {"grid_resolutions": [resolution], **free.summary(), "iterations": iterations,
                                "carved_share": round(start.opened_share, 4)}
    log = LossLog(iterations)

    grid, sdf, deform, geo_optimizer, edges = None, None, None, None, None
    for step in range(iterations):
        if grid is None or step == refine_at:
            if step == refine_at:
                resolution = round(resolution * opts.refine_factor)
                lattice_sdf = resample_lattice(grid, sdf, lo, hi, resolution)
                start = carved_start(free, split, lo=lo, hi=hi, resolution=resolution, opts=opts,
                                     progress=progress)
                stats["grid_resolutions"].append(resolution)
            grid, start_sdf = band_grid(lattice_sdf, start.hull_sdf, lo, hi, resolution,
                                         band_outside=opts.band_outside)
            sdf = torch.nn.Parameter(start_sdf.clone())
            deform = torch.nn.Parameter(torch.zeros_like(grid.vertices))
            geo_optimizer = torch.optim.Adam([{"params": [sdf], "lr": opts.lr_sdf * grid.cell},
                                              {"params": [deform], "lr": opts.lr_deform}],
                                             eps=opts.adam_eps)
            edges, _ = unique_edges(grid.tets)
            stats[f"tets_at_{resolution}"] = len(grid.tets)
        progress.update(OPTIMIZE_STAGE, step, iterations, log.latest() if progress.wants_update() else None)
        vertices = grid.vertices + opts.max_deform * grid.cell * torch.tanh(deform)
        mesh_vertices, faces = marching_tets(vertices, sdf, grid.tets)
        if len(faces) == 0:
            break
        if data.preview_due():
            data.send_preview(step, mesh_vertices, faces)
        image = render_losses(mesh_vertices, faces, albedo, sample_batch(split, opts.batch, generator),
                              opts.albedo_smooth_radius, sparse=sparse, cell=grid.cell)
        losses = {"colour": image.pop("colour"), "mask": image.pop("mask"),
                  "sdf_sign": sdf_sign_loss(sdf / grid.cell, edges), "albedo_smooth": image.pop("albedo_smooth"),
                  "sdf_smooth": (scalar_laplacian(sdf, edges) ** 2).mean() / grid.cell**2, **image}
        if lines is not None:
            empty = lines.sample(FREE_SPACE_POINTS, lo, hi, SIGHT_MARGIN, generator)
            losses["free_space"] = free_space_loss(sdf_at(grid, sdf, empty), grid.cell)
        log.add(step, losses)
        descend(weighted_sum(losses, loss_weights(opts, step)), geo_optimizer, app_optimizer)
    progress.update(OPTIMIZE_STAGE, iterations, iterations, log.latest())

    with torch.no_grad():
        mesh_vertices, faces = lattice_surface(grid, sdf, opts.max_deform * grid.cell * torch.tanh(deform))
    mesh_vertices, faces = keep_large_pieces(mesh_vertices, faces, opts.min_piece_area)
    mesh_vertices = taubin(mesh_vertices, faces, opts.smoothing)
    mesh_vertices, refine_losses = refine_vertices(mesh_vertices, faces, albedo, app_optimizer=app_optimizer,
                                                   data=data, generator=generator, sparse=sparse,
                                                   cell=grid.cell)
    mesh_vertices = taubin(mesh_vertices, faces, opts.smoothing)
    stats["faces"] = len(faces)
    pbr = isinstance(albedo, PBRMaterial)
    occlusion = mesh_occlusion(mesh_vertices, faces, offset=opts.shadow_offset) if pbr else None
    return MethodOutput(mesh_vertices.cpu().numpy().astype(np.float32), faces.cpu().numpy().astype(np.int32),
                        stats, losses={OPTIMIZE_STAGE: log.summary(), REFINE_STAGE: refine_losses},
                        albedo=None if pbr else lambda points: albedo_colours(albedo, points),
                        material=albedo.export(occlusion=occlusion) if pbr else None)


def appearance_groups(appearance: AlbedoField | PBRMaterial, opts: DMTetOptions) -> list[dict]:
    """Adam's parameter groups of the colour model: the albedo or material field at ``lr_albedo``, a
    PBR fit's light and specular level at ``lr_light``."""
    if isinstance(appearance, PBRMaterial):
        return [{"params": appearance.field.parameters(), "lr": opts.lr_albedo},
                {"params": appearance.light_parameters(), "lr": opts.lr_light}]
    return [{"params": appearance.parameters(), "lr": opts.lr_albedo}]


def keep_large_pieces(vertices: torch.Tensor, faces: torch.Tensor, min_area: float
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop connected pieces with less than ``min_area`` of the area (floaters)."""
    mesh = drop_small_pieces(trimesh.Trimesh(vertices.cpu().numpy(), faces.cpu().numpy(), process=True), min_area)
    return (torch.tensor(mesh.vertices, dtype=torch.float32, device=vertices.device),
            torch.tensor(mesh.faces, dtype=torch.long, device=vertices.device))


def taubin(vertices: torch.Tensor, faces: torch.Tensor, iterations: int) -> torch.Tensor:
    """``[M, 3]`` vertices after ``iterations`` of Taubin smoothing (:func:`taubin_smooth`)."""
    if iterations <= 0:
        return vertices
    mesh = taubin_smooth(trimesh.Trimesh(vertices.cpu().numpy(), faces.cpu().numpy(), process=False), iterations)
    return torch.tensor(mesh.vertices, dtype=torch.float32, device=vertices.device)


def refine_vertices(vertices: torch.Tensor, faces: torch.Tensor, albedo: AlbedoField, *,
                    app_optimizer: torch.optim.Optimizer, data: MethodInput, generator: torch.Generator,
                    sparse: SparsePoints | None = None, cell: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
    """Second pass: move the vertices of the fixed-topology mesh, regularized by the squared uniform
    Laplacian of the positions (in units of the mean edge length), which irons out the staircase of
    marching tetrahedra while the image losses keep the shape. Returns the moved vertices and the
    named losses (mean of the last steps)."""
    opts: DMTetOptions = data.options
    steps = opts.refine_iterations
    weights = loss_weights(opts, opts.iterations)
    log = LossLog(steps)
    offset = torch.nn.Parameter(torch.zeros_like(vertices))
    optimizer = torch.optim.Adam([offset], lr=opts.lr_vertices)
    cell = float(torch.linalg.norm(vertices[faces[:, 0]] - vertices[faces[:, 1]], dim=-1).mean())
    for step in range(steps):
        data.progress.update(REFINE_STAGE, step, steps, log.latest() if data.progress.wants_update() else None)
        moved = vertices + offset
        if data.preview_due():
            data.send_preview(opts.iterations + step, moved, faces)
        losses = render_losses(moved, faces, albedo, sample_batch(data.split, opts.batch, generator),
                               opts.albedo_smooth_radius, sparse=sparse, cell=cell)
        losses["laplacian"] = (uniform_laplacian(moved, faces) ** 2).sum(-1).mean() / cell**2
        log.add(step, losses)
        descend(weighted_sum(losses, weights), optimizer, app_optimizer)
    data.progress.update(REFINE_STAGE, steps, steps, log.latest())
    return (vertices + offset).detach(), log.summary()


DMTET = Method(
    name="dmtet",
    title="DMTet",
    description="Optimizes an SDF on a deformable tetrahedral grid against the images: concavities and "
                "sharp detail the hull misses; minutes.",
    needs_masks=True,
    options=DMTetOptions,
    presets=check_presets({
        "fast": DMTetOptions(resolution=48, iterations=300, refine_iterations=100),
        "balanced": DMTetOptions(),
        "quality": DMTetOptions(resolution=96, iterations=1500, refine_iterations=400, batch=4, faces=40_000,
                                texture_size=2048),
    }, "dmtet"),
    run=run_dmtet,
)
