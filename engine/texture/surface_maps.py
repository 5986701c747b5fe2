"""Maps baked from the dense surface onto a low-poly mesh's UV layout: the surface under each texel
and a tangent-space normal map.

Every covered texel is a point ``p`` on the low-poly (decimated) mesh with its interpolated normal
``n``. Its *dense point* is where the line through ``p`` along ``n`` first meets the dense surface
(the method's full-resolution mesh), searching both ways up to ``MAX_DISTANCE`` of the bounding-box
diagonal and taking the nearer hit, as a baker's cage does. The dense surface's smooth normal there
becomes the normal map (in the low-poly mesh's MikkTSpace frame, :mod:`.tangents`), and the dense
point is where material fields (and occlusion) are read, so the low-poly asset keeps
the detail the high-resolution surface had. A texel whose line misses the dense surface keeps the
low-poly point and normal (a flat normal-map texel).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import trimesh

from ..render import RayCaster
from .bake import fill_texture, rasterize_uv
from .tangents import mikktspace_tangents

# How far from the low-poly surface (fraction of its bounding-box diagonal) a dense point is searched.
MAX_DISTANCE = 0.03
# Ray origins are moved this far (fraction of the diagonal) back along the ray, so a dense surface
# that passes exactly through the texel is still hit.
START_OFFSET = 1e-5


class DenseSurface:
    """The dense (full-resolution) surface, ready for ray queries: ``vertices [V, 3]``, ``faces [F, 3]``,
    their smooth unit vertex ``normals [V, 3]``, the bounding-box ``diagonal`` and a ray caster."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray) -> None:
        self.vertices = np.asarray(vertices, dtype=np.float64)
        self.faces = np.asarray(faces, dtype=np.int64)
        self.normals = np.asarray(trimesh.Trimesh(self.vertices, self.faces, process=False).vertex_normals)
        self.diagonal = float(np.linalg.norm(self.vertices.max(0) - self.vertices.min(0)))
        self.caster = RayCaster(torch.as_tensor(self.vertices, dtype=torch.float32), torch.as_tensor(self.faces))


@dataclass
class SurfaceSamples:
    """The covered texels of a UV layout and the surface under each, in the mesh's frame.

    Attributes:
        size: side of the square texture in texels.
        texel: ``[P]`` flat texel indices ``row * size + column`` (row 0 at the top).
        points: ``[P, 3]`` dense points (low-poly points where no dense surface was found).
        normals: ``[P, 3]`` unit dense-surface normals (outward), or the low-poly ones where none was found.
        found: ``[P]`` whether the dense surface was found under the texel.
        frame: ``[P, 3, 3]`` the renderer's tangent frame at the texel, rows tangent (interpolated,
            not normalized, as a renderer interpolates it), bitangent ``sign * cross(n, t)`` and the
            unit interpolated low-poly normal ``n``.
    """

    size: int
    texel: np.ndarray
    points: np.ndarray
    normals: np.ndarray
    found: np.ndarray
    frame: np.ndarray


def sample_surface(
    vertices: np.ndarray,
    faces: np.ndarray,
    uvs: np.ndarray,
    normals: np.ndarray,
    *,
    dense: DenseSurface,
    texture_size: int,
) -> SurfaceSamples:
    """The dense surface under each covered texel of the low-poly mesh's UV layout.

    Args:
        vertices, faces, uvs, normals: the low-poly mesh (``[V, 3]``, ``[F, 3]``, ``[V, 2]`` in the OBJ
            convention, ``[V, 3]`` unit vertex normals), as the asset stores it.
        dense: the dense surface, same frame.
        texture_size: side of the square texture in texels.
    """
    faces_t = torch.as_tensor(np.asarray(faces, dtype=np.int64))
    texel, face, bary = rasterize_uv(torch.as_tensor(np.asarray(uvs, dtype=np.float32)), faces_t, texture_size)
    texel, face, bary = texel.numpy(), face.numpy(), bary.numpy().astype(np.float64)
    corners = np.asarray(faces, dtype=np.int64)[face]  # [P, 3]
    points = np.einsum("pk,pkc->pc", bary, np.asarray(vertices, dtype=np.float64)[corners])  # [P, 3]
    low_normals = _unit(np.einsum("pk,pkc->pc", bary, np.asarray(normals, dtype=np.float64)[corners]))
    tangents, signs = mikktspace_tangents(vertices, faces, uvs, normals)  # [F, 3, 3], [F]
    tangent = np.einsum("pk,pkc->pc", bary, tangents[face].astype(np.float64))  # [P, 3]
    bitangent = signs[face, None] * np.cross(low_normals, tangent)
    frame = np.stack([tangent, bitangent, low_normals], axis=1)  # [P, 3, 3]

    dense_points, dense_normals, found = _project(points, low_normals, dense)
    return SurfaceSamples(
        size=texture_size, texel=texel,
        points=np.where(found[:, None], dense_points, points).astype(np.float32),
        normals=np.where(found[:, None], dense_normals, low_normals).astype(np.float32),
        found=found, frame=frame.astype(np.float32),
    )


def _project(
    points: np.ndarray, normals: np.ndarray, dense: DenseSurface
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The nearer of the dense surface's hits along ``+normals`` and ``-normals`` from ``points [P, 3]``:
    hit points ``[P, 3]``, the dense smooth normals there ``[P, 3]`` and whether there was a hit ``[P]``."""
    offset, reach = START_OFFSET * dense.diagonal, MAX_DISTANCE * dense.diagonal
    best_t = np.full(len(points), np.inf)
    best_face = np.full(len(points), -1, dtype=np.int64)
    best_dir = np.zeros(len(points))
    for direction in (1.0, -1.0):
        dirs = direction * normals
        face, t = dense.caster.cast(torch.as_tensor(points - offset * dirs, dtype=torch.float32),
                                    torch.as_tensor(dirs, dtype=torch.float32), max_t=reach + offset)
        face, t = face.numpy(), t.numpy().astype(np.float64) - offset
        better = (face >= 0) & (np.abs(t) < best_t)
        best_t[better], best_face[better], best_dir[better] = np.abs(t[better]), face[better], direction
    found = best_face >= 0
    hits = points + (best_dir * np.where(found, best_t, 0.0))[:, None] * normals  # [P, 3]
    corners = dense.faces[best_face[found]]  # [H, 3]
    bary = _barycentric_3d(dense.vertices[corners], hits[found])  # [H, 3]
    normals_out = np.zeros_like(points)
    normals_out[found] = _unit(np.einsum("pk,pkc->pc", bary, dense.normals[corners]))
    return hits, normals_out, found


def _barycentric_3d(tri: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Barycentric coordinates ``[P, 3]`` (clamped to the triangle) of ``points [P, 3]`` in the planes of
    triangles ``tri [P, 3, 3]``."""
    e1, e2, d = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], points - tri[:, 0]
    d11, d12, d22 = (e1 * e1).sum(-1), (e1 * e2).sum(-1), (e2 * e2).sum(-1)
    d1, d2 = (d * e1).sum(-1), (d * e2).sum(-1)
    det = np.where(np.abs(d11 * d22 - d12 * d12) > 1e-30, d11 * d22 - d12 * d12, 1.0)
    b1, b2 = (d22 * d1 - d12 * d2) / det, (d11 * d2 - d12 * d1) / det
    bary = np.clip(np.stack([1.0 - b1 - b2, b1, b2], axis=-1), 0.0, None)
    return bary / np.maximum(bary.sum(-1, keepdims=True), 1e-12)


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


def bake_normal_map(samples: SurfaceSamples) -> np.ndarray:
    """The tangent-space normal map that makes a MikkTSpace renderer shade the low-poly mesh with the
    dense surface's normals.

    The renderer computes ``normalize(c.x * t + c.y * b + c.z * n)`` from the texel's ``c`` in [-1, 1]^3
    (:class:`SurfaceSamples` ``frame``); ``c`` solves that exactly (up to 8-bit rounding).

    Returns:
        ``[size, size, 3]`` uint8, ``(c + 1) / 2`` per channel (OpenGL convention: green towards +v),
        linear data (not sRGB); uncovered texels copy the nearest covered one.
    """
    frame = samples.frame.astype(np.float64)  # [P, 3, 3] rows t, b, n
    coefficients = np.linalg.solve(frame.transpose(0, 2, 1), samples.normals.astype(np.float64)[..., None])[..., 0]
    coefficients = np.where(np.isfinite(coefficients).all(-1, keepdims=True), coefficients, [0.0, 0.0, 1.0])
    coefficients = _unit(coefficients)
    coefficients[~samples.found] = (0.0, 0.0, 1.0)
    return fill_texture(samples.texel, samples.points, (coefficients + 1.0) * 0.5, samples.size)
