"""What light reaches a surface point: the sun's visibility and ambient occlusion, by casting rays
against the method's current surface (a mesh here; NeuS marches its cached SDF the same way)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..render import RayCaster


def tangent_frames(normals: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Two unit tangents ``[P, 3]`` each, orthogonal to unit ``normals [P, 3]`` and to each other."""
    helper = torch.where(normals[:, :1].abs() < 0.9, normals.new_tensor([1.0, 0.0, 0.0]),
                         normals.new_tensor([0.0, 1.0, 0.0]))
    tangent = F.normalize(torch.linalg.cross(helper, normals), dim=-1)
    return tangent, torch.linalg.cross(normals, tangent)


def cosine_directions(normals: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """``[P, count, 3]`` random unit directions in the hemisphere around each of ``normals [P, 3]``,
    with density ``cos / pi`` (Malley's method), so that their mean visibility is the ambient occlusion."""
    u = torch.rand(len(normals), count, 2, generator=generator).to(normals)
    radius, angle = u[..., 0].sqrt(), 2.0 * math.pi * u[..., 1]
    tangent, bitangent = tangent_frames(normals)
    x, y = (radius * angle.cos())[..., None], (radius * angle.sin())[..., None]  # [P, count, 1] each
    z = (1.0 - u[..., 0]).clamp_min(0.0).sqrt()[..., None]
    return x * tangent[:, None] + y * bitangent[:, None] + z * normals[:, None]


def mesh_visibility(caster: RayCaster, points: torch.Tensor, normals: torch.Tensor, sun: torch.Tensor, *,
                    rays: int, offset: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sun_visibility [P], occlusion [P])`` of surface ``points [P, 3]`` with unit ``normals [P, 3]``
    against the mesh of ``caster``: 1 where a ray towards the unit ``sun [3]`` escapes, and the share of
    ``rays`` cosine-distributed rays that escape (ambient occlusion; 1 when ``rays`` is 0). Rays start
    ``offset`` along the normal (off the surface they leave). No gradient."""
    with torch.no_grad():
        start = points + offset * normals
        sun_hit, _ = caster.cast(start, sun.expand_as(start))
        sun_visibility = (sun_hit < 0).to(points.dtype)
        if rays == 0:
            return sun_visibility, torch.ones_like(sun_visibility)
        directions = cosine_directions(normals, rays, generator)  # [P, R, 3]
        hit, _ = caster.cast(start[:, None].expand_as(directions).reshape(-1, 3), directions.reshape(-1, 3))
        return sun_visibility, (hit.view(len(points), rays) < 0).to(points.dtype).mean(1)


# Rays per point of an exported occlusion map.
OCCLUSION_RAYS = 64


def mesh_occlusion(vertices: torch.Tensor, faces: torch.Tensor, *, offset: float, rays: int = OCCLUSION_RAYS
                   ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The ``occlusion`` of :class:`engine.methods.base.Material` for the mesh ``(vertices [V, 3],
    faces [F, 3])``: ``(points [P, 3], unit normals [P, 3])`` numpy -> ``[P]`` ambient occlusion from
    ``rays`` cosine-distributed rays per point, started ``offset`` along the normal."""
    caster = RayCaster(vertices.detach(), faces)
    generator = torch.Generator().manual_seed(0)

    def occlusion(points: np.ndarray, normals: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(points), 16384):
            p = torch.as_tensor(points[start:start + 16384], dtype=torch.float32, device=vertices.device)
            n = F.normalize(torch.as_tensor(normals[start:start + 16384], dtype=torch.float32, device=vertices.device),
                            dim=-1)
            out.append(mesh_visibility(caster, p, n, n[:1].new_tensor([0.0, 0.0, 1.0]), rays=rays, offset=offset,
                                       generator=generator)[1].cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    return occlusion
