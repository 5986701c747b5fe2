"""The light a PBR fit learns: a sun (a directional light) and an environment (a constant ambient term
plus a few broad spherical Gaussian lobes), in the dataset's world axes.

Directions point from the object towards the light. Radiance and irradiance are linear, in the
units of the images once their sRGB curve is undone (Blender's world ``Color x Strength`` and sun
``Strength``). The environment's lobes are broad (``sharpness`` at most ``max_sharpness``): what is
sharp is the sun's, and broad lobes keep the diffuse irradiance's quadrature exact enough.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .sg import fibonacci_sphere, sg_evaluate, sg_integral, sg_product_integral

# The sun's angular diameter reported for exports (an HDR disc, Blender's sun Angle); it is not learned
# (shadow rays are cast to a point).
SUN_ANGLE_DEG = 1.0
# The least share of the starting light's irradiance (sun-facing) that the sun, or the environment, gets.
MIN_START_SHARE = 0.02
# Directions of the quadrature of the environment's diffuse irradiance.
QUADRATURE = 256


class SceneLight(nn.Module):
    """Sun + ambient + ``lobes`` spherical Gaussians, all learned.

    Parameters (all unconstrained): the sun's direction (normalized when used) and log irradiance
    (RGB), the log ambient radiance (RGB), the lobes' axes (normalized), sharpness logits
    (``max_sharpness * sigmoid``) and log amplitudes (RGB). The lobes start on a Fibonacci sphere,
    nearly dark, so that the environment starts as the ambient term alone.
    """

    def __init__(self, lobes: int = 12, max_sharpness: float = 8.0, sun: float = 1.0, ambient: float = 0.3) -> None:
        super().__init__()
        self.max_sharpness = max_sharpness
        self.sun_axis = nn.Parameter(torch.tensor([0.0, 0.0, 1.0]))
        self.log_sun = nn.Parameter(torch.full((3,), math.log(sun)))
        self.log_ambient = nn.Parameter(torch.full((3,), math.log(ambient)))
        self.lobe_axes = nn.Parameter(fibonacci_sphere(lobes))
        self.lobe_sharpness = nn.Parameter(torch.zeros(lobes))
        self.log_lobe_amplitude = nn.Parameter(torch.full((lobes, 3), -5.0))
        self.register_buffer("quadrature", fibonacci_sphere(QUADRATURE))

    @property
    def sun_direction(self) -> torch.Tensor:
        """``[3]`` unit direction towards the sun."""
        return F.normalize(self.sun_axis, dim=0)

    @property
    def sun_irradiance(self) -> torch.Tensor:
        """``[3]`` the sun's irradiance on a surface facing it (linear RGB)."""
        return self.log_sun.exp()

    @property
    def ambient(self) -> torch.Tensor:
        """``[3]`` the environment's constant radiance (linear RGB)."""
        return self.log_ambient.exp()

    def lobes(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(axes [K, 3] unit, sharpness [K], amplitudes [K, 3])`` of the environment's lobes."""
        return (F.normalize(self.lobe_axes, dim=-1), self.max_sharpness * torch.sigmoid(self.lobe_sharpness),
                self.log_lobe_amplitude.exp())

    def environment(self, directions: torch.Tensor) -> torch.Tensor:
        """``[N, 3]`` the environment's radiance (no sun) towards unit ``directions [N, 3]``."""
        return self.ambient + sg_evaluate(directions, *self.lobes())

    def diffuse_irradiance(self, normals: torch.Tensor) -> torch.Tensor:
        """``[P, 3]`` the environment's irradiance ``E(n) = integral of L(w) max(0, n . w) dw`` on
        surfaces with unit ``normals [P, 3]``, nothing in the way: exact for the ambient term (``pi``
        times it), by quadrature over :data:`QUADRATURE` directions for the lobes."""
        directions = self.quadrature
        radiance = sg_evaluate(directions, *self.lobes()) * (4.0 * math.pi / len(directions))  # [M, 3]
        return math.pi * self.ambient + torch.relu(normals @ directions.t()) @ radiance

    def specular_integrals(self, reflected: torch.Tensor, sharpness: torch.Tensor) -> torch.Tensor:
        """``[P, 3]`` the integral of the environment times a spherical Gaussian of unit amplitude
        around the unit ``reflected [P, 3]`` directions with ``sharpness [P]`` (the specular lobe,
        see :func:`engine.shading.surface.shade`)."""
        axes, lobe_sharpness, amplitudes = self.lobes()
        products = sg_product_integral(reflected[:, None], sharpness[:, None], axes[None], lobe_sharpness[None])
        return self.ambient * sg_integral(sharpness)[:, None] + products @ amplitudes

    def mean_radiance(self) -> torch.Tensor:
        """``[3]`` the environment's radiance averaged over all directions."""
        _, sharpness, amplitudes = self.lobes()
        return self.ambient + (sg_integral(sharpness)[:, None] * amplitudes).sum(0) / (4.0 * math.pi)

    def regularizers(self) -> dict[str, torch.Tensor]:
        """The light's priors, unweighted:

        * ``white_balance``: how far the sun's colour and the environment's mean colour are from
          grey (mean over channels of ``|c / mean(c) - 1|``, summed over the two): a photo's white
          balance is usually set for its light, so the light is white and colour stays in the albedo;
        * ``light_scale``: ``log(E / pi)^2``, ``E`` the irradiance of a surface facing the sun under
          the whole light (sun + environment, luminance): the exposure prior that white under the
          brightest light is just not clipped (exactly so for a uniform white world of strength 1,
          the shading's layering renders white there as 1). Albedo and light trade a common factor
          otherwise; only the highlights' Fresnel pins it down on its own.
        """
        def off_grey(rgb: torch.Tensor) -> torch.Tensor:
            return (rgb / rgb.mean().clamp_min(1e-8) - 1.0).abs().mean()

        sun = self.sun_direction
        brightest = self.sun_irradiance + self.diffuse_irradiance(sun[None])[0]
        return {"white_balance": off_grey(self.sun_irradiance) + off_grey(self.mean_radiance()),
                "light_scale": torch.log(brightest.mean() / math.pi) ** 2}

    @torch.no_grad()
    def point_sun_at(self, normals: torch.Tensor, brightness: torch.Tensor) -> None:
        """Start the light from what surface points with unit ``normals [P, 3]`` and linear
        ``brightness [P]`` show:

        * the sun's direction from the linear fit ``brightness ~ c0 + c . n`` (the gradient of a
          clamped cosine's best linear fit points at its light);
        * how the light splits between the sun and the environment from the fit
          ``brightness ~ k (S max(0, n . s) + E)`` (``S`` the sun's irradiance, ``E`` the ambient
          irradiance): a capture lit evenly from all sides starts with next to no sun (otherwise the
          fit has to explain flat light as a sun and put the missing shading into the base colour),
          one under a sun with most of its light in the sun. Their sum starts at ``pi``, the exposure
          prior's (:meth:`regularizers`), both at least :data:`MIN_START_SHARE` of it. The lobes stay dark.
        """
        design = torch.cat([normals, torch.ones_like(normals[:, :1])], dim=1).double()  # [P, 4]
        target = brightness[:, None].double()
        solution = torch.linalg.lstsq(design, target).solution[:3, 0]
        if float(solution.norm()) > 1e-6:
            self.sun_axis.copy_(F.normalize(solution.float(), dim=0))
        facing = (normals.double() @ self.sun_direction.double()).clamp_min(0.0)  # [P]
        split = torch.linalg.lstsq(torch.stack([facing, torch.ones_like(facing)], dim=1), target).solution[:, 0]
        sun, ambient = (float(v) for v in split.clamp_min(0.0))
        share = sun / (sun + ambient) if sun + ambient > 0 else 0.5
        share = min(max(share, MIN_START_SHARE), 1.0 - MIN_START_SHARE)
        self.log_sun.fill_(math.log(math.pi * share))
        self.log_ambient.fill_(math.log(1.0 - share))  # radiance: irradiance pi * (1 - share)

    @torch.no_grad()
    def describe(self) -> dict[str, Any]:
        """The JSON-ready description of ``engine.methods.base.LearnedLight.description``."""
        def rounded(values: torch.Tensor) -> list[float]:
            return [round(float(v), 5) for v in values]

        irradiance = self.sun_irradiance
        strength = float(irradiance.max())
        axes, sharpness, amplitudes = self.lobes()
        return {
            "model": "spherical gaussians + sun",
            "frame": "dataset world frame, directions towards the light",
            "sun": {"direction": rounded(self.sun_direction), "irradiance": rounded(irradiance),
                    "strength": round(strength, 5), "color": rounded(irradiance / max(strength, 1e-12)),
                    "angle_deg": SUN_ANGLE_DEG},
            "environment": {"lobes": [{"axis": rounded(a), "sharpness": round(float(s), 4), "amplitude": rounded(m)}
                                      for a, s, m in zip(axes, sharpness, amplitudes, strict=True)],
                            "ambient": rounded(self.ambient), "mean_radiance": rounded(self.mean_radiance())},
        }

    @classmethod
    def from_description(cls, description: dict[str, Any]) -> SceneLight:
        """The light of a :meth:`describe` output (as ``report.json`` and ``LearnedLight.description``
        keep it)."""
        lobes = description["environment"]["lobes"]
        light = cls(lobes=len(lobes))
        with torch.no_grad():
            light.sun_axis.copy_(torch.tensor(description["sun"]["direction"]))
            light.log_sun.copy_(torch.tensor(description["sun"]["irradiance"]).clamp_min(1e-12).log())
            light.log_ambient.copy_(torch.tensor(description["environment"]["ambient"]).clamp_min(1e-12).log())
            if lobes:
                sharpness = torch.tensor([lobe["sharpness"] for lobe in lobes]) / light.max_sharpness
                light.lobe_axes.copy_(torch.tensor([lobe["axis"] for lobe in lobes]))
                light.lobe_sharpness.copy_(torch.logit(sharpness.clamp(1e-6, 1 - 1e-6)))
                amplitudes = torch.tensor([lobe["amplitude"] for lobe in lobes])
                light.log_lobe_amplitude.copy_(amplitudes.clamp_min(1e-12).log())
        return light

    @torch.no_grad()
    def radiance(self, directions: torch.Tensor) -> torch.Tensor:
        """``[N, 3]`` environment and sun towards unit ``directions [N, 3]``, the sun a uniform disc of
        :data:`SUN_ANGLE_DEG` (its radiance the irradiance over the disc's solid angle)."""
        half = math.radians(SUN_ANGLE_DEG) / 2
        solid_angle = 2.0 * math.pi * (1.0 - math.cos(half))
        in_disc = (directions @ self.sun_direction) >= math.cos(half)
        return self.environment(directions) + in_disc[:, None] * (self.sun_irradiance / solid_angle)
