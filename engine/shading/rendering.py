"""A PBR material on a triangle mesh, rendered through the differentiable rasterizer.

For a rasterized mesh: the surface point and interpolated vertex normal of every covered pixel, the
direction to its camera, the sun's visibility and the ambient occlusion by rays cast at the same
mesh, then :meth:`PBRMaterial.radiance`. Used by DMTet's steps (and to score a material on test views).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..cameras import Cameras
from ..render import Fragments, RayCaster, interpolate
from .colour import luminance, srgb_decode
from .material import PBRMaterial
from .visibility import mesh_visibility


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """``[V, 3]`` unit area-weighted vertex normals of the mesh ``(vertices [V, 3], faces [F, 3])``
    (counter-clockwise faces seen from outside), differentiable in the positions."""
    corners = vertices[faces]  # [F, 3, 3]
    face_normals = torch.linalg.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])  # [F, 3], 2x area
    summed = torch.zeros_like(vertices).index_add_(0, faces.reshape(-1), face_normals.repeat_interleave(3, dim=0))
    return F.normalize(summed, dim=-1)


def render_material(material: PBRMaterial, vertices: torch.Tensor, faces: torch.Tensor, frags: Fragments, *,
                    cameras: Cameras, background: torch.Tensor, target: torch.Tensor | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images [N, H, W, 3], points [P, 3])``: the linear radiance of the mesh ``(vertices [V, 3],
    faces [F, 3])`` rasterized as ``frags`` at ``cameras`` over the sRGB-encoded ``background``
    (broadcastable to ``[N, H, W, 3]``, linearized), and the covered pixels' surface points.

    With ``target`` (``[N, H, W, 3]`` linear images) and a sun that has not been placed yet, the sun
    first starts from the brightness of the target's covered pixels
    (:meth:`PBRMaterial.place_sun`).
    """
    covered = frags.face_id >= 0  # [N, H, W]
    points = interpolate(vertices, faces, frags)[covered]  # [P, 3]
    normals = F.normalize(interpolate(vertex_normals(vertices, faces), faces, frags)[covered], dim=-1)
    centres = cameras.centers.to(points)[:, None, None].expand(*covered.shape, 3)[covered]  # [P, 3]
    views = F.normalize(centres - points, dim=-1)
    if target is not None and not material.sun_placed:
        material.place_sun(normals.detach(), luminance(target[covered]))
    sun_visibility, occlusion = mesh_visibility(RayCaster(vertices, faces), points.detach(), normals.detach(),
                                                material.light.sun_direction.detach(), rays=material.ao_rays,
                                                offset=material.shadow_offset, generator=material.generator)
    images = srgb_decode(background).expand(*covered.shape, 3).clone()
    images[covered] = material.radiance(points, material.shading_normals(normals), views,
                                        sun_visibility=sun_visibility, occlusion=occlusion)
    return images, points
