"""Depth and normal maps of a triangle mesh, in the convention of ``engine.data.depth_maps``."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..cameras import Cameras
from .rasterize import Fragments, rasterize


def surface_normals(vertices: torch.Tensor, faces: torch.Tensor, frags: Fragments, cameras: Cameras) -> torch.Tensor:
    """``[N, H, W, 3]`` unit normals of the faces seen at each pixel (world frame), turned towards
    the camera, 0 on background. Differentiable with respect to ``vertices``.

    Args:
        vertices: ``[V, 3]`` world positions; faces: ``[F, 3]`` vertex indices (those of ``frags``).
        frags: the rasterized views; cameras: the same ``N`` cameras.
    """
    v0, v1, v2 = vertices[faces.long()].unbind(1)  # [F, 3] each
    face_normals = F.normalize(torch.linalg.cross(v1 - v0, v2 - v0), dim=-1)  # [F, 3]
    covered = frags.face_id >= 0  # [N, H, W]
    normals = vertices.new_zeros(*covered.shape, 3)
    seen = face_normals[frags.face_id[covered]]  # [P, 3]
    view = cameras.to(vertices.device).pixel_directions().to(vertices.dtype)[covered]  # [P, 3] camera -> surface
    facing = torch.where((seen * view).sum(-1, keepdim=True) > 0, -seen, seen)
    normals[covered] = facing
    return normals


def render_depth_normals(vertices: torch.Tensor, faces: torch.Tensor, cameras: Cameras
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(depth [N, H, W], normals [N, H, W, 3])`` of the mesh seen by ``cameras``: the depth along
    each optical axis of the surface at the pixel centres and its face normals (world frame, facing
    the camera); both 0 where the pixel sees nothing."""
    frags = rasterize(vertices, faces, cameras)
    return frags.depth, surface_normals(vertices, faces, frags, cameras)
