"""Tangent frames of a UV-mapped triangle mesh, as MikkTSpace computes them (Blender, glTF).

A tangent-space normal map only means something with the tangent frame the renderer rebuilds from
the mesh. Blender (Cycles, EEVEE, its bakers) and glTF viewers use MikkTSpace, so the baker does the
same, following the algorithm of Morten Mikkelsen's reference (our own numpy code):

1. Per triangle, the direction of increasing ``u`` in 3D, ``os = (dv31 * e1 - dv21 * e2)`` (``e1``,
   ``e2`` the edges from corner 0, ``dv`` the UV differences), normalized and multiplied by the
   triangle's UV orientation (+1 where the UV triangle is counter-clockwise, -1 where mirrored).
2. Per corner, that direction projected onto the plane of the corner's vertex normal and
   normalized, weighted by the corner's angle (measured in the same plane).
3. Corners that share a vertex (same position, normal and UV) and the same UV orientation average
   these weighted directions into one unit tangent; the bitangent sign is the orientation.

A renderer then interpolates the corner tangents and normals over the triangle and forms the
bitangent ``sign * cross(normal, tangent)`` (the "per-pixel bitangent" of MikkTSpace, as Blender's
Normal Map node does). Simplifications of the reference, which matter only on degenerate input:
triangles with no UV area add nothing (their corners take their vertex group's tangent, or any
vector orthogonal to the normal), and a vertex's triangles of one orientation form one group even
where the fan around it is interrupted.
"""

from __future__ import annotations

import numpy as np

# Below this (in squared UV units or squared world units), an area or a length counts as zero.
EPSILON = 1e-20


def mikktspace_tangents(
    vertices: np.ndarray, faces: np.ndarray, uvs: np.ndarray, normals: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-corner unit tangents and bitangent signs.

    Args:
        vertices: ``[V, 3]`` positions; ``faces [F, 3]`` vertex indices (counter-clockwise from outside);
            ``uvs [V, 2]`` texture coordinates (OBJ/Blender convention, v up); ``normals [V, 3]`` unit
            vertex normals (the shading normals the renderer interpolates).
    Returns:
        ``tangents [F, 3, 3]`` float32 unit vectors orthogonal to the corner's vertex normal, pointing
        towards increasing ``u``; ``signs [F]`` float32 ±1: the bitangent (towards increasing ``v``) is
        ``sign * cross(normal, tangent)``.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    uvs = np.asarray(uvs, dtype=np.float64)
    normals = np.asarray(normals, dtype=np.float64)
    p, t, n = vertices[faces], uvs[faces], normals[faces]  # [F, 3, 3], [F, 3, 2], [F, 3, 3]

    e1, e2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]  # [F, 3]
    d1, d2 = t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]  # [F, 2]
    signed_area = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]  # [F] twice the signed UV area
    valid = np.abs(signed_area) > EPSILON
    signs = np.where(signed_area > 0, 1.0, -1.0)  # [F]
    face_tangent = d2[:, 1:2] * e1 - d1[:, 1:2] * e2  # [F, 3]
    face_tangent = signs[:, None] * _unit(face_tangent)

    # Each corner: the face tangent in the normal's plane, weighted by the corner's angle in that plane.
    corner = _unit(face_tangent[:, None] - _dot(n, face_tangent[:, None]) * n)  # [F, 3, 3]
    to_prev = _unit(_in_plane(np.roll(p, 1, axis=1) - p, n))
    to_next = _unit(_in_plane(np.roll(p, -1, axis=1) - p, n))
    angle = np.arccos(np.clip(_dot(to_prev, to_next)[..., 0], -1.0, 1.0))  # [F, 3]
    weighted = corner * (angle * valid[:, None])[..., None]  # [F, 3, 3]

    # Groups: corners with the same vertex (position, normal and UV) and the same orientation.
    welded = _weld(vertices, normals, uvs)  # [V] group-representative vertex
    key = welded[faces] * 2 + (signs[:, None] > 0)  # [F, 3]
    groups, group_of = np.unique(key.ravel(), return_inverse=True)
    summed = np.zeros((len(groups), 3))
    np.add.at(summed, group_of, weighted.reshape(-1, 3))
    tangents = summed[group_of].reshape(-1, 3, 3)
    tangents = _unit(tangents - _dot(n, tangents) * n)
    missing = np.linalg.norm(tangents, axis=-1) < 0.5  # [F, 3] no valid triangle at this vertex
    if missing.any():
        tangents[missing] = _any_orthogonal(n[missing])
    return tangents.astype(np.float32), signs.astype(np.float32)


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1, keepdims=True)


def _in_plane(vectors: np.ndarray, normals: np.ndarray) -> np.ndarray:
    return vectors - _dot(normals, vectors) * normals


def _unit(vectors: np.ndarray) -> np.ndarray:
    """``vectors`` scaled to unit length; (near-)zero vectors stay zero."""
    length = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return np.where(length * length > EPSILON, vectors / np.where(length > 0, length, 1.0), 0.0)


def _weld(vertices: np.ndarray, normals: np.ndarray, uvs: np.ndarray) -> np.ndarray:
    """For each vertex, the first vertex with exactly the same position, normal and UV."""
    rows = np.ascontiguousarray(np.concatenate([vertices, normals, uvs], axis=1))
    _, first, inverse = np.unique(rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))),
                                  return_index=True, return_inverse=True)
    return first[inverse.ravel()]


def _any_orthogonal(normals: np.ndarray) -> np.ndarray:
    """A unit vector orthogonal to each of ``normals [N, 3]``."""
    helper = np.where(np.abs(normals[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
    return _unit(np.cross(normals, helper))
