"""A PBR asset's base colour de-lit: from the photos themselves, by the light the fit found
(:func:`delit_base_colour`), or the field's freed of the ambient occlusion the fit did not model
(:func:`unoccluded_base_colour`).

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
from ..shading.colour import luminance, srgb_decode, srgb_encode
from ..shading.light import SceneLight
from ..shading.surface import shade
from ..shading.visibility import mesh_visibility
from .bake import VISIBILITY_EPS, view_depth, view_samples

# A texel whose summed squared shading weight is below this share of the median keeps the field's colour.
MIN_SHADING = 0.05
# unoccluded_base_colour brightens a texel's diffuse shading by at most this factor (deep crevices, whose occlusion
# estimate is the least certain, stay as the field has them beyond it).
MAX_UNOCCLUDE = 4.0
# Rounds of unoccluded_base_colour's joint solve of the colour and its multi-bounce darkening.
UNOCCLUDE_ROUNDS = 3
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
    specular: float,
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
        specular: the material's specular level in [0, 1].
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
                                            sun=sun[k], occlusion=ambient[k], specular=specular)
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
             roughness: torch.Tensor, metallic: torch.Tensor, sun: torch.Tensor, occlusion: torch.Tensor,
             specular: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(A [K, 3], B [K, 3])``: the linear radiance towards the camera at ``centre [3]`` is ``A * base + B``."""
    views = torch.nn.functional.normalize(centre - points, dim=-1)

    def radiance(base: float) -> torch.Tensor:
        return shade(light, normals, views, base=torch.full_like(points, base), roughness=roughness,
                     metallic=metallic, sun_visibility=sun, occlusion=occlusion, specular=specular)

    black = radiance(0.0)
    return radiance(1.0) - black, black


def multi_bounce_occlusion(occlusion: torch.Tensor, albedo: torch.Tensor) -> torch.Tensor:
    """``[P]`` the darkening ambient occlusion ``occlusion [P]`` (in [0, 1], the hemisphere's open share)
    causes on a surface of linear ``albedo [P]`` once light bounces between the crevice's walls: the
    cubic fit of Jimenez et al. 2016 (ground-truth ambient occlusion), ``max(o, ((a o + b) o + c) o)``
    with ``a, b, c`` linear in the albedo. A white crevice is far less dark than its occlusion."""
    a = 2.0404 * albedo - 0.3324
    b = -4.7951 * albedo + 0.6417
    c = 2.7552 * albedo + 0.6903
    return torch.maximum(occlusion, ((a * occlusion + b) * occlusion + c) * occlusion).clamp(0.0, 1.0)


def unoccluded_base_colour(
    points: np.ndarray,
    normals: np.ndarray,
    *,
    field_colour: np.ndarray,
    occlusion: np.ndarray,
    light: SceneLight,
    caster: RayCaster,
    shadow_offset: float,
) -> tuple[np.ndarray, np.ndarray]:
    """``(base colours [P, 3] sRGB in [0, 1], occlusion [P] in [0, 1])``: the field's ``field_colour
    [P, 3]`` at the surface ``points [P, 3]`` (unit ``normals [P, 3]``) freed of the darkening that the
    ambient occlusion ``occlusion [P]`` (the hemisphere's open share there) causes, and that darkening
    (:func:`multi_bounce_occlusion` of the freed colour), for the asset's occlusion map.

    A fit that traces no occlusion rays (``ao_rays`` 0) lights every point by the whole sky, so where
    the capture showed a crevice darker, the base colour took the darkening. The asset's occlusion
    map darkens the crevice again wherever it is rendered (a game engine's ambient occlusion, a path
    tracer's own shadowing), so the colour would show it twice. The diffuse light the fit assumed,
    ``S max(0, n.s) v + E(n)`` (``S``, ``v``: the sun's irradiance and visibility; ``E``: the
    environment's irradiance), and the one the asset gets, ``S max(0, n.s) v + o E(n)`` (``o`` the
    darkening), differ by a factor per texel; the linear colour is multiplied by it (at most
    :data:`MAX_UNOCCLUDE`) and clipped at white. The darkening depends on the colour, so the two are
    solved for together (:data:`UNOCCLUDE_ROUNDS` rounds from the field's colour); the darkening
    returned is the one the colour was freed of, so the two render what the fit saw.
    """
    device = caster.device
    p = torch.as_tensor(points, dtype=torch.float32, device=device)
    n = torch.as_tensor(normals, dtype=torch.float32, device=device)
    open_share = torch.as_tensor(occlusion, dtype=torch.float32, device=device).reshape(-1)
    light = light.to(device)
    with torch.no_grad():
        sun, _ = mesh_visibility(caster, p, n, light.sun_direction, rays=0, offset=shadow_offset,
                                 generator=torch.Generator())
        direct = light.sun_irradiance * ((n @ light.sun_direction).clamp_min(0.0) * sun)[:, None]  # [P, 3]
        environment = light.diffuse_irradiance(n)
        field = srgb_decode(torch.as_tensor(field_colour, dtype=torch.float32, device=device))
        linear = field
        for _ in range(UNOCCLUDE_ROUNDS):
            darkening = multi_bounce_occlusion(open_share, luminance(linear))
            gain = (direct + environment) / (direct + darkening[:, None] * environment).clamp_min(1e-8)
            linear = (field * gain.clamp(1.0, MAX_UNOCCLUDE)).clamp(0.0, 1.0)
    return srgb_encode(linear).cpu().numpy(), darkening.cpu().numpy()
