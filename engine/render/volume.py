"""Volume rendering of a signed distance field, the NeuS way (Wang et al. 2021, "NeuS: Learning Neural
Implicit Surfaces by Volume Rendering for Multi-view Reconstruction").

Along a ray, the opacity of the section between two samples comes from the logistic CDF
``Phi(x) = sigmoid(inv_s * x)`` of the SDF at the section's ends: ``alpha = (Phi(s_prev) - Phi(s_next))
/ Phi(s_prev)`` clamped to [0, 1]. It is unbiased (the weight peaks where the SDF crosses zero) and
occlusion-aware. The section ends are estimated from the SDF at the section's middle and its slope
along the ray (``gradient . direction``); "cosine annealing" blends that slope with a value that is
never positive early in training, so that surfaces seen from behind still get opacity.

All tensors are ``[R, S]`` (rays, samples along each ray) unless noted; any length unit will do as
long as SDF values and distances share it.
"""

from __future__ import annotations

import torch


def neus_alpha(sdf: torch.Tensor, slope: torch.Tensor, deltas: torch.Tensor, inv_s: torch.Tensor, *,
               anneal: float, deepest: torch.Tensor | None = None) -> torch.Tensor:
    """Opacity ``[R, S]`` in [0, 1] of each section.

    Args:
        sdf: SDF at the middle of each section.
        slope: ``d sdf / d t`` there (gradient . ray direction).
        deltas: section lengths (>= 0).
        inv_s: the inverse standard deviation of the logistic density (scalar tensor, > 0).
        anneal: 0 -> the slope is replaced by ``-(1 - slope) / 2 <= 0`` (never lets the SDF rise
            along the ray); 1 -> ``min(slope, 0)``, the true slope where the ray enters a surface.
        deepest: ``[R]`` for samples that cover only a band around the surface: the lowest SDF the
            ray reaches beyond the band (e.g. from a cached grid). The first section is extended
            back to free space (``Phi = 1``) and, where the ray is still going deeper at the band's
            end, the last one on to ``deepest``. Without this a band that starts or ends close to
            the surface (oblique rays, silhouettes) under-estimates the opacity and the fit
            inflates the object by ~1/inv_s.
    """
    true_slope = -torch.relu(-slope)
    soft_slope = -torch.relu(0.5 - 0.5 * slope)
    estimate = anneal * true_slope + (1.0 - anneal) * soft_slope
    prev_sdf = sdf - estimate * deltas * 0.5
    next_sdf = sdf + estimate * deltas * 0.5
    prev_cdf = torch.sigmoid(prev_sdf * inv_s)
    if deepest is not None:
        prev_cdf = torch.cat([torch.ones_like(prev_cdf[:, :1]), prev_cdf[:, 1:]], dim=1)
        last = torch.where(estimate[:, -1] < 0, torch.minimum(next_sdf[:, -1], deepest), next_sdf[:, -1])  # [R]
        next_sdf = torch.cat([next_sdf[:, :-1], last[:, None]], dim=1)
    next_cdf = torch.sigmoid(next_sdf * inv_s)
    return ((prev_cdf - next_cdf) / (prev_cdf + 1e-5)).clamp(0.0, 1.0)


def composite_weights(alpha: torch.Tensor) -> torch.Tensor:
    """Rendering weights ``[R, S]``: ``alpha_i * prod_{j<i} (1 - alpha_j)``; each ray's sum is <= 1."""
    transmittance = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1.0 - alpha + 1e-7], dim=1), dim=1)
    return alpha * transmittance[:, :-1]
