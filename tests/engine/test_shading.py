"""The PBR shading on a rasterized mesh (``engine.shading.rendering``): where its gradient goes."""

from __future__ import annotations

import math

import pytest
import torch
import trimesh

from engine.cameras import Cameras
from engine.methods.dmtet import DMTetOptions
from engine.render import rasterize
from engine.shading import rendering
from engine.shading.light import MIN_START_SHARE, SceneLight
from engine.shading.material import PBRMaterial
from tests.support import orbit_c2w

SIZE = 32


def vertex_gradient(moves_surface: bool) -> torch.Tensor:
    """``[V, 3]``: the gradient of a shaded sphere's mean image with respect to its vertices."""
    torch.manual_seed(0)
    opts = DMTetOptions(material="pbr", ao_rays=0, shading_moves_surface=moves_surface)
    material = PBRMaterial(opts, levels=4, finest=32)
    sphere = trimesh.creation.icosphere(2)
    vertices = torch.tensor(sphere.vertices, dtype=torch.float32, requires_grad=True)
    faces = torch.tensor(sphere.faces)
    c2w = torch.tensor(orbit_c2w(2), dtype=torch.float32)
    focal = torch.full((2,), SIZE * 1.2)
    cameras = Cameras(c2w, focal, focal, torch.full((2,), SIZE / 2), torch.full((2,), SIZE / 2), SIZE, SIZE)
    frags = rasterize(vertices, faces, cameras)
    images, _ = rendering.render_material(material, vertices, faces, frags, cameras=cameras,
                                          background=torch.ones(3))
    images.mean().backward()
    return vertices.grad


@pytest.mark.parametrize("moves_surface", [False, True])
def test_the_shading_reaches_the_surface_through_its_normals_only_when_asked(moves_surface, monkeypatch):
    gradient = vertex_gradient(moves_surface)
    # the same with normals that can never carry a gradient: equal only when the shading detaches them
    computed = rendering.vertex_normals
    monkeypatch.setattr(rendering, "vertex_normals", lambda v, f: computed(v.detach(), f))
    through_positions_only = vertex_gradient(moves_surface)
    assert gradient.abs().sum() > 0 and through_positions_only.abs().sum() > 0
    assert torch.allclose(gradient, through_positions_only) != moves_surface


@pytest.mark.parametrize("sun_share", [0.0, 0.8])
def test_the_light_starts_split_between_sun_and_sky_as_the_brightness_shows(sun_share):
    """Brightness of a white sphere under a sun of ``sun_share`` of the light and an even sky for the
    rest: the start points the sun at the light and gives it its share (none: the floor)."""
    normals = torch.nn.functional.normalize(torch.randn(20000, 3, generator=torch.Generator().manual_seed(0)), dim=-1)
    towards = torch.nn.functional.normalize(torch.tensor([0.3, -0.4, 0.8]), dim=0)
    brightness = 0.7 * (sun_share * (normals @ towards).clamp_min(0.0) + (1.0 - sun_share))
    light = SceneLight()
    light.point_sun_at(normals, brightness)
    with torch.no_grad():
        sun, sky = float(light.sun_irradiance.mean()), math.pi * float(light.ambient.mean())
        assert sun / (sun + sky) == pytest.approx(max(sun_share, MIN_START_SHARE), abs=0.02)
        assert sun + sky == pytest.approx(math.pi, rel=1e-4)
        if sun_share > 0:
            assert float(light.sun_direction @ towards) > 0.999
