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
        """``[N, L * F]`` features at ``points [N, 3]``, differentiable in the tables and the points."""
        index, frac = self.cells(points)
        corners = _CORNERS.to(points.device)
        weight = torch.where(corners.bool(), frac[:, :, None, :], 1.0 - frac[:, :, None, :]).prod(-1)  # [N, L, 8]
        # One gather from the flattened tables for all levels: its backward fills one gradient buffer,
        # not one per level (that fill dominated the CPU time).
        feats = self.tables.reshape(-1, self.features)[index]  # [N, L, 8, F]
        return (feats * weight[..., None]).sum(2).reshape(len(points), -1)

    def with_jacobian(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(features [N, L * F], jacobian [N, L * F, 3])``: the encoding and its derivative with
        respect to the point (per unit-volume unit), both computed in closed form from one gather.

        Both are differentiable in the tables (:class:`_InterpolateWithJacobian`), not in the points:
        this is what an eikonal loss needs, without autograd's double backward through the
        interpolation (about 2.7x faster on the CPU for a NeuS training step's SDF).
        """
        index, frac = self.cells(points)
        corners = _CORNERS.to(points.device)
        lerp = torch.stack([1.0 - frac, frac], -1)  # [N, L, 3, 2] weight of the low / high node per axis
        along = [lerp[:, :, axis][..., corners[:, axis]] for axis in range(3)]  # 3 x [N, L, 8]
        sign = corners.to(frac.dtype) * 2.0 - 1.0  # [8, 3] derivative of each corner's weight per axis
        inside = ((points > -1.0) & (points < 1.0)).to(frac.dtype)  # [N, 3] clamped points do not move
        scale = self.scales(points)[None, :, None] * inside[:, None, :]  # [N, L, 3] d(cell position)/d(point)
        weights = torch.stack([
            along[0] * along[1] * along[2],
            sign[:, 0] * along[1] * along[2] * scale[..., 0:1],
            along[0] * sign[:, 1] * along[2] * scale[..., 1:2],
            along[0] * along[1] * sign[:, 2] * scale[..., 2:3],
        ], -1)  # [N, L, 8, 4]: the value's weight and its three derivatives
        out = _InterpolateWithJacobian.apply(self.tables.reshape(-1, self.features), index, weights)  # [N, L, F, 4]
        return out[..., 0].reshape(len(points), -1), out[..., 1:].reshape(len(points), -1, 3)

    def scales(self, points: torch.Tensor) -> torch.Tensor:
        """``[L]`` cells per unit-volume unit at each level (the unit volume is 2 wide)."""
        return torch.tensor(self.resolutions, dtype=points.dtype, device=points.device) / 2.0

    def cells(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(index [N, L, 8], frac [N, L, 3])``: the rows of the flattened tables holding the corners
        of each level's cell around ``points [N, 3]``, and the position within that cell (in the
        tables' dtype)."""
        points = points.to(self.tables.dtype)
        resolutions = self.scales(points) * 2.0  # [L]
        pos = ((points.clamp(-1.0, 1.0) + 1.0) * 0.5)[:, None, :] * resolutions[None, :, None]  # [N, L, 3]
        low = torch.minimum(pos.floor(), (resolutions - 1.0)[None, :, None])
        frac = pos - low
        node = low.long()[:, :, None, :] + _CORNERS.to(points.device)  # [N, L, 8, 3]
        indices = []
        for level, res in enumerate(self.resolutions):
            x, y, z = node[:, level].unbind(-1)  # [N, 8] each
            if (res + 1) ** 3 <= self.table_size:
                index = (x * (res + 1) + y) * (res + 1) + z
            else:
                index = ((x * _PRIMES[0]) ^ (y * _PRIMES[1]) ^ (z * _PRIMES[2])) % self.table_size
            indices.append(index + level * self.table_size)
        return torch.stack(indices, dim=1), frac


class _InterpolateWithJacobian(torch.autograd.Function):
    """``tables [rows, F]`` gathered at ``index [N, L, 8]`` and combined with ``weights [N, L, 8, K]``
    -> ``[N, L, F, K]``; the gradient goes to the tables only (one scatter-add)."""

    @staticmethod
    def forward(ctx, tables: torch.Tensor, index: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(index, weights)
        ctx.rows = tables.shape[0]
        return torch.einsum("nlcf,nlck->nlfk", tables[index], weights)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        index, weights = ctx.saved_tensors
        per_corner = torch.einsum("nlfk,nlck->nlcf", grad, weights)  # [N, L, 8, F]
        tables = grad.new_zeros(ctx.rows, grad.shape[2])
        tables.index_add_(0, index.reshape(-1), per_corner.reshape(-1, grad.shape[2]))
        return tables, None, None
