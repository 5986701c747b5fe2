"""NeuS's mesh: marching cubes of the SDF, the table cut away."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import trimesh
from skimage.measure import marching_cubes

from ...errors import InputError
from ...geometry.grid_surface import extract_surface
from ...utils.math import cell_centres, fit_plane
from .model import NeuSModel
from .sampling import SurfaceCache

# The network is evaluated (for the mesh) only where the cached SDF is within this many cache cells.
EXTRACT_BAND = 2.5


@torch.no_grad()
def extract_mesh(model: NeuSModel, cache: SurfaceCache, hi: torch.Tensor, resolution: int,
                 progress_step: Callable[[int, int], None]) -> trimesh.Trimesh:
    """Marching cubes of the SDF on cell centres of a ``resolution`` grid over the cache's box; the
    network is evaluated only within ``EXTRACT_BAND`` cache cells of the cached surface. With a
    table, the object alone: the field cut by the table top, closed where the object stands on it."""
    points, shape = cell_centres(cache.lo, hi, resolution)
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


@torch.no_grad()
def cached_surface(model: NeuSModel, cache: SurfaceCache) -> tuple[np.ndarray, np.ndarray]:
    """A coarse mesh of the *cached* SDF for the live preview: marching cubes on the cache's lattice
    (no network call, no clean-up; with a table, cut at its top), closed at the lattice's border.
    Returns ``vertices [M, 3]`` (unit volume) and ``faces [K, 3]`` (outwards), empty while nothing
    is inside."""
    sdf = cache.values
    if model.has_table:
        sdf = torch.maximum(sdf, -model.height(cache.nodes))
    if not bool((sdf < 0).any()):
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int64)
    padded = np.pad(sdf.cpu().numpy(), 1, constant_values=cache.cell)
    vertices, faces, _, _ = marching_cubes(padded, level=0.0, spacing=(cache.cell,) * 3)
    return vertices - cache.cell + cache.nodes[0, 0, 0].cpu().numpy(), faces


def remove_support_plane(mesh: trimesh.Trimesh, lo: np.ndarray, hi: np.ndarray, camera_centres: np.ndarray, *,
                         seed: int = 0, rounds: int = 3) -> trimesh.Trimesh:
    """Cut away the surface the object stands on, for mask-free data.

    RANSAC finds the plane holding the most vertices (tolerance 1% of the box). It counts as a
    support only when its inliers span at least 80% of the box along two axes (a table crossing the
    whole region of interest, not a flat face of the object). Faces on the far side of the plane
    from the median camera, or within the tolerance of it, are removed. Repeated up to ``rounds``
    times (a table is a slab: its underside may be found before its top); the largest piece is kept.
    """
    tolerance = 0.01 * float((hi - lo).max())
    rng = np.random.default_rng(seed)
    for _ in range(rounds):
        plane = spanning_plane(mesh.vertices, lo, hi, tolerance, rng=rng)
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
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray] | None:
    """The RANSAC plane ``(unit normal [3], point [3])`` with the most of (up to 20 000 of)
    ``vertices [V, 3]`` within ``tolerance``, if those span at least 80% of the box ``[lo, hi]``
    along two axes; else None."""
    sample = vertices[rng.choice(len(vertices), min(len(vertices), 20000), replace=False)]
    found = fit_plane(sample, tolerance, seed=int(rng.integers(2**31)), trials=300)
    if found is None:
        return None
    plane, inliers = found
    spans = (sample[inliers].max(0) - sample[inliers].min(0)) / (hi - lo)
    return (plane.normal, plane.normal * plane.offset) if (spans >= 0.8).sum() >= 2 else None
