"""A learned PBR material (base colour, roughness, metallic over the unit volume; one specular level)
and its light."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from ..fields import AlbedoField, albedo_colours
from .colour import srgb_decode
from .light import SceneLight
from .options import PBROptions
from .surface import shade

if TYPE_CHECKING:
    from ..methods.base import Material

# Start values: a mid roughness, no metal (sigmoid logits of the field's last layer), the specular
# level near glTF's default 1 (sigmoid(3) = 0.95).
ROUGHNESS_START_LOGIT = 0.0
METALLIC_START_LOGIT = -4.0
SPECULAR_START_LOGIT = 3.0


class PBRMaterial(nn.Module):
    """The material field (one hash grid + MLP, 5 channels: sRGB base colour, roughness, metallic),
    one specular level for the whole object and the :class:`SceneLight`, learned together with a
    method's surface.

    The specular level (glTF's ``KHR_materials_specular`` factor, :mod:`engine.shading.brdf`) is one
    number, not a map: it is what lets a matte capture (a diffuse object, or flat light) turn the
    dielectric's 4% reflection off, which the base colour cannot (it only scales the diffuse part);
    a map of it would trade freely with the base colour and the roughness wherever the light is flat.
    """

    def __init__(self, opts: PBROptions, levels: int = 12, finest: int = 512) -> None:
        super().__init__()
        # The material draws its random numbers from its own streams (the field's start here, the
        # smoothness jitter from ``generator``), so the method's own draws are those it makes without
        # a material: NeuS's surface shaped by its radiance head alone is then baked's to the bit.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.field = AlbedoField(levels=levels, finest=finest, channels=5)
        with torch.no_grad():
            self.field.mlp[-1].bias[3:] = torch.tensor([ROUGHNESS_START_LOGIT, METALLIC_START_LOGIT])
        self.specular_logit = nn.Parameter(torch.tensor(SPECULAR_START_LOGIT))
        self.light = SceneLight(lobes=opts.light_lobes)
        self.ao_rays, self.shadow_offset = opts.ao_rays, opts.shadow_offset
        self.shading_moves_surface = opts.shading_moves_surface
        self.generator = torch.Generator().manual_seed(0)  # the occlusion rays' directions, the jitter
        self.register_buffer("sun_started", torch.zeros((), dtype=torch.bool))

    @property
    def specular(self) -> torch.Tensor:
        """The 0-d specular level in (0, 1)."""
        return torch.sigmoid(self.specular_logit)

    def light_parameters(self) -> list[nn.Parameter]:
        """What learns at the light's rate: the light's parameters and the specular level (both one
        number or a few for the whole scene)."""
        return [*self.light.parameters(), self.specular_logit]

    @property
    def sun_placed(self) -> bool:
        """Whether :meth:`place_sun` has run."""
        return bool(self.sun_started)

    def place_sun(self, normals: torch.Tensor, brightness: torch.Tensor) -> None:
        """Start the sun from the surface's ``normals [P, 3]`` and the images' linear ``brightness [P]``
        there (:meth:`SceneLight.point_sun_at`), once."""
        self.light.point_sun_at(normals, brightness)
        self.sun_started.fill_(True)

    def shading_normals(self, normals: torch.Tensor) -> torch.Tensor:
        """The surface's unit ``normals [P, 3]`` as the shading takes them: detached unless
        ``shading_moves_surface`` (see :class:`PBROptions`)."""
        return normals if self.shading_moves_surface else normals.detach()

    def forward(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(base colour [P, 3] sRGB-encoded, roughness [P], metallic [P])`` at unit-volume ``points [P, 3]``."""
        values = self.field(points)
        return values[:, :3], values[:, 3], values[:, 4]

    def radiance(self, points: torch.Tensor, normals: torch.Tensor, views: torch.Tensor, *,
                 sun_visibility: torch.Tensor, occlusion: torch.Tensor) -> torch.Tensor:
        """``[P, 3]`` linear radiance of ``points [P, 3]`` towards the viewer (see
        :func:`engine.shading.surface.shade` for the arguments)."""
        base, roughness, metallic = self(points)
        return shade(self.light, normals, views, base=srgb_decode(base), roughness=roughness, metallic=metallic,
                     sun_visibility=sun_visibility, occlusion=occlusion, specular=self.specular)

    def regularizers(self, points: torch.Tensor, radius: float) -> dict[str, torch.Tensor]:
        """The material's and the light's priors at surface ``points [P, 3]``, unweighted:
        ``albedo_smooth`` and ``roughness_smooth`` (L1 between the values at the points and at a
        jitter of standard deviation ``radius`` away), ``metallic`` (the mean metalness) and the
        light's (:meth:`SceneLight.regularizers`)."""
        jitter = torch.randn(points.shape, generator=self.generator).to(points) * radius
        here, there = self.field(points), self.field(points + jitter)
        difference = (here - there).abs()
        return {"albedo_smooth": difference[:, :3].mean(), "roughness_smooth": difference[:, 3].mean(),
                "metallic": here[:, 4].mean(), **self.light.regularizers()}

    def export(self, normal: Callable[[np.ndarray], np.ndarray] | None = None,
               occlusion: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> Material:
        """The :class:`~engine.methods.base.Material` the method hands to the pipeline (a frozen copy
        of nothing: it evaluates this module, which must no longer be trained)."""
        from ..methods.base import LearnedLight, Material  # noqa: PLC0415 -- the methods import this module

        def channel(index: slice | int) -> Callable[[np.ndarray], np.ndarray]:
            return lambda points: albedo_colours(self.field, points)[:, index]

        light = self.light

        def evaluate(function: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[np.ndarray], np.ndarray]:
            def run(directions: np.ndarray) -> np.ndarray:
                with torch.no_grad():
                    device = light.log_sun.device
                    return function(torch.as_tensor(directions, dtype=torch.float32, device=device)).cpu().numpy()
            return run

        return Material(base_colour=channel(slice(0, 3)), roughness=channel(3), metallic=channel(4),
                        specular=round(float(self.specular.detach()), 4), base_holds_occlusion=self.ao_rays == 0,
                        light=LearnedLight(light.describe(), evaluate(light.environment), evaluate(light.radiance)),
                        normal=normal, occlusion=occlusion)
