"""A multi-resolution hash grid encoding (the Instant-NGP idea) in plain torch, for CPU and CUDA."""

from __future__ import annotations

import math

import torch
from torch import nn

# Spatial-hash primes (one per axis); the first is 1 so coarse levels stay collision-free-ish.
_PRIMES = (1, 2_654_435_761, 805_459_861)
# Corner offsets of a grid cell, bit i of the corner number = offset along axis i: [8, 3].
_CORNERS = torch.tensor([[c & 1, (c >> 1) & 1, (c >> 2) & 1] for c in range(8)], dtype=torch.long)


class HashGrid(nn.Module):
    """Features at ``levels`` grid resolutions growing geometrically from ``base`` to ``finest``.

    A level whose ``(resolution + 1)^3`` nodes fit in ``table_size`` entries is stored densely,
    finer levels are hashed into ``table_size`` entries. Features are trilinearly interpolated
    from the 8 corners of the enclosing cell and concatenated over levels.

    Input: points ``[N, 3]`` in the unit volume [-1, 1]^3 (clamped). Output: ``[N, levels * features]``.
    """

    def __init__(self, levels: int = 12, features: int = 2, base: int = 16, finest: int = 512,
                 table_size: int = 2**17) -> None:
        super().__init__()
        growth = math.exp(math.log(finest / base) / max(levels - 1, 1))
        self.resolutions = [int(base * growth**i) for i in range(levels)]
        self.table_size = table_size
        self.features = features
        self.tables = nn.Parameter(torch.empty(levels, table_size, features).uniform_(-1e-4, 1e-4))

    @property
    def out_dim(self) -> int:
        return len(self.resolutions) * self.features

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        x = ((points.clamp(-1.0, 1.0) + 1.0) * 0.5).to(self.tables.dtype)  # [N, 3] in [0, 1]
        corners = _CORNERS.to(points.device)
        indices, weights = [], []
        for level, res in enumerate(self.resolutions):
            pos = x * res
            base = pos.floor().long().clamp(0, res - 1)  # [N, 3]
            frac = pos - base  # [N, 3]
            node = base[:, None, :] + corners[None]  # [N, 8, 3]
            if (res + 1) ** 3 <= self.table_size:
                index = (node[..., 0] * (res + 1) + node[..., 1]) * (res + 1) + node[..., 2]
            else:
                index = (node[..., 0] * _PRIMES[0]) ^ (node[..., 1] * _PRIMES[1]) ^ (node[..., 2] * _PRIMES[2])
                index = index % self.table_size
            indices.append(index + level * self.table_size)
            weights.append(torch.where(corners[None].bool(), frac[:, None, :], 1.0 - frac[:, None, :]).prod(-1))
        # One gather from the flattened tables for all levels: its backward fills one gradient buffer,
        # not one per level (that fill dominated the CPU time).
        index = torch.stack(indices, dim=1)  # [N, L, 8]
        weight = torch.stack(weights, dim=1)  # [N, L, 8]
        feats = self.tables.reshape(-1, self.features)[index]  # [N, L, 8, F]
        return (feats * weight[..., None]).sum(2).reshape(len(points), -1)  # [N, L * F]
