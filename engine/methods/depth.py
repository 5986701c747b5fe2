"""Depth fusion: the views' depth maps fused into a truncated signed distance field, then marching cubes.

For datasets whose frames name depth maps (``depth_file_path``: RGB-D captures, or the Z pass of
Blender cameras; see ``engine.data.depth_maps``). Normal maps, when given, make each distance the
distance to the surface's tangent plane and weight each view by its incidence
(``engine.geometry.tsdf``). Masks are not needed: the region of interest comes from the masks when
there are some, else from the depth points (``engine.roi.depth_roi``). Seconds, not minutes.

The truncation distance is ``truncation`` cells, or three times the depth noise measured in the
maps when that is larger (:func:`depth_noise`), so noisy depth is averaged rather than cut, and the
fused field is smoothed in proportion to that noise before marching cubes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import trimesh
from scipy import ndimage

from ..cameras import Cameras
from ..carving import hull_occupancy
from ..data.dataset import DatasetSplit
from ..errors import InputError
from ..geometry.cleanup import taubin_smooth
from ..geometry.grid_surface import extract_surface
from ..geometry.tsdf import FusedVolume, fuse_depth_maps, seen_free
from ..options import MeshOptions, check_presets, option
from ..render.maps import render_depth_normals
from .base import Method, MethodInput, MethodOutput

STAGE = "fusing the depth maps"
# Smoothing narrower than this (in cells) is skipped: exact depth measures a noise of a few hundredths of a cell.
MIN_SMOOTHING = 0.3
# ``open_seen_through`` looks only at surface whose fused weight is below this share of the median.
SEEN_THROUGH_SHARE = 0.03


@dataclass(frozen=True)
class DepthOptions(MeshOptions):
    """Options of the ``depth`` method; the defaults are the ``balanced`` preset."""

    resolution: int = option(256, "Fusion grid cells on the longest side of the region of interest.", unit="cells",
                             min=16, max=1024)
    truncation: float = option(3.0, "Truncation distance of the signed distances, in cells (raised to three "
                               "times the measured depth noise when that is larger).", unit="cells", min=1.0,
                               max=64.0)
    behind_weight: float = option(0.0, "When the noise widens the truncation: weight of a depth sample at the "
                                  "truncation distance behind the surface, relative to one on it (linear in "
                                  "between): thin parts stay thin.", min=0.0, max=1.0)
    noise_smoothing: float = option(0.5, "Gaussian smoothing of the fused field, its width in multiples of the "
                                    "measured depth noise (0: none).", min=0.0, max=10.0)
    incidence_power: float = option(1.0, "Each view's weight is the cosine between its ray and the surface normal "
                                    "to this power (with normal maps).", min=0.0, max=8.0)
    hull_resolution: int = option(64, "With masks: cells (longest side) of the coarse visual hull whose depth tells "
                                  "how deep inside it each depth sample lies.", unit="cells", min=8, max=512)
    hull_falloff: float = option(0.05, "With masks: a depth sample lying this far behind where its ray enters the "
                                 "visual hull counts 1/e as much (a view looking into a hollow scan through a hole).",
                                 unit="unit-volume units", min=0.0)
    use_normals: bool = option(True, "Use the normal maps, when the dataset has them, for the distances and the "
                               "weights.")
    smoothing: int = option(2, "Taubin smoothing iterations of the fused surface (volume-preserving).",
                            unit="iterations", min=0, max=100)
    open_seen_through: bool = option(True, "Remove the surface that no depth sample measured (fused weight below "
                                     "3% of the surface's median) where some view's depth sees past it: the caps "
                                     "that the filling of unmeasured space puts over the holes of a scan. Surface "
                                     "that no view saw at all (an unseen underside) stays closed.")
    open_unseen: float = option(0.0, "Faces where the fused weight is below this share of the surface's median "
                                "weight are removed whether or not a view sees past them, so all surface no view "
                                "measured stays open (0: only ``open_seen_through`` opens; 0.03 opens what no "
                                "depth sample saw).", min=0.0, max=1.0)


def depth_noise(depths: torch.Tensor) -> float:
    """The depth maps' noise (a standard deviation, in depth units): the median absolute second
    difference along rows where three neighbours have depth, scaled for Gaussian noise
    (``1.4826 / sqrt(6)``). Smooth surfaces give about their curvature's share, well below a cell."""
    left, centre, right = depths[..., :-2], depths[..., 1:-1], depths[..., 2:]
    valid = (left > 0) & (centre > 0) & (right > 0)
    second = (left - 2 * centre + right)[valid].abs()
    if len(second) == 0:
        return 0.0
    sample = second[torch.randperm(len(second), generator=torch.Generator().manual_seed(0))[:1_000_000]]
    return float(sample.median()) * 1.4826 / 6**0.5


def hull_trust(depths: torch.Tensor, cameras: Cameras, hull: tuple[np.ndarray, np.ndarray, float], falloff: float
               ) -> torch.Tensor:
    """``[N, H, W]`` how much each depth sample counts: ``exp(-inside / falloff)``, ``inside`` being
    how far (along the optical axis) the sample lies behind where its ray enters the visual hull
    (``hull``: its soft occupancy at the cell centres of a grid, the first centre and the cell size,
    as :func:`engine.carving.hull_occupancy` gives them). The
    surface an outside view sees lies on the hull or in a concavity just under it; a sample deep
    inside the hull is the inner side of a hollow scan seen through a hole (the bunny's underside),
    which would otherwise hollow the fused object out. Where all the views of a concavity agree,
    weighting them alike changes nothing."""
    mesh = extract_surface(*hull)
    entry, _ = render_depth_normals(torch.tensor(mesh.vertices, dtype=torch.float32, device=depths.device),
                                    torch.tensor(mesh.faces, device=depths.device), cameras)
    inside = (depths - entry).clamp_min(0.0)
    return torch.where(entry > 0, torch.exp(-inside / falloff), torch.ones_like(inside))


def unmeasured_vertices(mesh: trimesh.Trimesh, volume: FusedVolume, share: float) -> np.ndarray:
    """``[V]`` bool: the vertices of ``mesh`` where the fused weight (trilinear) is below ``share``
    of the median over the vertices: surface that only the filling of unmeasured space made."""
    weights = ndimage.map_coordinates(volume.weights, ((mesh.vertices - volume.origin) / volume.cell).T, order=1)
    return weights < share * float(np.median(weights))


def seen_through(mesh: trimesh.Trimesh, candidates: np.ndarray, split: DatasetSplit, volume: FusedVolume
                 ) -> np.ndarray:
    """``[V]`` bool: which of the ``candidates`` vertices some view sees past: its depth at the
    vertex's pixel lies beyond the vertex by more than twice the truncation band and a cell's
    diagonal (noisy depth has its band at three noise deviations: twice that, no stray sample reaches).
    Every view's measured depth counts here, also those that :func:`hull_trust` does not trust for
    the fusion (they are the views that look through a hole); the masks' background does not (a
    surface bloated past a silhouette by the smoothing is no hole)."""
    result = np.zeros(len(mesh.vertices), dtype=bool)
    index = np.flatnonzero(candidates)
    if len(index):
        points = torch.tensor(mesh.vertices[index], dtype=torch.float32, device=split.depths.device)
        margin = 2 * (volume.truncation + 3**0.5 * volume.cell)
        result[index] = seen_free(split.cameras, split.depths, points, margin).cpu().numpy()
    return result


def without_vertices(mesh: trimesh.Trimesh, removed: np.ndarray) -> trimesh.Trimesh:
    """``mesh`` without the faces that have a vertex in ``removed [V]`` (bool)."""
    kept = trimesh.Trimesh(mesh.vertices, mesh.faces[~removed[mesh.faces].any(axis=1)], process=False)
    kept.remove_unreferenced_vertices()
    if len(kept.faces) == 0:
        raise InputError("No part of the fused surface was measured by enough depth samples; lower open_unseen "
                         "or set open_seen_through=false")
    return kept


def run_depth(data: MethodInput) -> MethodOutput:
    """The ``depth`` method (options: :class:`DepthOptions`)."""
    opts: DepthOptions = data.options
    split = data.split
    if split.depths is None:
        raise InputError("The depth method needs depth maps: name one per frame with depth_file_path in the "
                         "camera file (or render the Z pass of the Blender cameras)")
    lo = torch.tensor(data.normalization.box_min, device=data.device)
    hi = torch.tensor(data.normalization.box_max, device=data.device)
    cell = float((hi - lo).max()) / opts.resolution
    noise = depth_noise(split.depths)
    widened = 3.0 * noise > opts.truncation * cell
    truncation = 3.0 * noise if widened else opts.truncation * cell
    lo, hi = lo - truncation - 2 * cell, hi + truncation + 2 * cell  # room for the band: the surface closes inside
    trust = None
    if split.masks is not None and opts.hull_falloff > 0:
        hull = hull_occupancy(split, lo, hi, opts.hull_resolution, data.progress.stage("carving"))
        if hull[0].max() <= 0.5:
            raise InputError("The visual hull is empty: the masks do not overlap in space")
        trust = hull_trust(split.depths, split.cameras, hull, opts.hull_falloff)
    normals = split.normals if opts.use_normals else None
    volume = fuse_depth_maps(split.cameras, split.depths, normals, lo=lo, hi=hi, resolution=opts.resolution,
                             truncation=truncation,
                             incidence_power=opts.incidence_power, pixel_weights=trust,
                             background=None if split.masks is None else split.masks < 0.5,
                             behind_weight=opts.behind_weight if widened else 1.0, on_view=data.progress.stage(STAGE))
    data.progress.update("surface", 0, 1)
    smoothing = opts.noise_smoothing * noise / volume.cell  # cells
    values = ndimage.gaussian_filter(volume.values, smoothing) if smoothing >= MIN_SMOOTHING else volume.values
    occupancy = 0.5 - 0.5 * values
    if occupancy.max() <= 0.5:
        raise InputError("The depth maps enclose no surface in the region of interest")
    mesh = taubin_smooth(extract_surface(occupancy, volume.origin, volume.cell), opts.smoothing)
    removed = np.zeros(len(mesh.vertices), dtype=bool)
    if opts.open_seen_through:
        removed |= seen_through(mesh, unmeasured_vertices(mesh, volume, SEEN_THROUGH_SHARE), split, volume)
    if opts.open_unseen > 0:
        removed |= unmeasured_vertices(mesh, volume, opts.open_unseen)
    if removed.any():
        mesh = without_vertices(mesh, removed)
    data.progress.update("surface", 1, 1)
    stats = {"grid": list(volume.values.shape), "cell_size_unit": round(volume.cell, 6),
             "truncation_unit": round(truncation, 6), "depth_noise_unit": round(noise, 6),
             "normals": normals is not None, "opened_vertices": int(removed.sum())}
    return MethodOutput(mesh.vertices.astype(np.float32), mesh.faces.astype(np.int32), stats)


DEPTH = Method(
    name="depth",
    title="Depth Fusion",
    description="Fuses the views' depth maps (RGB-D, or Blender's Z pass) into a signed distance field: seconds, "
                "needs depth maps, no masks.",
    needs_masks=False,
    options=DepthOptions,
    presets=check_presets({
        "fast": DepthOptions(resolution=160, faces=10_000, texture_size=512),
        "balanced": DepthOptions(),
        "quality": DepthOptions(resolution=384, faces=40_000, texture_size=2048),
    }, "depth"),
    run=run_depth,
)
