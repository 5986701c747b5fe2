"""Mesh clean-up shared by the methods: floaters out."""

from __future__ import annotations

import trimesh


def drop_small_pieces(mesh: trimesh.Trimesh, min_area_fraction: float) -> trimesh.Trimesh:
    """``mesh`` without the connected pieces holding less than ``min_area_fraction`` of its area."""
    pieces = mesh.split(only_watertight=False)
    if len(pieces) <= 1:
        return mesh
    total = sum(p.area for p in pieces)
    return trimesh.util.concatenate([p for p in pieces if p.area >= min_area_fraction * total])
