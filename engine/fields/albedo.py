"""The albedo (base colour) of the surface as a field over the unit volume."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .hash_grid import HashGrid


class AlbedoField(nn.Module):
    """Hash-grid encoding followed by a small MLP: points ``[N, 3]`` (unit volume) -> RGB ``[N, 3]``
    in [0, 1] (sRGB, the colour space of the training images); with ``channels`` > 3, more values in
    [0, 1] after the colour (a PBR material's roughness and metallic, :mod:`engine.shading.material`)."""

    def __init__(self, levels: int = 12, finest: int = 512, hidden: int = 32, channels: int = 3) -> None:
        super().__init__()
        self.encoding = HashGrid(levels=levels, finest=finest)
        self.mlp = nn.Sequential(
            nn.Linear(self.encoding.out_dim, hidden), nn.SiLU(),
            nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, channels),
        )

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.mlp(self.encoding(points)))


def albedo_colours(albedo: AlbedoField, points: np.ndarray) -> np.ndarray:
    """``[P, 3]`` albedo in [0, 1] at unit-volume points ``[P, 3]``, evaluated in chunks."""
    device = next(albedo.parameters()).device
    out = []
    with torch.no_grad():
        for chunk in np.array_split(points, max(1, math.ceil(len(points) / 65536))):
            out.append(albedo(torch.as_tensor(chunk, dtype=torch.float32, device=device)).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 3), np.float32)
