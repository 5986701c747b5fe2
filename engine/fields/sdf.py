"""A signed distance field over the unit volume: a hash-grid encoding feeding a small MLP."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .hash_grid import HashGrid


class SDFField(nn.Module):
    """Points ``[N, 3]`` (unit volume) -> signed distance ``[N]`` (unit-volume units, negative inside)
    and a geometry feature vector ``[N, features]`` for the colour heads.

    The MLP sees the points themselves and their hash-grid encoding. Finer encoding levels can be
    switched off (:meth:`set_active_levels`) for coarse-to-fine optimization: an inactive level
    contributes zeros.

    Activation: SiLU. Softplus(beta=100), the usual choice for SDF MLPs, is smooth too, but costs
    about 35x a SiLU per activation on the project's CPU (``benchmarks/bench_neus.py --activations``
    measures both); SiLU's second derivative is smooth as well, which the eikonal loss needs.
    """

    def __init__(self, levels: int = 12, finest: int = 512, table_size: int = 2**17, hidden: int = 64,
                 features: int = 15) -> None:
        super().__init__()
        self.encoding = HashGrid(levels=levels, features=2, base=16, finest=finest, table_size=table_size)
        self.mlp = nn.Sequential(
            nn.Linear(3 + self.encoding.out_dim, hidden), nn.SiLU(),
            nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, 1 + features),
        )
        self.register_buffer("level_mask", torch.ones(self.encoding.out_dim))
        self.features = features

    @property
    def levels(self) -> int:
        return len(self.encoding.resolutions)

    def set_active_levels(self, count: int) -> None:
        """Use only the ``count`` coarsest encoding levels."""
        per_level = self.encoding.features
        self.level_mask.zero_()
        self.level_mask[: max(1, count) * per_level] = 1.0

    def forward(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(sdf [N], features [N, F])`` at unit-volume ``points [N, 3]``."""
        encoded = self.encoding(points) * self.level_mask  # [N, L * 2]
        out = self.mlp(torch.cat([points, encoded], dim=-1))  # [N, 1 + F]
        return out[:, 0], out[:, 1:]

    def with_gradient(self, points: torch.Tensor, create_graph: bool = True
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(sdf [N], features [N, F], gradient [N, 3])``; the gradient is d sdf / d point (analytic:
        the MLP's input gradient by autograd, the encoding's Jacobian in closed form), kept
        differentiable in the parameters when ``create_graph`` (for the eikonal loss). No gradient
        flows back to ``points``."""
        encoded, jacobian = self.encoding.with_jacobian(points.detach())  # [N, E], [N, E, 3]
        encoded, jacobian = encoded * self.level_mask, jacobian * self.level_mask[:, None]
        with torch.enable_grad():
            inputs = torch.cat([points.detach(), encoded], dim=-1)  # [N, 3 + E]
            if not inputs.requires_grad:  # the tables are frozen: still need d sdf / d inputs
                inputs.requires_grad_(True)
            out = self.mlp(inputs)  # [N, 1 + F]
            (slope,) = torch.autograd.grad(out[:, 0].sum(), inputs, create_graph=create_graph)
        gradient = slope[:, :3] + torch.einsum("ne,nek->nk", slope[:, 3:], jacobian)
        return out[:, 0], out[:, 1:], gradient


def sdf_normals(field: SDFField, chunk: int = 16384) -> Callable[[np.ndarray], np.ndarray]:
    """Points ``[P, 3]`` (unit volume, numpy) -> ``[P, 3]`` unit outward normals of ``field`` (its
    normalized gradient), evaluated in chunks without gradient."""
    def normals(points: np.ndarray) -> np.ndarray:
        device = field.level_mask.device
        out = [F.normalize(field.with_gradient(torch.as_tensor(points[i:i + chunk], dtype=torch.float32, device=device),
                                               create_graph=False)[2], dim=-1).detach().cpu().numpy()
               for i in range(0, len(points), chunk)]
        return np.concatenate(out) if out else np.zeros((0, 3), np.float32)

    return normals


class ColourHead(nn.Module):
    """The rendered colour: a view-independent albedo plus a residual that depends on the normal, the
    view direction and the geometry features (shading the albedo cannot explain).

    ``albedo(points)`` is the surface colour (sRGB in [0, 1]) baked into the texture; the rendered
    colour is ``sigmoid(logit(albedo) + residual(features, normal, view))``.
    """

    def __init__(self, albedo: nn.Module, features: int = 15, hidden: int = 32) -> None:
        super().__init__()
        self.albedo = albedo
        self.residual = nn.Sequential(
            nn.Linear(features + 6, hidden), nn.SiLU(),
            nn.Linear(hidden, 3),
        )
        nn.init.zeros_(self.residual[-1].weight)
        nn.init.zeros_(self.residual[-1].bias)

    def forward(self, points: torch.Tensor, features: torch.Tensor, normals: torch.Tensor, views: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(colour [N, 3], albedo [N, 3])`` for unit-volume ``points [N, 3]``, geometry ``features
        [N, F]``, unit ``normals [N, 3]`` and unit view directions ``views [N, 3]`` (camera to point)."""
        albedo = self.albedo(points)  # [N, 3]
        logit = torch.logit(albedo.clamp(1e-4, 1 - 1e-4))
        colour = torch.sigmoid(logit + self.residual(torch.cat([features, normals, views], dim=-1)))
        return colour, albedo


class BackgroundField(nn.Module):
    """Colour of whatever lies outside the region of interest, as a function of the ray direction
    ``[N, 3]`` (world axes, unit length) -> sRGB ``[N, 3]``: a small MLP on low-frequency Fourier
    features of the direction. It lets mask-free data (objects on a table, in a room) be explained
    without putting the surroundings into the SDF."""

    def __init__(self, frequencies: int = 4, hidden: int = 32) -> None:
        super().__init__()
        self.register_buffer("scales", 2.0 ** torch.arange(frequencies, dtype=torch.float32))
        self.mlp = nn.Sequential(
            nn.Linear(3 + 6 * frequencies, hidden), nn.SiLU(),
            nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, 3),
        )

    def forward(self, directions: torch.Tensor) -> torch.Tensor:
        angles = (directions[:, None, :] * self.scales[:, None]).reshape(len(directions), -1)  # [N, 3K]
        return torch.sigmoid(self.mlp(torch.cat([directions, angles.sin(), angles.cos()], dim=-1)))
