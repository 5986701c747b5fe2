"""A PBR asset: a learned material baked onto a low-poly mesh's UV layout, and its light as an HDR.

The maps (glTF 2.0's metallic-roughness model, which Blender's Principled BSDF shares):

* **base colour**: de-lit, sRGB (``TexturedMesh.texture``): the training images divided by the
  learned light's shading (:mod:`.delit`, sharp as the photos) when they are given, else the
  material's base-colour field;
* **ORM**: occlusion, roughness and metallic in the red, green and blue channels, linear
  (``TexturedMesh.orm``; glTF reads roughness from green and metallic from blue, and occlusion
  from red of the same image);
* **normal map**: the dense surface's normals in the low-poly mesh's MikkTSpace tangent frame
  (``TexturedMesh.normal_map``, :mod:`.surface_maps`).

Every map is read at each texel's *dense point* (the method's full-resolution surface under it).
Occlusion varies slowly, so it is computed on a texture ``OCCLUSION_SCALE`` times smaller and
scaled up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from ..data.dataset import DatasetSplit
from ..shading.colour import luminance, srgb_decode
from ..shading.light import SceneLight
from ..shading.visibility import mesh_occlusion
from .bake import fill_texture
from .delit import delit_base_colour, multi_bounce_occlusion, unoccluded_base_colour
from .environment import add_sun, environment_image
from .surface_maps import DenseSurface, bake_normal_map, sample_surface
from .textured_mesh import TexturedMesh
from .unwrap import decimate, unwrap

if TYPE_CHECKING:
    from ..methods.base import LearnedLight, Material

OCCLUSION_SCALE = 4
# Occlusion rays start this far (fraction of the bounding-box diagonal) off the dense surface.
OCCLUSION_OFFSET = 2e-3
# Side of the equirectangular environment image in pixels (width; the height is half).
ENVIRONMENT_WIDTH = 1024


def pbr_mesh(
    vertices: np.ndarray,
    faces: np.ndarray,
    material: Material,
    to_unit: Callable[[np.ndarray], np.ndarray],
    *,
    target_faces: int = 20_000,
    texture_size: int = 1024,
    views: DatasetSplit | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> TexturedMesh:
    """Decimate and UV-unwrap the dense mesh, then bake ``material`` and the dense surface's detail
    onto the result (:func:`pbr_textures`).

    Args:
        vertices, faces: the dense mesh (``[V, 3]`` world positions, ``[F, 3]`` indices).
        material: the learned material (its fields take unit-volume points).
        to_unit: world points ``[P, 3]`` -> the material's unit-volume points ``[P, 3]``.
        target_faces, texture_size: as :func:`engine.texture.texture_mesh`.
        views: as :func:`pbr_textures`.
        on_step: ``(step, total)`` progress callback; it may raise to cancel.
    """
    low_vertices, low_faces = decimate(vertices, faces, target_faces)
    low_vertices, low_faces, uvs, normals = unwrap(low_vertices, low_faces, texture_size)
    mesh = TexturedMesh(low_vertices, low_faces, uvs, normals, np.zeros((1, 1, 3), np.uint8), "")
    return pbr_textures(mesh, vertices, faces, material, to_unit, texture_size=texture_size, views=views,
                        on_step=on_step)


def pbr_textures(
    mesh: TexturedMesh,
    dense_vertices: np.ndarray,
    dense_faces: np.ndarray,
    material: Material,
    to_unit: Callable[[np.ndarray], np.ndarray],
    *,
    texture_size: int = 1024,
    views: DatasetSplit | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> TexturedMesh:
    """``mesh`` (UV-mapped, world frame) with its base colour, ORM and normal map baked from
    ``material`` read on the dense surface ``dense_vertices [Vd, 3]``, ``dense_faces [Fd, 3]``.

    With ``views`` (the training views, world frame), the base colour is theirs de-lit by the
    material's light (:func:`.delit.delit_base_colour`); without, the material's base-colour field
    (freed of the occlusion the fit did not model, :func:`.delit.unoccluded_base_colour`, when
    ``material.base_holds_occlusion``).

    Returns:
        The same geometry with ``texture`` (base colour, sRGB), ``orm`` and ``normal_map`` of
        ``texture_size`` squared texels.
    """
    steps = 4 + (0 if views is None else len(views))

    def step(done: int) -> None:
        if on_step is not None:
            on_step(done, steps)

    step(0)
    dense = DenseSurface(dense_vertices, dense_faces)
    samples = sample_surface(mesh.vertices, mesh.faces, mesh.uvs, mesh.normals, dense=dense,
                             texture_size=texture_size)
    unit = np.asarray(to_unit(samples.points), dtype=np.float32)
    if material.normal is not None and samples.found.any():
        samples.normals[samples.found] = _unit(material.normal(unit[samples.found]))
    step(1)
    occlusion = _occlusion_texture(mesh, dense, material, to_unit, texture_size)
    step(2)
    field_colour, roughness, metallic = material.base_colour(unit), material.roughness(unit), material.metallic(unit)
    if views is None and material.base_holds_occlusion:
        colour, darkening = unoccluded_base_colour(
            samples.points, samples.normals, field_colour=field_colour,
            occlusion=occlusion.reshape(-1)[samples.texel] / 255.0,
            light=SceneLight.from_description(material.light.description), caster=dense.caster,
            shadow_offset=OCCLUSION_OFFSET * dense.diagonal)
        occlusion = fill_texture(samples.texel, samples.points, darkening, texture_size)[..., 0]
        source = "learned PBR material, its base colour freed of the occlusion map's (multi-bounce) darkening"
    elif views is None:
        colour, source = field_colour, "learned PBR material"
    else:
        open_share = occlusion.reshape(-1)[samples.texel] / 255.0
        darkening = multi_bounce_occlusion(torch.as_tensor(open_share, dtype=torch.float32),
                                           luminance(srgb_decode(torch.as_tensor(field_colour, dtype=torch.float32))))
        colour = delit_base_colour(
            samples.points, samples.normals, field_colour=field_colour, roughness=roughness, metallic=metallic,
            occlusion=darkening.numpy(), specular=material.specular,
            light=SceneLight.from_description(material.light.description), caster=dense.caster,
            diagonal=dense.diagonal, views=views, shadow_offset=OCCLUSION_OFFSET * dense.diagonal,
            on_view=lambda done, _: step(2 + done))
        occlusion = fill_texture(samples.texel, samples.points, darkening.numpy(), texture_size)[..., 0]
        source = "learned PBR material, base colour from the training images de-lit by the learned light"
    base = fill_texture(samples.texel, samples.points, colour, texture_size)
    step(steps - 1)
    normal_map = bake_normal_map(samples)
    step(steps)
    orm = np.concatenate([occlusion[..., None], fill_texture(samples.texel, samples.points, roughness, texture_size),
                          fill_texture(samples.texel, samples.points, metallic, texture_size)], axis=-1)
    return replace(mesh, texture=base, orm=orm, normal_map=normal_map, specular=material.specular, source=source)


def _occlusion_texture(mesh: TexturedMesh, dense: DenseSurface, material: Material,
                       to_unit: Callable[[np.ndarray], np.ndarray], texture_size: int) -> np.ndarray:
    """``[S, S]`` uint8 ambient occlusion, baked at ``S / OCCLUSION_SCALE`` and scaled up bilinearly:
    the material's own estimate when it has one, else rays against the dense surface."""
    small = max(16, texture_size // OCCLUSION_SCALE)
    samples = sample_surface(mesh.vertices, mesh.faces, mesh.uvs, mesh.normals, dense=dense, texture_size=small)
    if material.occlusion is not None:
        values = material.occlusion(np.asarray(to_unit(samples.points), dtype=np.float32), samples.normals)
    else:
        occlusion = mesh_occlusion(torch.as_tensor(dense.vertices, dtype=torch.float32), torch.as_tensor(dense.faces),
                                   offset=OCCLUSION_OFFSET * dense.diagonal)
        values = occlusion(samples.points, samples.normals)
    image = fill_texture(samples.texel, samples.points, np.asarray(values, dtype=np.float32), small)[..., 0]
    return np.asarray(Image.fromarray(image, "L").resize((texture_size, texture_size), Image.BILINEAR))


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


def environment_hdr(light: LearnedLight, width: int = ENVIRONMENT_WIDTH) -> np.ndarray:
    """All of ``light`` as an equirectangular radiance map ``[width / 2, width, 3]`` (linear, row 0 at
    the top, Blender's world mapping): the environment sampled per pixel plus the sun splatted as a
    disc that keeps its irradiance (:func:`.environment.add_sun`)."""
    image = environment_image(light.environment, width)
    sun = light.description.get("sun")
    if sun is not None:
        image = add_sun(image, np.asarray(sun["direction"]), np.asarray(sun["irradiance"]),
                        float(sun.get("angle_deg", 1.0)))
    return image
