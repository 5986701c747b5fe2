"""The asset of a PBR fit rendered under a light by the engine's own rasterizer: for scores on test
views (the capture's light, the one the fit found) and pictures. Blender's Cycles renders the same
asset for the relighting score (``engine evaluate``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from ..cameras import Cameras
from ..data.transforms import find_transforms, load_split
from ..evaluate import views_psnr
from ..protocol import ReconstructJob
from ..render import Fragments, RayCaster, antialias, interpolate, rasterize, sample_texture
from ..roi import Normalization
from ..texture import TexturedMesh
from .colour import srgb_decode, srgb_encode
from .light import SceneLight
from .rendering import vertex_normals
from .surface import shade
from .visibility import mesh_visibility

if TYPE_CHECKING:
    from ..methods.base import Material

# Ambient-occlusion rays per pixel of a rendered view.
RENDER_AO_RAYS = 32


def at(function: Callable[[np.ndarray], np.ndarray], points: torch.Tensor) -> torch.Tensor:
    """A numpy field of :class:`Material` evaluated at ``points [P, 3]``, as a float32 tensor on their device."""
    return torch.as_tensor(np.asarray(function(points.cpu().numpy()), dtype=np.float32), device=points.device)


@torch.no_grad()
def render_lit(vertices: torch.Tensor, faces: torch.Tensor, material: Material, cameras: Cameras, *,
               asset: TexturedMesh | None = None, light: SceneLight | None = None, offset: float = 0.01,
               background: float = 1.0, chunk: int = 4, seed: int = 0) -> torch.Tensor:
    """``[N, H, W, 3]`` sRGB images of the mesh ``(vertices [V, 3], faces [F, 3])`` (unit volume, like
    ``cameras``) wearing ``material``, lit by ``light`` (default: the material's own), over a grey
    ``background``: interpolated vertex normals (or the material's normal field), the sun's shadows
    and :data:`RENDER_AO_RAYS` occlusion rays per pixel against the same mesh, no tone mapping
    beyond the sRGB curve (clipped at 1, as Cycles' Standard view does).

    With ``asset`` (the exported mesh whose geometry ``vertices``/``faces`` are), the base colour,
    occlusion, roughness and metallic are read from its textures at each pixel's UV (and its specular
    level from it), as a game engine renders the asset (the occlusion map scales the environment's
    light; no occlusion rays, so no Monte Carlo noise); without, from ``material``'s fields and the rays."""
    light = (light or SceneLight.from_description(material.light.description)).to(vertices.device)
    generator = torch.Generator().manual_seed(seed)
    caster = RayCaster(vertices, faces)
    smooth = vertex_normals(vertices, faces)
    textures = None if asset is None else _asset_textures(asset, vertices.device)
    images = []
    for start in range(0, len(cameras), chunk):
        views = cameras[start:start + chunk]
        frags = rasterize(vertices, faces, views)
        covered = frags.face_id >= 0
        points = interpolate(vertices, faces, frags)[covered]  # [P, 3]
        normals = F.normalize(interpolate(smooth, faces, frags)[covered], dim=-1)
        if material.normal is not None:
            normals = at(material.normal, points)
        centres = views.centers.to(points)[:, None, None].expand(*covered.shape, 3)[covered]
        sun_visibility, occlusion = mesh_visibility(caster, points, normals, light.sun_direction,
                                                    rays=RENDER_AO_RAYS if asset is None else 0, offset=offset,
                                                    generator=generator)
        if asset is None:
            base, roughness, metallic = (at(material.base_colour, points), at(material.roughness, points),
                                         at(material.metallic, points))
        else:
            base, occlusion, roughness, metallic = _asset_maps(textures, faces, frags, covered)
        radiance = shade(light, normals, F.normalize(centres - points, dim=-1), base=srgb_decode(base),
                         roughness=roughness, metallic=metallic, sun_visibility=sun_visibility, occlusion=occlusion,
                         specular=material.specular if asset is None else asset.specular)
        image = torch.full((*covered.shape, 3), background, device=points.device)
        image[covered] = srgb_encode(radiance).clamp(0.0, 1.0)
        images.append(antialias(image, frags, vertices, faces, views).clamp(0.0, 1.0))
    return torch.cat(images) if images else torch.zeros(0, cameras.height, cameras.width, 3)



AssetTextures = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]


def _asset_textures(asset: TexturedMesh, device: torch.device) -> AssetTextures:
    """``(uvs [V, 2], base colour [Ht, Wt, 3] sRGB, ORM [Ht, Wt, 3] or None)`` of ``asset``, float32 in
    [0, 1] on ``device``."""
    def image(pixels: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(pixels, device=device).float() / 255.0

    uvs = torch.as_tensor(asset.uvs, dtype=torch.float32, device=device)
    return uvs, image(asset.texture), None if asset.orm is None else image(asset.orm)


def _asset_maps(textures: AssetTextures, faces: torch.Tensor, frags: Fragments, covered: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(base colour [P, 3] sRGB, occlusion [P], roughness [P], metallic [P])`` of an asset's
    ``textures`` (:func:`_asset_textures`) at the ``covered`` pixels ``[N, H, W]`` of the fragments
    ``frags`` (without an ORM map: open, roughness 0.5, no metal)."""
    uvs, base_texture, orm_texture = textures
    uv = interpolate(uvs, faces, frags)
    base = sample_texture(base_texture, uv)[covered]
    if orm_texture is None:
        ones = torch.ones(len(base), device=base.device)
        return base, ones, 0.5 * ones, 0.0 * ones
    orm = sample_texture(orm_texture, uv)[covered]
    return base, orm[:, 0], orm[:, 1], orm[:, 2]


def material_metrics(mesh: TexturedMesh, material: Material | None, normalization: Normalization,
                     job: ReconstructJob) -> dict[str, float]:
    """With a PBR ``material``, ``psnr_lit``: the asset lit by the light the fit found
    (:func:`render_lit`: the exported mesh with its base-colour and ORM textures, the material's
    normal field) against the ``test`` views.
    (The albedo PSNR against ``test_albedo`` is :func:`engine.evaluate.view_metrics`'s, for every asset.)"""
    metrics: dict[str, float] = {}
    dataset = Path(job.dataset)
    if material is not None and find_transforms(dataset, "test") is not None:
        test = normalization.split_to_unit(load_split(dataset, "test", scale=job.image_scale))
        vertices = normalization.to_unit(torch.as_tensor(mesh.vertices, dtype=torch.float32))
        faces = torch.as_tensor(mesh.faces, dtype=torch.long)
        metrics["psnr_lit"] = views_psnr(lambda cameras: render_lit(vertices, faces, material, cameras, asset=mesh),
                                         test)
    return metrics
