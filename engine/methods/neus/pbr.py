"""NeuS with ``material=pbr``: the material composited along each ray, then shaded once per ray.

Each sample carries the material field's channels (sRGB base colour, roughness, metallic) and its
SDF normal; the ray composites them with its NeuS weights (a table's share: its albedo, roughness 1,
no metal), and the surface point the ray reaches (its expected depth) is shaded under the learned
light (:func:`engine.shading.surface.shade`). The sun's visibility and the ambient occlusion there
come from rays marched through the cached SDF (:func:`.sampling.march_cache`; the table blocks every
ray going down from above it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...shading.colour import luminance, srgb_decode, tonemap
from ...shading.surface import shade
from ...shading.visibility import cosine_directions
from ...utils.math import ray_box
from .model import NeuSModel
from .options import NeuSOptions
from .sampling import SurfaceCache, march_cache

# Channels composited per ray: base colour (3, sRGB), roughness, metallic, normal (3).
CHANNELS = 8


def sample_channels(model: NeuSModel, points: torch.Tensor, normals: torch.Tensor) -> torch.Tensor:
    """``[N, 8]`` the material and the unit normal of samples ``points [N, 3]``."""
    return torch.cat([model.material.field(points), normals], dim=-1)


def table_channels(albedo: torch.Tensor, normals: torch.Tensor) -> torch.Tensor:
    """``[N, 8]`` the table's material (its ``albedo [N, 3]``, roughness 1, not metal) with ``normals [N, 3]``."""
    return torch.cat([albedo, torch.ones_like(albedo[:, :1]), torch.zeros_like(albedo[:, :1]), normals], dim=-1)


@torch.no_grad()
def blocked(model: NeuSModel, cache: SurfaceCache, starts: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """``[R]`` whether rays from ``starts [R, 3]`` along unit ``directions [R, 3]`` cross the cached
    surface (a cached SDF below zero on the way) or, with a table, go down from above it."""
    _, leave = ray_box(starts, directions, cache.lo, cache.hi)
    _, _, deepest, _ = march_cache(cache, starts, directions, torch.zeros_like(leave), leave)
    hit = (leave > 0) & (deepest < 0)
    if model.has_table:
        hit |= (model.height(starts) > 0) & (directions @ model.table_up < 0)
    return hit


def cache_visibility(model: NeuSModel, cache: SurfaceCache, points: torch.Tensor, normals: torch.Tensor, *,
                     rays: int, offset: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sun_visibility [R], occlusion [R])`` of surface ``points [R, 3]`` with unit ``normals``: the
    sun's ray and ``rays`` cosine-distributed ones, started ``offset`` (at least a cache cell) off the
    surface, marched through the cache (:func:`blocked`)."""
    start = points.detach() + max(offset, cache.cell) * normals.detach()
    sun = model.material.light.sun_direction.detach().expand_as(start)
    sun_visibility = (~blocked(model, cache, start, sun)).to(points.dtype)
    if rays == 0:
        return sun_visibility, torch.ones_like(sun_visibility)
    directions = cosine_directions(normals.detach(), rays, generator)  # [R, K, 3]
    open_sky = ~blocked(model, cache, start[:, None].expand_as(directions).reshape(-1, 3), directions.reshape(-1, 3))
    return sun_visibility, open_sky.view(len(points), rays).to(points.dtype).mean(1)


def pbr_losses(model: NeuSModel, cache: SurfaceCache, out: dict[str, torch.Tensor], origins: torch.Tensor,
               directions: torch.Tensor, *, target: torch.Tensor, background: torch.Tensor, opts: NeuSOptions
               ) -> dict[str, torch.Tensor]:
    """The shaded colour term and the material's priors of a step with ``material=pbr``.

    ``out`` is :func:`.rendering.render_rays`'s (``material`` holds the :data:`CHANNELS` composited
    channels); ``target`` and ``background`` ``[R, 3]`` are sRGB. ``shaded``: L1 between the tone-mapped
    (:func:`engine.shading.colour.tonemap`) linear render over the linear background and the
    linearized target; then :meth:`engine.shading.material.PBRMaterial.regularizers` at the surface
    points of the rays that meet the object. When the model has a radiance head (``radiance_guide``),
    the ray's opacity and depth reach this term without their gradient: it trains the material and
    the light on the surface the head shapes.
    """
    material = model.material
    guided = model.colour is not None
    opacity = out["opacity"].detach() if guided else out["opacity"]
    solid = opacity > 0.5
    values = out["material"] / opacity.clamp_min(1e-6)[:, None]  # [R, 8] not premultiplied
    normals = F.normalize(values[:, 5:], dim=-1)
    depth = out["depth"].detach() if guided else out["depth"]
    points = origins + directions * (depth / opacity.clamp_min(1e-6))[:, None]
    linear_target = srgb_decode(target)
    if not material.sun_placed and bool(solid.any()):
        material.place_sun(normals[solid].detach(), luminance(linear_target[solid]))
    seen = opacity > 1e-3  # rays that show any surface: their light is traced
    sun_visibility, occlusion = torch.ones_like(opacity), torch.ones_like(opacity)
    if bool(seen.any()):
        sun_visibility[seen], occlusion[seen] = cache_visibility(model, cache, points[seen], normals[seen],
                                                                 rays=opts.ao_rays, offset=opts.shadow_offset,
                                                                 generator=material.generator)
    radiance = shade(material.light, material.shading_normals(normals), -directions, base=srgb_decode(values[:, :3]),
                     roughness=values[:, 3],
                     metallic=values[:, 4], sun_visibility=sun_visibility, occlusion=occlusion,
                     specular=material.specular)
    colour = radiance * opacity[:, None] + (1.0 - opacity[:, None]) * srgb_decode(background)
    losses = {"shaded": (tonemap(colour) - tonemap(linear_target)).abs().mean()}
    surface = points[solid].detach() if bool(solid.any()) else points[:1].detach()
    return {**losses, **material.regularizers(surface, opts.albedo_smooth_radius)}
