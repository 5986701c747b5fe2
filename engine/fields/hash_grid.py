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
        if table_size & (table_size - 1):
            raise ValueError(f"table_size must be a power of two, got {table_size}")
        self.table_size = table_size
        self.features = features
        self.tables = nn.Parameter(torch.empty(levels, table_size, features).uniform_(-1e-4, 1e-4))

    @property
    def out_dim(self) -> int:
        return len(self.resolutions) * self.features

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """``[N, L * F]`` features at ``points [N, 3]``, differentiable in the tables and the points."""
        index, frac = self.cells(points)
        value = _trilinear(_gather(self.tables.reshape(-1, self.features), index), frac, False)[0]  # [F, N, L]
        return value.permute(1, 2, 0).reshape(len(points), -1)

    def with_jacobian(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(features [N, L * F], jacobian [N, L * F, 3])``: the encoding and its derivative with
        respect to the point (per unit-volume unit), both computed in closed form from one gather.

        Both are differentiable in the tables, not in the points: this is what an eikonal loss
        needs, without autograd's double backward through the interpolation (about 2.7x faster on
        the CPU for a NeuS training step's SDF).
        """
        index, frac = self.cells(points.detach())
        out = _trilinear(_gather(self.tables.reshape(-1, self.features), index), frac, True)  # [4, F, N, L]
        inside = ((points > -1.0) & (points < 1.0)).to(frac.dtype)  # [N, 3] clamped points do not move
        scale = self.scales(frac) * inside.t()[:, None, :, None]  # [3, 1, N, L] d(cell position)/d(point)
        value = out[0].permute(1, 2, 0).reshape(len(points), -1)
        jacobian = (out[1:] * scale).permute(2, 3, 1, 0).reshape(len(points), -1, 3)
        return value, jacobian

    def scales(self, points: torch.Tensor) -> torch.Tensor:
        """``[L]`` cells per unit-volume unit at each level (the unit volume is 2 wide), in the dtype
        and on the device of ``points``."""
        return torch.tensor(self.resolutions, dtype=points.dtype, device=points.device) / 2.0

    def cells(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(index [8, N, L], frac [3, N, L])``: the rows of the flattened tables holding the corners
        of each level's cell around ``points [N, 3]`` (corner ``c`` is offset by bit 0 of ``c`` along
        x, bit 1 along y, bit 2 along z), and the position within that cell along x, y and z (in the
        tables' dtype). Corner-major and axis-major, so that the interpolation works on contiguous
        ``[N, L]`` slices."""
        points = points.to(self.tables.dtype)
        resolutions = self.scales(points) * 2.0  # [L]
        pos = ((points.clamp(-1.0, 1.0).t() + 1.0) * 0.5)[:, :, None] * resolutions  # [3, N, L]
        low = torch.minimum(pos.floor(), resolutions - 1.0)
        frac = pos - low
        low = low.long()
        dense = self._dense_levels
        base = torch.arange(len(self.resolutions), device=points.device) * self.table_size  # [L] first row per level
        parts = []
        if dense:  # row = (x * (r + 1) + y) * (r + 1) + z: the low corner's row plus a fixed offset per corner
            sides = torch.tensor([self.resolutions[i] + 1 for i in range(dense)], device=points.device)  # [D]
            strides = torch.stack([sides * sides, sides, torch.ones_like(sides)])  # [3, D]
            offsets = (_CORNERS.to(points.device)[:, :, None] * strides).sum(1)  # [8, D]
            rows = (low[:, :, :dense] * strides[:, None]).sum(0) + base[:dense]  # [N, D]
            parts.append(rows + offsets[:, None])
        if dense < len(self.resolutions):  # hashed: the XOR of each axis's (low or high node) x prime
            hx, hy, hz = (torch.stack([low[axis, :, dense:], low[axis, :, dense:] + 1]) * _PRIMES[axis]
                          for axis in range(3))  # [2, N, H] each
            hashed = (hz[:, None, None] ^ hy[None, :, None] ^ hx[None, None, :]) & (self.table_size - 1)  # [2,2,2,N,H]
            parts.append(hashed.reshape(8, len(points), -1) + base[dense:])
        return torch.cat(parts, 2), frac

    @property
    def _dense_levels(self) -> int:
        """How many of the coarsest levels are stored densely (their nodes fit in a table)."""
        return sum((res + 1) ** 3 <= self.table_size for res in self.resolutions)


def _trilinear(corners: torch.Tensor, frac: torch.Tensor, derivatives: bool) -> torch.Tensor:
    """Trilinear interpolation of ``corners [F, 2, 2, 2, N, L]`` (indexed ``[f, z, y, x]``) at ``frac
    [3, N, L]``: ``[1, F, N, L]``, the value, or ``[4, F, N, L]`` with its derivatives along x, y and z
    (per cell), one axis at a time."""
    fx, fy, fz = frac
    low_x, high_x = corners.unbind(3)  # [F, 2, 2, N, L] each (unbind: one gradient buffer, not one per slice)
    along_x = high_x - low_x
    low_y, high_y = (low_x + fx * along_x).unbind(2)  # [F, 2, N, L] each
    along_y = high_y - low_y
    low_z, high_z = (low_y + fy * along_y).unbind(1)  # [F, N, L] each
    along_z = high_z - low_z
    value = low_z + fz * along_z
    if not derivatives:
        return value[None]
    x_at_low_y, x_at_high_y = along_x.unbind(2)  # [F, 2, N, L] each: the x-derivative at y = 0 and 1
    dx_low, dx_high = (x_at_low_y + fy * (x_at_high_y - x_at_low_y)).unbind(1)
    dy_low, dy_high = along_y.unbind(1)
    return torch.stack([value, dx_low + fz * (dx_high - dx_low), dy_low + fz * (dy_high - dy_low), along_z])


def _gather(tables: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``[F, 2, 2, 2, N, L]`` rows of ``tables [rows, F]`` at the cell corners ``index [8, N, L]``
    (one ``index_select``, whose backward is one scatter-add).

    Many corners are read feature-major straight from the transposed tables; a few (fewer than a
    quarter of the rows) row by row, then transposed, so that neither the gather nor its backward
    touches the whole table. Forward and backward on the CPU, 2 threads, 2^20 rows: 2000 points
    6 ms feature-major, 2 ms row by row; 42 000 points 20 ms and 27 ms."""
    _, n, levels = index.shape
    if index.numel() < tables.shape[0] // 4:
        return tables.index_select(0, index.reshape(-1)).t().reshape(tables.shape[1], 2, 2, 2, n, levels)
    return tables.t().index_select(1, index.reshape(-1)).view(tables.shape[1], 2, 2, 2, n, levels)
