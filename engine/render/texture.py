"""Texture lookups."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sample_texture(texture: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Bilinear texture lookup at every pixel.

    UVs follow the OBJ / Blender convention: ``(0, 0)`` is the bottom-left corner of the image and
    ``(1, 1)`` the top-right, ``u`` grows to the right and ``v`` upwards, while row 0 of ``texture`` is
    the top of the image. Texel centres sit at ``(j + 0.5) / Wt, 1 - (i + 0.5) / Ht``; lookups outside
    ``[0, 1]`` clamp to the border texels.

    Args:
        texture: ``[Ht, Wt, C]`` image, row 0 at the top.
        uv: ``[N, H, W, 2]`` texture coordinates per pixel (e.g. from :func:`~.interpolate.interpolate`;
            background pixels read whatever texel their UV points at, mask them afterwards).
    Returns:
        ``[N, H, W, C]`` sampled values, differentiable with respect to ``texture`` and ``uv``.
    """
    n, h, w, _ = uv.shape
    grid = torch.stack([2 * uv[..., 0] - 1, 1 - 2 * uv[..., 1]], dim=-1)  # [N, H, W, 2], -1 = left / top
    image = texture.permute(2, 0, 1)[None]  # [1, C, Ht, Wt]
    sampled = F.grid_sample(
        image, grid.to(image.dtype).reshape(1, n * h, w, 2),
        mode="bilinear", padding_mode="border", align_corners=False,
    )  # [1, C, N*H, W]
    return sampled[0].permute(1, 2, 0).reshape(n, h, w, -1)
