"""Mesh clean-up shared by the methods: floaters out, Taubin smoothing."""

from __future__ import annotations

import trimesh


def drop_small_pieces(mesh: trimesh.Trimesh, min_area_fraction: float) -> trimesh.Trimesh:
    """``mesh`` without the connected pieces holding less than ``min_area_fraction`` of its area."""
    pieces = mesh.split(only_watertight=False)
    if len(pieces) <= 1:
        return mesh
    total = sum(p.area for p in pieces)
    return trimesh.util.concatenate([p for p in pieces if p.area >= min_area_fraction * total])


def taubin_smooth(mesh: trimesh.Trimesh, iterations: int) -> trimesh.Trimesh:
    """``mesh`` after ``iterations`` of Taubin smoothing (trimesh, lambda 0.5, mu -0.53: no
    shrinkage), in place; unchanged for ``iterations <= 0``."""
    if iterations > 0:
        trimesh.smoothing.filter_taubin(mesh, lamb=0.5, nu=0.53, iterations=iterations)
    return mesh
