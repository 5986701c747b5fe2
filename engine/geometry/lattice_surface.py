"""The final, non-differentiable surface of a tet grid's SDF: marching cubes on its lattice."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from skimage.measure import marching_cubes

from .tet_grid import TetGrid


def lattice_surface(grid: TetGrid, sdf: torch.Tensor, offsets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The zero level set of ``sdf`` (``[V]``, negative inside) by marching cubes on the grid's lattice.

    Marching tetrahedra on the six-tet split is what the optimization differentiates through, but it
    cuts every cube into slivers and a staircase of facets; marching cubes on the same node values
    gives a third of the triangles and a smoother surface for the second pass to start from. Nodes
    of the lattice that no kept cube uses count as outside. Each vertex lies on a lattice edge, so
    the node ``offsets`` (``[V, 3]``, unit-volume units) interpolated trilinearly at it move it
    exactly as marching tetrahedra would move a vertex on that edge.

    Returns:
        ``vertices [M, 3]`` (unit volume, on ``sdf``'s device) and ``faces [K, 3]`` (long),
        counter-clockwise seen from outside.
    """
    used = grid.node_index >= 0
    far = float(sdf.abs().max()) + grid.cell
    dense = torch.full(grid.node_index.shape, far, device=sdf.device)  # [X+1, Y+1, Z+1]
    dense[used] = sdf.detach()[grid.node_index[used]]
    padded = np.pad(dense.cpu().numpy(), 1, constant_values=far)
    lattice, faces, _, _ = marching_cubes(padded, level=0.0)
    lattice = torch.from_numpy(lattice.copy()).to(sdf.device, torch.float32) - 1.0  # [M, 3] node units
    dense_offsets = torch.zeros(*grid.node_index.shape, 3, device=sdf.device)
    dense_offsets[used] = offsets.detach()[grid.node_index[used]]
    extent = torch.tensor(grid.node_index.shape, device=sdf.device, dtype=torch.float32) - 1.0
    normalized = (lattice / extent * 2.0 - 1.0).flip(-1)  # grid_sample wants (z, y, x) order in [-1, 1]
    moved = F.grid_sample(dense_offsets.permute(3, 0, 1, 2)[None], normalized[None, None, None],
                          mode="bilinear", padding_mode="border", align_corners=True)[0, :, 0, 0].T  # [M, 3]
    vertices = grid.origin + lattice * grid.cell + moved
    faces = torch.from_numpy(faces.astype(np.int64)).to(sdf.device)
    return vertices, faces  # scikit-image winds them towards increasing values: outwards for an SDF
