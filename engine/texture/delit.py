"""A PBR asset's base colour from the photos themselves, de-lit by the light the fit found.

The learned base-colour field is smooth (a hash grid after a few hundred or thousand steps); the
photos are as sharp as the capture. So the base colour is projected from the training images the way
the baked texture is (:func:`.bake.view_samples`: the same views, weights and visibility), and each
view's colour is explained by the fitted shading instead of being kept as it is:

* at a texel's dense point, with the material's roughness and metallic there, the sun's visibility
  (one ray against the dense surface) and the ambient occlusion, the linear radiance the learned light
  sends towards a camera is ``A * base + B`` per channel, ``B`` the radiance of a black base (the
  highlights the light predicts), ``A`` that of a white one minus ``B`` (the diffuse shading). It is
  exact for dielectrics, whose specular colour does not depend on the base colour;
* the base colour is the weighted least-squares solution over the views that see the texel,
  ``sum w A (c - B) / sum w A^2`` per channel (``c`` the photo's linear colour, ``w`` the baked
  texture's weight): views where the texel is in the sun decide, views where it is in shadow count
  less (their ``A`` is the ambient light's alone), and predicted highlights are taken off.

Where the views explain too little (``sum w A^2`` below :data:`MIN_SHADING` of its median), the
field's base colour is kept.

Measured (BENCHMARKS, *Materials*, session 6), it is not the default (``base_colour_from=field``):
on bunny-studio the field's base colour scores 0.4 dB better against the true albedo, on spot this
one 0.2 dB better under the found light, and it costs a minute of baking. Where the fitted light
is too dim for a white object (spot: half its texels would need a base colour above 1) the colour
clips at white.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..data.dataset import DatasetSplit
from ..render import RayCaster
from ..shading.colour import srgb_decode, srgb_encode
from ..shading.light import SceneLight
from ..shading.surface import shade
from ..shading.visibility import mesh_visibility
from .bake import VISIBILITY_EPS, view_depth, view_samples

# A texel whose summed squared shading weight is below this share of the median keeps the field's colour.
MIN_SHADING = 0.05
# Texels shaded at a time (bounds the memory of the shading's intermediate buffers).
CHUNK = 1 << 17


def delit_base_colour(
    points: np.ndarray,
    normals: np.ndarray,
    *,
    field_colour: np.ndarray,
    roughness: np.ndarray,
    metallic: np.ndarray,
    occlusion: np.ndarray,
    light: SceneLight,
    caster: RayCaster,
    diagonal: float,
    views: DatasetSplit,
    shadow_offset: float,
    on_view: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """``[P, 3]`` sRGB base colours in [0, 1] of the surface ``points [P, 3]`` (world frame of
    ``views``, on the surface of ``caster``) with unit ``normals [P, 3]``.

    Args:
        field_colour: ``[P, 3]`` the material's sRGB base colour there (kept where the photos say too little).
        roughness, metallic, occlusion: ``[P]`` in [0, 1], the material's and the ambient occlusion there.
        light: the light the fit found (directions are the same in the world and unit frames).
        caster: the dense surface, for the views' depth maps and the sun's shadow rays.
        diagonal: the dense surface's bounding-box diagonal (world units), for the visibility tolerance.
        views: the training views (images and masks, world frame); the work runs on ``caster``'s device.
        shadow_offset: shadow rays start this far (world units) off the surface.
        on_view: ``(views_done, n_views)`` after each view; it may raise to cancel.
    """
    device = caster.device
    views = views.to(device)
    p = torch.as_tensor(points, dtype=torch.float32, device=device)
    n = torch.as_tensor(normals, dtype=torch.float32, device=device)
    rough = torch.as_tensor(roughness, dtype=torch.float32, device=device).reshape(-1)
    metal = torch.as_tensor(metallic, dtype=torch.float32, device=device).reshape(-1)
    ambient = torch.as_tensor(occlusion, dtype=torch.float32, device=device).reshape(-1)
    light = light.to(device)
    with torch.no_grad():
        sun, _ = mesh_visibility(caster, p, n, light.sun_direction, rays=0, offset=shadow_offset,
                                 generator=torch.Generator())
        numerator = torch.zeros(len(p), 3, device=device)
        denominator = torch.zeros(len(p), 3, device=device)
        for i in range(len(views)):
            depth = view_depth(caster, views.cameras[i])
            seen = view_samples(views, i, p, n, depth=depth, eps=VISIBILITY_EPS * diagonal)
            if seen is not None:
                index, colour, weight = seen
                centre = views.cameras[i].centers[0].to(p)
                for start in range(0, len(index), CHUNK):
                    k = index[start:start + CHUNK]
                    gain, offset = _shading(light, p[k], n[k], centre, roughness=rough[k], metallic=metal[k],
                                            sun=sun[k], occlusion=ambient[k])
                    w = weight[start:start + CHUNK, None]
                    numerator.index_add_(0, k, w * gain * (srgb_decode(colour[start:start + CHUNK]) - offset))
                    denominator.index_add_(0, k, w * gain * gain)
            if on_view is not None:
                on_view(i + 1, len(views))
        linear = numerator / denominator.clamp_min(1e-12)
        strength = denominator.mean(-1)
        typical = strength[strength > 0].median() if bool((strength > 0).any()) else strength.new_tensor(0.0)
        trusted = (strength > 0) & (strength > MIN_SHADING * typical)
        base = srgb_encode(linear.clamp(0.0, 1.0))
    field = torch.as_tensor(field_colour, dtype=torch.float32, device=device)
    return torch.where(trusted[:, None], base, field).cpu().numpy()


def _shading(light: SceneLight, points: torch.Tensor, normals: torch.Tensor, centre: torch.Tensor, *,
             roughness: torch.Tensor, metallic: torch.Tensor, sun: torch.Tensor, occlusion: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(A [K, 3], B [K, 3])``: the linear radiance towards the camera at ``centre [3]`` is ``A * base + B``."""
    views = torch.nn.functional.normalize(centre - points, dim=-1)

    def radiance(base: float) -> torch.Tensor:
        return shade(light, normals, views, base=torch.full_like(points, base), roughness=roughness,
                     metallic=metallic, sun_visibility=sun, occlusion=occlusion)

    black = radiance(0.0)
    return radiance(1.0) - black, black
