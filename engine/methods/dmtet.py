"""DMTet: an SDF on a deformable tetrahedral grid, optimized through the differentiable rasterizer.

The technique of nvdiffrec (Munkberg et al. 2022, "Extracting Triangular 3D Models, Materials, and
Lighting From Images"), reimplemented in our own code:

1. A tetrahedral grid over the region of interest (six tets per cube), kept only where the surface
   can be: inside the visual hull and a few cells around it. The SDF starts as the signed distance
   to the visual hull, so optimization starts close to the answer.
2. Per-vertex SDF values and offsets bounded by ``tanh`` (less than half a cell, so tets never
   invert), optimized with Adam together with an albedo field (hash grid + small MLP).
3. Each step: marching tetrahedra -> rasterize a few training views -> albedo at the visible
   surface points -> silhouette antialiasing -> losses: L1 on tone-mapped colour over a random
   background, L2 on coverage against the mask, DMTet's SDF sign regularizer (decaying) and
   albedo smoothness.
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

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
import trimesh

from ..carving import hull_sdf
from ..data.dataset import DatasetSplit
from ..fields import AlbedoField, albedo_colours
from ..geometry import TetGrid, marching_tets, regular_tet_grid, sdf_sign_loss, unique_edges
from ..geometry.cleanup import drop_small_pieces
from ..geometry.lattice_surface import lattice_surface
from ..geometry.tet_grid import grid_shape
from ..render import antialias, interpolate, rasterize
from .base import Method, MethodInput, MethodOutput

# Cells kept outside the visual hull (the surface never moves out of the hull by more than this).
BAND_OUTSIDE = 3
# The progress stage of the first pass (benchmarks time it).
OPTIMIZE_STAGE = "optimizing the tetrahedral grid"
# Largest vertex offset, as a fraction of the cell (below 0.5 the tetrahedra cannot invert).
MAX_DEFORM = 0.45


def tonemap(rgb: torch.Tensor) -> torch.Tensor:
    """nvdiffrec's tone map ``srgb(log(x + 1))`` applied before the colour L1 (compresses highlights)."""
    x = torch.log1p(rgb.clamp_min(0.0))
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp_min(0.0031308) ** (1 / 2.4) - 0.055)


def band_grid(lattice_sdf: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, resolution: int) -> tuple[
        TetGrid, torch.Tensor]:
    """The tet grid of the cubes with a corner closer than ``BAND_OUTSIDE`` cells to the inside, and
    the SDF at its vertices (``[V]``)."""
    cell = float((hi - lo).max()) / resolution
    corner_min = -F.max_pool3d(-lattice_sdf[None, None], kernel_size=2, stride=1)[0, 0]  # [X, Y, Z]
    grid = regular_tet_grid(lo, hi, resolution, keep=corner_min < BAND_OUTSIDE * cell)
    lattice = ((grid.vertices - lo) / cell).round().long()
    return grid, lattice_sdf[lattice[:, 0], lattice[:, 1], lattice[:, 2]]


def resample_lattice(grid: TetGrid, sdf: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, resolution: int
                     ) -> torch.Tensor:
    """The SDF of ``grid`` (``[V]``) trilinearly resampled at the lattice nodes of a finer grid."""
    far = float(sdf.detach().max())
    dense = torch.full(grid.node_index.shape, far, device=sdf.device)
    used = grid.node_index >= 0
    dense[used] = sdf.detach()[grid.node_index[used]]
    shape = grid_shape(lo, hi, resolution)
    cell = float((hi - lo).max()) / resolution
    axes = [lo[a] + torch.arange(shape[a] + 1, device=lo.device, dtype=lo.dtype) * cell for a in range(3)]
    nodes = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1)  # [X'+1, Y'+1, Z'+1, 3]
    extent = (torch.tensor(grid.node_index.shape, device=lo.device) - 1) * grid.cell
    normalized = (nodes - grid.origin) / extent * 2.0 - 1.0  # grid_sample's [-1, 1] over the old lattice
    sample = F.grid_sample(dense[None, None], normalized.flip(-1)[None], mode="bilinear",
                           padding_mode="border", align_corners=True)
    return sample[0, 0]


@dataclass
class Batch:
    """The views of one optimization step."""

    cameras: object
    target: torch.Tensor  # [B, H, W, 3] images over the random background
    mask: torch.Tensor  # [B, H, W]
    background: torch.Tensor  # [B, 1, 1, 3]


def sample_batch(split: DatasetSplit, size: int, generator: torch.Generator) -> Batch:
    index = torch.randperm(len(split), generator=generator)[:size].tolist()
    device = split.images.device
    background = torch.rand(len(index), 1, 1, 3, generator=generator).to(device)
    mask = split.masks[index]
    target = split.images[index] * mask[..., None] + background * (1 - mask[..., None])
    return Batch(split.cameras[index], target, mask, background)


def render_losses(vertices: torch.Tensor, faces: torch.Tensor, albedo: AlbedoField, batch: Batch
                  ) -> dict[str, torch.Tensor]:
    """Colour and mask losses of the mesh ``(vertices [M, 3], faces [K, 3])`` rendered at ``batch``."""
    frags = rasterize(vertices, faces, batch.cameras)
    covered = frags.face_id >= 0  # [B, H, W]
    points = interpolate(vertices, faces, frags)[covered]  # [P, 3]
    colour = batch.background.expand(*covered.shape, 3).clone()  # [B, H, W, 3]
    colour[covered] = albedo(points)
    rgba = torch.cat([colour, covered[..., None].float()], dim=-1)
    rgba = antialias(rgba, frags, vertices, faces, batch.cameras)  # [B, H, W, 4]
    losses = {
        "colour": (tonemap(rgba[..., :3]) - tonemap(batch.target)).abs().mean(),
        "mask": ((rgba[..., 3] - batch.mask) ** 2).mean(),
    }
    jitter = points[torch.randperm(len(points), device=points.device)[:4096]]
    losses["albedo_smooth"] = (albedo(jitter) - albedo(jitter + torch.randn_like(jitter) * 0.01)).abs().mean()
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


def run_dmtet(data: MethodInput) -> MethodOutput:
    """The ``dmtet`` method; options are documented in the presets of :data:`DMTET`."""
    opts, split, progress, device = data.options, data.split, data.progress, data.device
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    lo = torch.tensor(data.normalization.box_min, device=device)
    hi = torch.tensor(data.normalization.box_max, device=device)
    # Pad by the band so the grid can hold the surface a few cells outside the hull's box.
    resolution = int(opts["resolution"])
    pad = BAND_OUTSIDE * float((hi - lo).max()) / resolution
    lo, hi = lo - pad, hi + pad

    lattice_sdf = hull_sdf(split, lo, hi, resolution, progress.stage("carving"))
    albedo = AlbedoField().to(device)
    app_optimizer = torch.optim.Adam(albedo.parameters(), lr=opts["lr_albedo"], betas=(0.9, 0.99), eps=1e-15)
    iterations = int(opts["iterations"])
    refine_at = iterations // 2 if opts["refine_factor"] > 1 else -1
    stats: dict[str, object] = {"grid_resolutions": [resolution]}

    grid, sdf, deform, geo_optimizer, edges = None, None, None, None, None
    for step in range(iterations):
        if grid is None or step == refine_at:
            if step == refine_at:
                resolution = round(resolution * opts["refine_factor"])
                lattice_sdf = resample_lattice(grid, sdf, lo, hi, resolution)
                stats["grid_resolutions"].append(resolution)
            grid, start_sdf = band_grid(lattice_sdf, lo, hi, resolution)
            sdf = torch.nn.Parameter(start_sdf.clone())
            deform = torch.nn.Parameter(torch.zeros_like(grid.vertices))
            geo_optimizer = torch.optim.Adam([{"params": [sdf], "lr": opts["lr_sdf"] * grid.cell},
                                              {"params": [deform], "lr": opts["lr_deform"]}],
                                             eps=opts["adam_eps"])
            edges, _ = unique_edges(grid.tets)
            stats[f"tets_at_{resolution}"] = len(grid.tets)
        progress.update(OPTIMIZE_STAGE, step, iterations)
        vertices = grid.vertices + MAX_DEFORM * grid.cell * torch.tanh(deform)
        mesh_vertices, faces = marching_tets(vertices, sdf, grid.tets)
        if len(faces) == 0:
            break
        losses = render_losses(mesh_vertices, faces, albedo, sample_batch(split, opts["batch"], generator))
        decay = max(0.0, 1.0 - step / (0.5 * iterations))  # nvdiffrec's schedule: 0.2 down to 0.01
        losses["sdf_sign"] = sdf_sign_loss(sdf / grid.cell, edges) * (0.01 + 0.19 * decay)
        losses["sdf_smooth"] = (scalar_laplacian(sdf, edges) ** 2).mean() / grid.cell**2
        total = (losses["colour"] + opts["mask_weight"] * losses["mask"] + losses["sdf_sign"]
                 + opts["albedo_smooth_weight"] * losses["albedo_smooth"]
                 + opts["sdf_smooth_weight"] * losses["sdf_smooth"])
        geo_optimizer.zero_grad(set_to_none=True)
        app_optimizer.zero_grad(set_to_none=True)
        total.backward()
        geo_optimizer.step()
        app_optimizer.step()
    progress.update(OPTIMIZE_STAGE, iterations, iterations)

    with torch.no_grad():
        mesh_vertices, faces = lattice_surface(grid, sdf, MAX_DEFORM * grid.cell * torch.tanh(deform))
    mesh_vertices, faces = keep_large_pieces(mesh_vertices, faces)
    mesh_vertices = taubin(mesh_vertices, faces, int(opts["smoothing"]))
    mesh_vertices = refine_vertices(mesh_vertices, faces, albedo, app_optimizer=app_optimizer, data=data,
                                    generator=generator)
    mesh_vertices = taubin(mesh_vertices, faces, int(opts["smoothing"]))
    stats["faces"] = len(faces)
    return MethodOutput(mesh_vertices.cpu().numpy().astype(np.float32), faces.cpu().numpy().astype(np.int32),
                        stats, albedo=lambda points: albedo_colours(albedo, points))


def keep_large_pieces(vertices: torch.Tensor, faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop connected pieces with less than 2% of the area (floaters)."""
    mesh = drop_small_pieces(trimesh.Trimesh(vertices.cpu().numpy(), faces.cpu().numpy(), process=True), 0.02)
    return (torch.tensor(mesh.vertices, dtype=torch.float32, device=vertices.device),
            torch.tensor(mesh.faces, dtype=torch.long, device=vertices.device))


def taubin(vertices: torch.Tensor, faces: torch.Tensor, iterations: int) -> torch.Tensor:
    """``[M, 3]`` vertices after ``iterations`` of Taubin smoothing (trimesh; no shrinkage)."""
    if iterations <= 0:
        return vertices
    mesh = trimesh.Trimesh(vertices.cpu().numpy(), faces.cpu().numpy(), process=False)
    trimesh.smoothing.filter_taubin(mesh, lamb=0.5, nu=0.53, iterations=iterations)
    return torch.tensor(mesh.vertices, dtype=torch.float32, device=vertices.device)


def refine_vertices(vertices: torch.Tensor, faces: torch.Tensor, albedo: AlbedoField, *,
                    app_optimizer: torch.optim.Optimizer, data: MethodInput, generator: torch.Generator
                    ) -> torch.Tensor:
    """Second pass: move the vertices of the fixed-topology mesh, regularized by the squared uniform
    Laplacian of the positions (in units of the mean edge length), which irons out the staircase of
    marching tetrahedra while the image losses keep the shape."""
    opts = data.options
    steps = int(opts["refine_iterations"])
    offset = torch.nn.Parameter(torch.zeros_like(vertices))
    optimizer = torch.optim.Adam([offset], lr=opts["lr_vertices"])
    cell = float(torch.linalg.norm(vertices[faces[:, 0]] - vertices[faces[:, 1]], dim=-1).mean())
    for step in range(steps):
        data.progress.update("refining the mesh", step, steps)
        moved = vertices + offset
        losses = render_losses(moved, faces, albedo, sample_batch(data.split, opts["batch"], generator))
        laplacian = (uniform_laplacian(moved, faces) ** 2).sum(-1).mean() / cell**2
        total = (losses["colour"] + opts["mask_weight"] * losses["mask"]
                 + opts["albedo_smooth_weight"] * losses["albedo_smooth"] + opts["laplacian_weight"] * laplacian)
        optimizer.zero_grad(set_to_none=True)
        app_optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        app_optimizer.step()
    data.progress.update("refining the mesh", steps, steps)
    return (vertices + offset).detach()


_COMMON = {"batch": 2, "lr_sdf": 0.01, "lr_deform": 0.01, "lr_albedo": 0.01, "lr_vertices": 1e-3,
           "mask_weight": 5.0, "albedo_smooth_weight": 0.03, "laplacian_weight": 0.2, "smoothing": 5, "adam_eps": 1e-4,
           "sdf_smooth_weight": 0.1,
           "refine_factor": 1.5}

DMTET = Method(
    name="dmtet",
    title="DMTet",
    description="Optimizes an SDF on a deformable tetrahedral grid against the images: concavities and "
                "sharp detail the hull misses; minutes.",
    needs_masks=True,
    presets={
        "fast": {**_COMMON, "resolution": 48, "iterations": 300, "refine_iterations": 100,
                 "faces": 20_000, "texture_size": 1024},
        "balanced": {**_COMMON, "resolution": 64, "iterations": 600, "refine_iterations": 200,
                     "faces": 20_000, "texture_size": 1024},
        "quality": {**_COMMON, "resolution": 96, "iterations": 1500, "refine_iterations": 400, "batch": 4,
                    "faces": 40_000, "texture_size": 2048},
    },
    run=run_dmtet,
)
