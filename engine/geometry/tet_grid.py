"""Tetrahedral grids generated in code: cubes split into six tetrahedra around their main diagonal."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations

import torch

from ..utils.math import grid_shape

# The six tetrahedra of the Kuhn (Freudenthal) split of a cube: each walks from corner 000 to corner
# 111 along the axes in one order. Corners are numbered x + 2y + 4z. Neighbouring cubes split their
# shared faces the same way, so the tetrahedra of a grid fit together without cracks.
_AXIS_BIT = (1, 2, 4)
KUHN_TETS = torch.tensor(
    [[0, _AXIS_BIT[a], _AXIS_BIT[a] + _AXIS_BIT[b], 7] for a, b, _ in permutations(range(3))], dtype=torch.long
)


@dataclass
class TetGrid:
    """A tetrahedral grid.

    Attributes:
        vertices: ``[V, 3]`` rest positions of the grid nodes (unit volume).
        tets: ``[T, 4]`` node indices of each tetrahedron.
        cell: the edge length of the grid's cubes.
        node_index: ``[X+1, Y+1, Z+1]`` the vertex index of every lattice node, -1 where no kept
            cube uses it (lets a coarser grid's values be carried to a finer one).
        origin: ``[3]`` position of lattice node ``(0, 0, 0)``.
    """

    vertices: torch.Tensor
    tets: torch.Tensor
    cell: float
    node_index: torch.Tensor
    origin: torch.Tensor


def regular_tet_grid(lo: torch.Tensor, hi: torch.Tensor, resolution: int, keep: torch.Tensor | None = None
                     ) -> TetGrid:
    """A grid of cubes over the box ``[lo, hi]`` (``[3]`` each), ``resolution`` cubes on its longest side.

    Args:
        keep: optional ``[X, Y, Z]`` bool, which cubes to keep (the others, and nodes only they use,
            are dropped); its shape must be the cube counts this function computes for the box —
            get them from :func:`engine.utils.math.grid_shape`.
    Returns:
        The :class:`TetGrid` with six tetrahedra per kept cube.
    """
    cell = float((hi - lo).max()) / resolution
    shape = grid_shape(lo, hi, resolution)
    device = lo.device
    cubes = torch.stack(torch.meshgrid(*[torch.arange(n, device=device) for n in shape], indexing="ij"), -1)
    cubes = cubes.reshape(-1, 3)  # [C, 3] lattice coordinates of each cube's corner 000
    if keep is not None:
        cubes = cubes[keep.reshape(-1)]
    bits = torch.tensor([[c & 1, (c >> 1) & 1, (c >> 2) & 1] for c in range(8)], device=device)  # [8, 3]
    corners = cubes[:, None] + bits[None]  # [C, 8, 3] lattice coordinates of every cube corner
    nodes = torch.tensor([n + 1 for n in shape], device=device)
    flat = (corners[..., 0] * nodes[1] + corners[..., 1]) * nodes[2] + corners[..., 2]  # [C, 8]
    used, inverse = torch.unique(flat.reshape(-1), return_inverse=True)
    tets = inverse.reshape(-1, 8)[:, KUHN_TETS.to(device)].reshape(-1, 4)  # [6C, 4]
    lattice = torch.stack([used // (nodes[1] * nodes[2]), (used // nodes[2]) % nodes[1], used % nodes[2]], -1)
    node_index = torch.full((int(nodes.prod()),), -1, dtype=torch.long, device=device)
    node_index[used] = torch.arange(len(used), device=device)
    vertices = lo + lattice.to(lo.dtype) * cell  # [V, 3]
    return TetGrid(vertices, tets, cell, node_index.reshape(*nodes.tolist()), lo.clone())

