"""The PBR base colour projected from the photos and de-lit by the fitted light
(:mod:`engine.texture.delit`): on a striped sphere under a sun with a known light, the de-lit colour
is the true base colour on the lit and the shadowed side, where the photos' own colours are not; the
field's colour freed of the occlusion the fit did not model. And the lit render of an exported asset
(``psnr_lit``) reads the asset's own textures."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch
import trimesh

from engine.cameras import Cameras
from engine.data.dataset import DatasetSplit
from engine.methods.base import LearnedLight, Material
from engine.render import RayCaster
from engine.shading.colour import srgb_decode
from engine.shading.evaluation import render_lit
from engine.shading.light import SceneLight
from engine.shading.surface import shade
from engine.texture.bake import average_views
from engine.texture.delit import delit_base_colour, unoccluded_base_colour
from engine.texture.pbr import pbr_mesh
from tests.support import orbit_c2w

SIZE = 64


def stripes(points: np.ndarray) -> np.ndarray:
    """``[P, 3]`` sRGB base colour: red-ish and blue-ish bands along z."""
    band = (np.sin(6.0 * points[:, 2]) > 0)[:, None]
    return np.where(band, [0.8, 0.35, 0.3], [0.25, 0.4, 0.7]).astype(np.float32)


def known_light() -> SceneLight:
    light = SceneLight(lobes=0)
    with torch.no_grad():
        light.sun_axis.copy_(torch.tensor([0.4, -0.5, 0.75]))
        light.log_sun.fill_(math.log(2.5))
        light.log_ambient.fill_(math.log(0.12))
    return light


def test_the_photos_de_lit_by_the_true_light_give_the_true_base_colour():
    sphere = trimesh.creation.icosphere(5)
    vertices = torch.as_tensor(sphere.vertices, dtype=torch.float32)
    faces = torch.as_tensor(sphere.faces, dtype=torch.long)
    light = known_light()
    material = Material(base_colour=stripes, roughness=lambda p: np.full(len(p), 0.5, np.float32),
                        metallic=lambda p: np.zeros(len(p), np.float32),
                        light=LearnedLight(light.describe(), environment=lambda d: 0 * d, radiance=lambda d: 0 * d))
    c2w = np.concatenate([orbit_c2w(10, distance=3.5, elevation=0.6), orbit_c2w(10, distance=3.5, elevation=-0.4)])
    fx = 0.5 * SIZE / math.tan(0.35)
    cameras = Cameras(torch.as_tensor(c2w, dtype=torch.float32),
                      *(torch.full((len(c2w),), v) for v in (fx, fx, SIZE / 2, SIZE / 2)), SIZE, SIZE)
    images = render_lit(vertices, faces, material, cameras, light=light)  # [N, H, W, 3] sRGB
    views = DatasetSplit(images=images, masks=None, cameras=cameras, names=[f"{i}" for i in range(len(c2w))])

    points, face = trimesh.sample.sample_surface_even(sphere, 4000, seed=0)
    normals = sphere.face_normals[face]
    truth = stripes(points)
    grey = np.full_like(truth, 0.5)
    delit = delit_base_colour(points, normals, field_colour=grey, roughness=np.full(len(points), 0.5),
                              metallic=np.zeros(len(points)), occlusion=np.ones(len(points)), specular=1.0,
                              light=light, caster=RayCaster(vertices, faces), diagonal=2 * math.sqrt(3), views=views,
                              shadow_offset=0.01)

    away = normals @ light.sun_direction.detach().numpy() < -0.2  # the sun does not reach these
    error = np.abs(delit - truth).mean(-1)
    assert np.median(error) < 0.01
    assert np.median(error[away]) < 0.02 and np.median(error[~away]) < 0.01
    assert (np.abs(delit - grey).mean(-1) > 1e-3).mean() > 0.95  # the photos decided, not the field
    # the photos as they are (the baked texture's average of the same samples) are far from it
    p, n = torch.as_tensor(points, dtype=torch.float32), torch.as_tensor(normals, dtype=torch.float32)
    baked, _ = average_views(views, p, n, RayCaster(vertices, faces), eps=1e-2)
    assert np.median(np.abs(baked.numpy() - truth).mean(-1)) > 10 * np.median(error)


def test_the_lit_render_of_an_asset_reads_its_textures_as_the_fields_gave_them():
    """``render_lit(asset=...)`` (what ``psnr_lit`` scores) shades the exported textures: a sphere's
    smooth material baked onto its UVs renders as the fields do, and a wrong texture does not."""
    sphere = trimesh.creation.icosphere(4)
    light = known_light()
    material = Material(base_colour=lambda p: np.clip(0.5 + 0.4 * p, 0, 1).astype(np.float32),
                        roughness=lambda p: np.full(len(p), 0.6, np.float32),
                        metallic=lambda p: np.zeros(len(p), np.float32),
                        light=LearnedLight(light.describe(), environment=lambda d: 0 * d, radiance=lambda d: 0 * d))
    asset = pbr_mesh(sphere.vertices, sphere.faces, material, lambda p: p, target_faces=1200, texture_size=256)
    vertices = torch.as_tensor(asset.vertices, dtype=torch.float32)
    faces = torch.as_tensor(asset.faces, dtype=torch.long)
    c2w = orbit_c2w(4, distance=3.5, elevation=0.5)
    fx = 0.5 * SIZE / math.tan(0.35)
    cameras = Cameras(torch.as_tensor(c2w, dtype=torch.float32),
                      *(torch.full((len(c2w),), v) for v in (fx, fx, SIZE / 2, SIZE / 2)), SIZE, SIZE)
    fields = render_lit(vertices, faces, material, cameras, light=light)
    textured = render_lit(vertices, faces, material, cameras, light=light, asset=asset)
    assert float((fields - textured).abs().mean()) < 0.01
    wrong = render_lit(vertices, faces, material, cameras, light=light,
                       asset=replace(asset, texture=255 - asset.texture))
    assert float((fields - wrong).abs().mean()) > 0.05


def test_the_field_colour_freed_of_occlusion_renders_under_the_occlusion_map_as_the_fit_saw_it():
    """A fit without occlusion rays saw a crevice's darkening as a darker base colour. Freed of it,
    the colour under the asset's occlusion map (the multi-bounce darkening) gives back the diffuse
    light the fit predicted, on the sunlit and the shadowed side, wherever white does not clip."""
    sphere = trimesh.creation.icosphere(4)
    points, face = trimesh.sample.sample_surface_even(sphere, 3000, seed=1)
    normals = sphere.face_normals[face]
    light = known_light()
    field = np.full((len(points), 3), 0.45, np.float32)
    occlusion = (0.4 + 0.6 * (points[:, 0] > 0)).astype(np.float32)  # half the ball in a "crevice"
    freed, darkening = unoccluded_base_colour(
        points, normals, field_colour=field, occlusion=occlusion, light=light,
        caster=RayCaster(torch.as_tensor(sphere.vertices, dtype=torch.float32), torch.as_tensor(sphere.faces)),
        shadow_offset=0.01)
    n = torch.as_tensor(normals, dtype=torch.float32)
    ones = torch.ones(len(n))
    lit = (n @ light.sun_direction.detach() > 0).float()  # a convex ball shadows itself only on its far side

    def diffuse(colour: np.ndarray, ambient: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            return shade(light, n, n, base=srgb_decode(torch.as_tensor(colour)), roughness=ones, metallic=0 * ones,
                         sun_visibility=lit, occlusion=torch.as_tensor(ambient), specular=0.0)

    assert np.allclose(freed[occlusion == 1], field[occlusion == 1], atol=1e-6)
    assert (freed[occlusion < 1] > field[occlusion < 1] + 0.01).all()  # facing the sun: little sky to undo
    # Light bouncing in the crevice: darker than its colour's own light, brighter than the bare occlusion.
    assert (darkening[occlusion < 1] > 0.4).all() and (darkening[occlusion < 1] < 0.6).all()
    seen, asset = diffuse(field, np.ones(len(n), np.float32)), diffuse(freed, darkening)
    assert torch.allclose(asset, seen, rtol=2e-3)
