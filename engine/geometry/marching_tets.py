"""Marching tetrahedra, differentiable with respect to the SDF values and the vertex positions.

Sign convention: the SDF is negative inside the object and positive outside. A surface vertex sits
on every tetrahedron edge whose endpoints differ in sign, where the linear interpolation of the
SDF along the edge is zero. A tetrahedron with one or three inside corners yields one triangle,
with two a quad (two triangles). Triangles are oriented counter-clockwise seen from outside.
"""

from __future__ import annotations

from itertools import combinations

import torch
import torch.nn.functional as F

# The 6 edges of a tetrahedron as pairs of its corners 0..3.
TET_EDGES = torch.tensor(list(combinations(range(4), 2)), dtype=torch.long)  # [6, 2]


def _edge_slot(a: int, b: int) -> int:
    return [tuple(e) for e in TET_EDGES.tolist()].index((min(a, b), max(a, b)))


def _case_table() -> tuple[torch.Tensor, torch.Tensor]:
    """For each of the 16 inside/outside codes (bit i = corner i inside): the number of triangles
    and ``[16, 2, 3]`` the tet-local edge slots of their corners (winding fixed later)."""
    counts, table = [], []
    for code in range(16):
        inside = [c for c in range(4) if code >> c & 1]
        outside = [c for c in range(4) if not code >> c & 1]
        tris = [[0, 0, 0], [0, 0, 0]]
        if len(inside) in (1, 3):
            lone, others = (inside[0], outside) if len(inside) == 1 else (outside[0], inside)
            tris[0] = [_edge_slot(lone, o) for o in others]
            counts.append(1)
        elif len(inside) == 2:
            (a, b), (c, d) = inside, outside
            ring = [_edge_slot(a, c), _edge_slot(a, d), _edge_slot(b, d), _edge_slot(b, c)]  # a cycle
            tris = [[ring[0], ring[1], ring[2]], [ring[0], ring[2], ring[3]]]
            counts.append(2)
        else:
            counts.append(0)
        table.append(tris)
    return torch.tensor(counts), torch.tensor(table)


CASE_COUNTS, CASE_TRIANGLES = _case_table()


def unique_edges(tets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``edges [E, 2]`` (sorted vertex pairs, each once) and ``[T, 6]`` each tet edge's row in it."""
    pairs = torch.sort(tets[:, TET_EDGES.to(tets.device)].reshape(-1, 2), dim=1).values  # [6T, 2]
    stride = int(tets.max()) + 1 if len(tets) else 1
    keys, inverse = torch.unique(pairs[:, 0] * stride + pairs[:, 1], return_inverse=True)  # 1D: fast
    edges = torch.stack([keys // stride, keys % stride], dim=-1)
    return edges, inverse.reshape(-1, 6)


def marching_tets(vertices: torch.Tensor, sdf: torch.Tensor, tets: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Extract the zero level set of ``sdf`` over a tetrahedral grid.

    Args:
        vertices: ``[V, 3]`` grid vertex positions (may carry gradients, e.g. from deformations).
        sdf: ``[V]`` signed distances (negative inside; may carry gradients).
        tets: ``[T, 4]`` vertex indices.
    Returns:
        ``mesh_vertices [M, 3]`` (one per crossed grid edge, differentiable with respect to
        ``vertices`` and ``sdf``) and ``faces [K, 3]`` long, counter-clockwise seen from outside.
        Tetrahedra where the SDF has no sign change cost only a few comparisons.
    """
    device = vertices.device
    with torch.no_grad():
        inside = sdf < 0  # [V]
        corner_inside = inside[tets]  # [T, 4]
        count = corner_inside.sum(-1)
        active = (count > 0) & (count < 4)
        tets = tets[active]  # [A, 4]
        code = (corner_inside[active].long() * torch.tensor([1, 2, 4, 8], device=device)).sum(-1)  # [A]
        edges, tet_edge = unique_edges(tets)  # [E, 2], [A, 6]
        crossing = inside[edges[:, 0]] != inside[edges[:, 1]]  # [E]
        surface_index = torch.cumsum(crossing.long(), 0) - 1  # [E] -> index of its surface vertex
        crossing_edges = edges[crossing]  # [M, 2]

    # Zero of the linear interpolation along each crossed edge: differentiable.
    s0, s1 = sdf[crossing_edges[:, 0]], sdf[crossing_edges[:, 1]]  # [M]
    w = (s0 / (s0 - s1))[:, None]  # [M, 1] in (0, 1): the signs differ
    mesh_vertices = vertices[crossing_edges[:, 0]] * (1 - w) + vertices[crossing_edges[:, 1]] * w  # [M, 3]

    with torch.no_grad():
        counts = CASE_COUNTS.to(device)[code]  # [A]
        slots = CASE_TRIANGLES.to(device)[code]  # [A, 2, 3]
        tri_tet = torch.cat([torch.nonzero(counts >= 1)[:, 0], torch.nonzero(counts == 2)[:, 0]])  # [K]
        tri_slot = torch.cat([slots[counts >= 1, 0], slots[counts == 2, 1]])  # [K, 3]
        faces = surface_index[torch.gather(tet_edge[tri_tet], 1, tri_slot)]  # [K, 3]
        # Orient each triangle so its normal points from the tet's inside corners to its outside ones.
        corners = vertices.detach()[tets[tri_tet]]  # [K, 4, 3]
        weights = corner_inside[active][tri_tet].float()  # [K, 4]
        inward = (corners * weights[..., None]).sum(1) / weights.sum(1, keepdim=True) - (
            corners * (1 - weights)[..., None]).sum(1) / (1 - weights).sum(1, keepdim=True)  # [K, 3]
        tri = mesh_vertices.detach()[faces]  # [K, 3, 3]
        normal = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        flip = (normal * inward).sum(-1) > 0
        faces[flip] = faces[flip][:, [0, 2, 1]]
    return mesh_vertices, faces


def sdf_sign_loss(sdf: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """DMTet's sign regularizer: binary cross-entropy across every edge whose endpoints differ in sign.

    Each endpoint's logit is pushed towards the other endpoint's sign (both directions), which
    discourages spurious sign flips (floaters, thin sheets) while leaving consistent regions alone.
    Returns 0 when all signs agree.

    Args:
        sdf: ``[V]`` SDF values (logits: negative inside).
        edges: ``[E, 2]`` vertex pairs, e.g. from :func:`unique_edges`.
    """
    a, b = sdf[edges[:, 0]], sdf[edges[:, 1]]
    differ = (a > 0) != (b > 0)
    if not bool(differ.any()):
        return sdf.sum() * 0.0
    a, b = a[differ], b[differ]
    return (F.binary_cross_entropy_with_logits(a, (b > 0).float())
            + F.binary_cross_entropy_with_logits(b, (a > 0).float()))
