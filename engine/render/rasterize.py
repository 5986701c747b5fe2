"""Rasterisation by ray casting: which face is seen at every pixel centre, with differentiable
perspective-correct barycentrics and depth."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..cameras import Cameras
from .raycast import RayCaster

# Pixel rays cast (and covered pixels differentiated) per chunk of views: bounds the memory.
_RAYS_PER_CHUNK = 1 << 22


@dataclass
class Fragments:
    """What every pixel of ``N`` views of ``H x W`` pixels sees.

    Attributes:
        face_id: ``[N, H, W]`` int64 index of the face seen at the pixel centre, -1 for background.
        bary: ``[N, H, W, 3]`` perspective-correct barycentric coordinates of the pixel centre's hit
            point in that face (weights of its vertices 0, 1, 2; dtype of the vertices; 0 on background).
            Differentiable with respect to the vertex positions.
        depth: ``[N, H, W]`` camera-space depth of the hit point (distance along the viewing axis, in
            world units, positive; 0 on background). Differentiable with respect to the vertex positions.
    """

    face_id: torch.Tensor
    bary: torch.Tensor
    depth: torch.Tensor


def rasterize(verts: torch.Tensor, faces: torch.Tensor, cameras: Cameras) -> Fragments:
    """Rasterise a triangle mesh into every camera.

    Visibility (the nearest face along each pixel-centre ray, both sides of every triangle, hits in
    front of the camera only) comes from a BVH ray cast and carries no gradient. The barycentrics and
    depth of the visible face are then recomputed in torch by intersecting the pixel ray with the
    face's plane, so they are differentiable with respect to ``verts``. Coverage itself (which pixels
    a face covers) has no gradient here; :func:`~.antialias.antialias` provides it at silhouettes.

    Args:
        verts: ``[V, 3]`` world-space vertex positions (float32 or float64); the device of the work.
        faces: ``[F, 3]`` vertex indices of the triangles.
        cameras: ``N`` cameras (OpenGL convention, see :mod:`engine.cameras`), on any device.
    Returns:
        The :class:`Fragments` of the ``N`` views, on the device of ``verts``.
    """
    faces = faces.to(verts.device, torch.long)
    cameras = cameras.to(verts.device)
    caster = RayCaster(verts, faces)
    per_chunk = max(1, _RAYS_PER_CHUNK // (cameras.width * cameras.height))
    chunks = [
        _rasterize_views(verts, faces, cameras[start : start + per_chunk], caster)
        for start in range(0, len(cameras), per_chunk)
    ]
    return Fragments(*(torch.cat(parts) for parts in zip(*chunks, strict=True)))


def _rasterize_views(
    verts: torch.Tensor, faces: torch.Tensor, cameras: Cameras, caster: RayCaster
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(face_id [n, H, W], bary [n, H, W, 3], depth [n, H, W])`` of a few views."""
    n, h, w = len(cameras), cameras.height, cameras.width
    dirs = cameras.pixel_directions().to(verts.dtype).reshape(n, h * w, 3)  # [n, HW, 3] unit, world
    origins = cameras.centers.to(verts.dtype)[:, None].expand(n, h * w, 3)  # [n, HW, 3]
    face_id, _ = caster.cast(origins.reshape(-1, 3), dirs.reshape(-1, 3))  # [nHW]

    hit = (face_id >= 0).nonzero()[:, 0]  # [P] flat indices of the covered pixels
    ray_o = origins.reshape(-1, 3)[hit]  # [P, 3]
    ray_d = dirs.reshape(-1, 3)[hit]  # [P, 3]
    v0, v1, v2 = verts[faces[face_id[hit]]].unbind(1)  # 3 x [P, 3]
    # Möller–Trumbore: solve ray_o + t * ray_d = v0 + u * (v1 - v0) + v * (v2 - v0).
    edge1, edge2 = v1 - v0, v2 - v0
    p = torch.linalg.cross(ray_d, edge2)  # [P, 3]
    det = (edge1 * p).sum(-1)  # [P]; nonzero for a ray that hit the face, guarded for grazing hits
    det = torch.where(det == 0, torch.finfo(det.dtype).tiny, det)
    s = ray_o - v0  # [P, 3]
    q = torch.linalg.cross(s, edge1)  # [P, 3]
    u = (s * p).sum(-1) / det  # [P]
    v = (ray_d * q).sum(-1) / det  # [P]
    t = (edge2 * q).sum(-1) / det  # [P] distance along the unit ray
    forward = cameras.forward.to(verts.dtype)[hit // (h * w)]  # [P, 3]
    hit_depth = t * (ray_d * forward).sum(-1)  # [P]

    bary = torch.zeros(n * h * w, 3, dtype=verts.dtype, device=verts.device)
    bary = bary.index_copy(0, hit, torch.stack([1 - u - v, u, v], dim=-1))  # [nHW, 3]
    depth = torch.zeros(n * h * w, dtype=verts.dtype, device=verts.device)
    depth = depth.index_copy(0, hit, hit_depth)  # [nHW]
    return face_id.reshape(n, h, w), bary.reshape(n, h, w, 3), depth.reshape(n, h, w)
