"""The metallic-roughness BRDF of glTF 2.0 / Blender's Principled BSDF, in torch.

Specular: the GGX (Trowbridge-Reitz) microfacet lobe with ``alpha = roughness^2``, the separable
Smith masking-shadowing term and Schlick's Fresnel with ``F0 = 0.04`` for dielectrics, scaled by the
material's ``specular`` level (glTF's ``KHR_materials_specular`` ``specularFactor``, in [0, 1]: the
dielectric Fresnel ``specular * F(0.04)``; 1 is Principled's specular IOR level 0.5, the glTF default,
0 no dielectric reflection at all), blended to the base colour's Fresnel for metals.

Diffuse: Lambert times ``1 - E(n.v)``, ``E`` the directional albedo of the dielectric specular layer
(:func:`dielectric_albedo`): the light the specular layer does not reflect towards the viewer reaches
the diffuse one, the layering Blender's Principled BSDF (v2, Blender 4) uses, so that a white
dielectric under a uniform white sky renders white at every angle and roughness (a white furnace). Like
Principled's, this is not reciprocal; summed with the specular lobe it reflects at most about the light
it receives (``tests/engine/test_brdf.py`` checks both the furnace and the energy).

All vectors are unit length ``[..., 3]``; ``n`` the normal, ``v`` towards the viewer, ``l`` towards the
light. Colours are linear.
"""

from __future__ import annotations

import math

import torch

DIELECTRIC_F0 = 0.04
# Lowest GGX alpha (roughness 0.1): a sharper lobe cannot be resolved from a few hundred pixels and
# is numerically stiff.
MIN_ALPHA = 0.01


def ggx_alpha(roughness: torch.Tensor) -> torch.Tensor:
    """GGX ``alpha`` of a perceptual roughness in [0, 1] (its square, at least :data:`MIN_ALPHA`)."""
    return (roughness * roughness).clamp_min(MIN_ALPHA)


def ggx_distribution(n_dot_h: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """The GGX normal distribution ``D(h)`` (per steradian of half-vector directions)."""
    a2 = alpha * alpha
    denominator = n_dot_h.clamp_min(0.0) ** 2 * (a2 - 1.0) + 1.0
    return a2 / (math.pi * denominator * denominator)


def smith_masking(n_dot_x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Smith's GGX masking ``G1`` for one direction, ``2 x / (x + sqrt(a^2 + (1 - a^2) x^2))``."""
    x = n_dot_x.clamp_min(1e-4)
    a2 = alpha * alpha
    return 2.0 * x / (x + torch.sqrt(a2 + (1.0 - a2) * x * x))


def schlick_fresnel(f0: torch.Tensor, cos: torch.Tensor) -> torch.Tensor:
    """Schlick's Fresnel ``F0 + (1 - F0)(1 - cos)^5``."""
    return f0 + (1.0 - f0) * (1.0 - cos.clamp(0.0, 1.0)) ** 5


def dielectric_fresnel(cos: torch.Tensor, specular: torch.Tensor | float = 1.0) -> torch.Tensor:
    """``specular * F(cos)`` with Schlick's ``F0 = 0.04``: a dielectric's reflectance at ``cos`` for a
    ``specular`` level in [0, 1] (a float or a tensor broadcasting with ``cos``)."""
    return specular * schlick_fresnel(torch.full_like(cos, DIELECTRIC_F0), cos)


def fresnel(base: torch.Tensor, metallic: torch.Tensor, cos: torch.Tensor,
            specular: torch.Tensor | float = 1.0) -> torch.Tensor:
    """``[..., 3]`` reflectance at ``cos [...]`` (the angle's cosine to the half vector or the normal):
    the dielectric's (:func:`dielectric_fresnel`) blended by ``metallic [...]`` to Schlick's with the base
    colour ``[..., 3]`` as F0 (metals)."""
    metal = metallic[..., None]
    return (1.0 - metal) * dielectric_fresnel(cos, specular)[..., None] + metal * schlick_fresnel(base, cos[..., None])


def dielectric_albedo(n_dot_v: torch.Tensor, alpha: torch.Tensor, specular: torch.Tensor | float = 1.0
                      ) -> torch.Tensor:
    """``[...]`` the share of a uniform sky that the dielectric specular layer reflects towards a viewer at
    ``n_dot_v [...]`` for GGX ``alpha [...]``: ``F(n.v) G1(n.v)^2 (1 - exp(-1 / (alpha^2 n.v)))``, the
    closed form of the spherical-Gaussian lobe of :func:`engine.shading.surface.shade` integrated
    against unit radiance, so that the diffuse layer gets exactly what that specular leaves."""
    x = n_dot_v.clamp(1e-4, 1.0)
    lobe = -torch.expm1(-1.0 / (alpha * alpha * x))
    return (dielectric_fresnel(x, specular) * smith_masking(x, alpha) ** 2 * lobe).clamp(0.0, 1.0)


def brdf(n: torch.Tensor, v: torch.Tensor, light: torch.Tensor, *, base: torch.Tensor, roughness: torch.Tensor,
         metallic: torch.Tensor, specular: torch.Tensor | float = 1.0) -> torch.Tensor:
    """``[..., 3]`` the BRDF ``f(l, v)`` (per steradian) for linear ``base [..., 3]``, ``roughness [...]``,
    ``metallic [...]`` and the ``specular`` level (a float or a tensor broadcasting with ``[...]``); zero
    when ``l`` or ``v`` is below the surface."""
    n_dot_l, n_dot_v = (n * light).sum(-1), (n * v).sum(-1)
    h = torch.nn.functional.normalize(light + v, dim=-1)
    alpha = ggx_alpha(roughness)
    f = fresnel(base, metallic, (v * h).sum(-1), specular)
    g = smith_masking(n_dot_l, alpha) * smith_masking(n_dot_v, alpha)
    glossy = f * (ggx_distribution((n * h).sum(-1), alpha) * g / (4.0 * n_dot_l.clamp_min(1e-4)
                                                                    * n_dot_v.clamp_min(1e-4)))[..., None]
    diffuse = base * ((1.0 - metallic) * (1.0 - dielectric_albedo(n_dot_v, alpha, specular)) / math.pi)[..., None]
    above = ((n_dot_l > 0) & (n_dot_v > 0))[..., None]
    return torch.where(above, glossy + diffuse, torch.zeros_like(glossy))
