"""Colour encodings: the sRGB curve both ways, nvdiffrec's tone map and luminance."""

from __future__ import annotations

import torch


def srgb_encode(linear: torch.Tensor) -> torch.Tensor:
    """The sRGB transfer curve (IEC 61966-2-1) of linear values (clamped below at 0): what a PNG stores."""
    x = linear.clamp_min(0.0)
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp_min(0.0031308) ** (1 / 2.4) - 0.055)


def srgb_decode(encoded: torch.Tensor) -> torch.Tensor:
    """Linear values of sRGB-encoded ones in [0, 1] (the inverse of :func:`srgb_encode`)."""
    x = encoded.clamp(0.0, 1.0)
    return torch.where(x <= 0.04045, x / 12.92, ((x.clamp_min(0.04045) + 0.055) / 1.055) ** 2.4)


def tonemap(rgb: torch.Tensor) -> torch.Tensor:
    """nvdiffrec's tone map ``srgb(log(x + 1))``, applied to both sides of a colour loss: it
    compresses highlights so that they do not outweigh the rest of the image."""
    return srgb_encode(torch.log1p(rgb.clamp_min(0.0)))


def luminance(rgb: torch.Tensor) -> torch.Tensor:
    """``[...]`` Rec. 709 luminance of linear ``rgb [..., 3]``."""
    return rgb @ rgb.new_tensor([0.2126, 0.7152, 0.0722])
