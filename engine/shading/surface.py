"""Outgoing radiance of surface points lit by a :class:`~engine.shading.light.SceneLight`.

The sun is evaluated exactly (the BRDF of :mod:`engine.shading.brdf` towards it, times its
visibility). The environment, scaled by the points' ambient occlusion: diffuse from its irradiance,
specular by the spherical Gaussian approximation of the GGX lobe (Wang et al. 2009, as in PhySG):
the normal distribution as a lobe ``exp(2 / alpha^2 (n . h - 1)) / (pi alpha^2)`` around the
normal, warped to a lobe around the reflected view direction with sharpness ``1 / (2 alpha^2 n.v)``,
integrated against the light in closed form and multiplied by Fresnel and masking at the lobe's axis.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .brdf import brdf, dielectric_albedo, fresnel, ggx_alpha, smith_masking
from .light import SceneLight


def shade(light: SceneLight, normals: torch.Tensor, views: torch.Tensor, *, base: torch.Tensor, roughness: torch.Tensor,
          metallic: torch.Tensor, sun_visibility: torch.Tensor, occlusion: torch.Tensor,
          specular: torch.Tensor | float = 1.0) -> torch.Tensor:
    """``[P, 3]`` linear radiance towards the viewer.

    Args:
        light: the light.
        normals: ``[P, 3]`` unit surface normals; ``views`` ``[P, 3]`` unit directions to the viewer.
        base: ``[P, 3]`` linear base colour; ``roughness``, ``metallic``: ``[P]`` in [0, 1].
        sun_visibility: ``[P]`` in [0, 1], whether the sun reaches the point (1: lit).
        occlusion: ``[P]`` in [0, 1], the share of the environment the point sees (1: open).
        specular: the material's specular level in [0, 1] (:mod:`engine.shading.brdf`), a float or a
            0-d tensor.
    """
    n_dot_v = (normals * views).sum(-1).clamp_min(1e-4)  # [P]
    sun = light.sun_direction.expand_as(normals)
    n_dot_s = (normals * sun).sum(-1).clamp_min(0.0)
    direct = light.sun_irradiance * brdf(normals, views, sun, base=base, roughness=roughness, metallic=metallic,
                                         specular=specular) * (n_dot_s * sun_visibility)[:, None]
    alpha = ggx_alpha(roughness)
    kd = base * ((1.0 - metallic) * (1.0 - dielectric_albedo(n_dot_v, alpha, specular)) / math.pi)[:, None]
    diffuse = kd * light.diffuse_irradiance(normals)
    reflected = F.normalize(2.0 * n_dot_v[:, None] * normals - views, dim=-1)
    lobe = light.specular_integrals(reflected, 1.0 / (2.0 * alpha * alpha * n_dot_v))  # [P, 3]
    masking = smith_masking(n_dot_v, alpha) ** 2
    glossy = fresnel(base, metallic, n_dot_v, specular) * lobe * (
        masking / (4.0 * n_dot_v * math.pi * alpha * alpha))[:, None]
    return direct + occlusion[:, None] * (diffuse + glossy)
