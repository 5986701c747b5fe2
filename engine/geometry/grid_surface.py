"""The surface of a dense grid of cell values (occupancy, or a negated SDF): marching cubes on the CPU."""

from __future__ import annotations

import numpy as np
import trimesh
from skimage.measure import marching_cubes

from .cleanup import drop_small_pieces


def extract_surface(occupancy: np.ndarray, origin: np.ndarray, cell: float, level: float = 0.5
                    ) -> trimesh.Trimesh:
    """Marching cubes (scikit-image) of ``occupancy [X, Y, Z]`` at ``level``, closed at the grid border.

    ``origin`` is the position of cell ``[0, 0, 0]``; vertices come out in the same frame. The mesh
    is oriented outwards and keeps only the connected pieces holding at least 5% of the area.
    """
    padded = np.pad(occupancy, 1, constant_values=0.0)
    verts, faces, _, _ = marching_cubes(padded, level=level, spacing=(cell, cell, cell))
    verts = verts - cell + origin  # undo the padding offset
    mesh = drop_small_pieces(trimesh.Trimesh(verts, faces, process=True), 0.05)
    if mesh.volume < 0:
        mesh.invert()
    return mesh
