"""Spherical Gaussians: ``G(w) = mu * exp(lambda * (axis . w - 1))`` over unit directions ``w``.

Closed forms used by the shading: the integral of a lobe over the sphere and the integral of the
product of two lobes (the product of two spherical Gaussians is one).
"""

from __future__ import annotations

import math

import torch


def sg_evaluate(directions: torch.Tensor, axes: torch.Tensor, sharpness: torch.Tensor, amplitudes: torch.Tensor
                ) -> torch.Tensor:
    """``[N, C]`` the sum of ``K`` lobes (``axes [K, 3]`` unit, ``sharpness [K]``, ``amplitudes [K, C]``) at
    unit ``directions [N, 3]``."""
    return torch.exp(sharpness * (directions @ axes.t() - 1.0)) @ amplitudes


def sg_integral(sharpness: torch.Tensor) -> torch.Tensor:
    """``[...]`` the integral over the sphere of a lobe of unit amplitude: ``2 pi (1 - exp(-2 lambda)) / lambda``
    (``4 pi`` for ``lambda`` = 0)."""
    lam = sharpness.clamp_min(1e-6)
    return 2.0 * math.pi * -torch.expm1(-2.0 * lam) / lam


def sg_product_integral(axis_a: torch.Tensor, sharpness_a: torch.Tensor, axis_b: torch.Tensor,
                        sharpness_b: torch.Tensor) -> torch.Tensor:
    """``[...]`` the integral over the sphere of the product of two lobes of unit amplitude (broadcast
    over the leading dimensions; axes ``[..., 3]``, sharpness ``[...]``)."""
    joint = (sharpness_a[..., None] * axis_a + sharpness_b[..., None] * axis_b).norm(dim=-1)  # [...]
    return torch.exp(joint - sharpness_a - sharpness_b) * sg_integral(joint)


def fibonacci_sphere(count: int) -> torch.Tensor:
    """``[count, 3]`` nearly uniform unit directions (a Fibonacci spiral), each standing for ``4 pi / count``
    steradians."""
    i = torch.arange(count, dtype=torch.float64) + 0.5
    z = 1.0 - 2.0 * i / count
    phi = i * math.pi * (3.0 - math.sqrt(5.0))
    r = torch.sqrt(1.0 - z * z)
    return torch.stack([r * torch.cos(phi), r * torch.sin(phi), z], dim=-1).float()
