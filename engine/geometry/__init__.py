"""Geometry: tetrahedral grids and marching tetrahedra (differentiable); surfaces of dense grids
(``grid_surface``, ``lattice_surface``) and mesh clean-up (``cleanup``), which are not."""

from .marching_tets import marching_tets, sdf_sign_loss, unique_edges
from .tet_grid import TetGrid, regular_tet_grid

__all__ = ["TetGrid", "marching_tets", "regular_tet_grid", "sdf_sign_loss", "unique_edges"]
