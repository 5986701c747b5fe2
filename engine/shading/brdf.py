"""The metallic-roughness BRDF of glTF 2.0 / Blender's Principled BSDF, in torch.

Specular: the GGX (Trowbridge-Reitz) microfacet lobe with ``alpha = roughness^2``, the separable
Smith masking-shadowing term and Schlick's Fresnel with ``F0 = 0.04`` for dielectrics (Principled's
specular IOR level 0.5) blended to the base colour for metals. Diffuse: Lambert times ``(1 - F(n.l))
(1 - F(n.v))`` (Schlick with the dielectric F0), so that light the specular layer reflects is not
reflected again by the diffuse layer; symmetric in ``l`` and ``v`` (reciprocal) and, summed with the
specular lobe, reflecting at most the light it receives (``tests/engine/test_shading.py`` checks both).

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


def specular_f0(base: torch.Tensor, metallic: torch.Tensor) -> torch.Tensor:
    """``[..., 3]`` normal-incidence reflectance: 0.04 for dielectrics, the base colour for metals."""
    return DIELECTRIC_F0 + (base - DIELECTRIC_F0) * metallic[..., None]


def diffuse_weight(n_dot_l: torch.Tensor, n_dot_v: torch.Tensor) -> torch.Tensor:
    """``(1 - F(n.l))(1 - F(n.v))`` with the dielectric F0: the light the specular layer leaves to the diffuse one."""
    f0 = torch.full_like(n_dot_l, DIELECTRIC_F0)
    return (1.0 - schlick_fresnel(f0, n_dot_l)) * (1.0 - schlick_fresnel(f0, n_dot_v))


def brdf(n: torch.Tensor, v: torch.Tensor, light: torch.Tensor, *, base: torch.Tensor, roughness: torch.Tensor,
         metallic: torch.Tensor) -> torch.Tensor:
    """``[..., 3]`` the BRDF ``f(l, v)`` (per steradian) for linear ``base [..., 3]``, ``roughness [...]`` and
    ``metallic [...]``; zero when ``l`` or ``v`` is below the surface."""
    n_dot_l, n_dot_v = (n * light).sum(-1), (n * v).sum(-1)
    h = torch.nn.functional.normalize(light + v, dim=-1)
    alpha = ggx_alpha(roughness)
    f = schlick_fresnel(specular_f0(base, metallic), (v * h).sum(-1)[..., None])
    g = smith_masking(n_dot_l, alpha) * smith_masking(n_dot_v, alpha)
    specular = f * (ggx_distribution((n * h).sum(-1), alpha) * g / (4.0 * n_dot_l.clamp_min(1e-4)
                                                                      * n_dot_v.clamp_min(1e-4)))[..., None]
    diffuse = base * ((1.0 - metallic) * diffuse_weight(n_dot_l, n_dot_v) / math.pi)[..., None]
    above = ((n_dot_l > 0) & (n_dot_v > 0))[..., None]
    return torch.where(above, specular + diffuse, torch.zeros_like(specular))
