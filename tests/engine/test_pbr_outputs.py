"""The PBR outputs: MikkTSpace tangents, the normal map baked from a dense surface, the
GLB's and the MTL's material, the environment HDR (mapping, file, the sun's energy)."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import trimesh
from PIL import Image

from engine.export import read_textured, write_glb, write_obj
from engine.methods.base import LearnedLight, Material
from engine.texture import unwrap
from engine.texture.environment import add_sun, direction_to_equirect, equirect_directions, read_hdr, write_hdr
from engine.texture.pbr import environment_hdr, pbr_mesh
from engine.texture.surface_maps import DenseSurface, bake_normal_map, sample_surface
from engine.texture.tangents import mikktspace_tangents

AMPLITUDE = 0.05
SPECULAR = 0.3  # the stand-in material's specular level (not glTF's default 1, so that it must be carried)


def bumps(points: np.ndarray) -> np.ndarray:
    """``f(p) = |p| - r(direction)``: a sphere of radius 1 with bumps of ``AMPLITUDE``."""
    radius = np.linalg.norm(points, axis=-1)
    d = points / radius[..., None]
    return radius - (1 + AMPLITUDE * np.sin(7 * d[..., 0]) * np.sin(6 * d[..., 1]) * np.cos(5 * d[..., 2]))


def true_normals(points: np.ndarray) -> np.ndarray:
    step = 1e-5
    gradient = np.stack([(bumps(points + step * e) - bumps(points - step * e)) / (2 * step) for e in np.eye(3)], -1)
    return gradient / np.linalg.norm(gradient, axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def bumpy():
    """The dense bumpy sphere (80k faces) and a coarse UV-unwrapped sphere (320 faces) inside it."""
    dense = trimesh.creation.icosphere(6)
    vertices = dense.vertices * (1 - bumps(dense.vertices))[:, None]
    coarse = trimesh.creation.icosphere(2)
    return (vertices, np.asarray(dense.faces)), unwrap(coarse.vertices, coarse.faces, 256)


def stand_in_material(light: LearnedLight | None = None) -> Material:
    light = light or LearnedLight({}, environment=lambda d: np.zeros((len(d), 3)), radiance=lambda d: 0 * d)
    return Material(base_colour=lambda p: np.clip(0.5 + 0.4 * p, 0, 1), roughness=lambda p: 0.25 + 0.5 * (p[:, 2] > 0),
                    metallic=lambda p: (p[:, 0] > 0).astype(np.float32), light=light, specular=SPECULAR)


def test_tangents_follow_u_and_the_sign_follows_mirrored_uvs():
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], np.float32)
    faces = np.array([[0, 1, 2], [1, 3, 2]])
    normals = np.tile([0, 0, 1.0], (4, 1))
    uvs = vertices[:, [1, 0]] * 0.5  # u runs along +y, v along +x: a mirrored layout
    tangents, signs = mikktspace_tangents(vertices, faces, uvs, normals)
    assert np.allclose(tangents, [0, 1, 0], atol=1e-6) and np.all(signs == -1)
    # the bitangent sign * cross(n, t) points along +v (here +x)
    assert np.allclose(signs[0] * np.cross(normals[0], tangents[0, 0]), [1, 0, 0], atol=1e-6)
    tangents, signs = mikktspace_tangents(vertices, faces, vertices[:, :2], normals)
    assert np.allclose(tangents, [1, 0, 0], atol=1e-6) and np.all(signs == 1)


def test_normal_map_of_a_bumpy_sphere_reproduces_the_bumps(bumpy):
    (dense_vertices, dense_faces), (vertices, faces, uvs, normals) = bumpy
    samples = sample_surface(vertices, faces, uvs, normals, dense=DenseSurface(dense_vertices, dense_faces),
                             texture_size=256)
    assert samples.found.all()
    assert np.abs(bumps(samples.points.astype(np.float64))).max() < 0.01  # the dense points are on the dense surface
    image = bake_normal_map(samples)
    assert image.shape == (256, 256, 3) and image.dtype == np.uint8
    coefficients = image.reshape(-1, 3)[samples.texel] / 255.0 * 2 - 1
    shaded = np.einsum("pk,pkc->pc", coefficients, samples.frame)  # what a MikkTSpace renderer computes
    shaded /= np.linalg.norm(shaded, axis=-1, keepdims=True)
    truth = true_normals(samples.points.astype(np.float64))
    cos = (shaded * truth).sum(-1)
    flat = (samples.frame[:, 2] * truth).sum(-1)  # the coarse sphere's own normals
    # measured: cos 0.99997 at worst, against 0.989 on average for the coarse normals
    assert cos.min() > 0.9999 and cos.mean() > 0.99999, np.percentile(cos, [0, 1, 50])
    assert flat.mean() < 0.995  # the bumps are there to see: the coarse normals miss them


@pytest.fixture(scope="module")
def pbr_asset(bumpy, tmp_path_factory):
    (dense_vertices, dense_faces), _ = bumpy
    mesh = pbr_mesh(dense_vertices, dense_faces, stand_in_material(), lambda p: p, target_faces=500, texture_size=128)
    folder = tmp_path_factory.mktemp("asset")
    return mesh, folder, write_obj(mesh, folder, "ball"), write_glb(mesh, folder / "ball.glb")


def test_pbr_maps_hold_the_material(pbr_asset):
    mesh, *_ = pbr_asset
    assert mesh.texture.shape == mesh.orm.shape == mesh.normal_map.shape == (128, 128, 3)
    assert set(np.unique(mesh.orm[..., 2])) <= {0, 255} and 0.3 < (mesh.orm[..., 2] > 0).mean() < 0.7
    assert set(np.unique(mesh.orm[..., 1])) <= {round(0.25 * 255), round(0.75 * 255)}
    assert mesh.orm[..., 0].min() > 200  # a convex ball is open to the sky everywhere
    assert np.abs(mesh.normal_map[..., 2].astype(int) - 255).mean() < 20  # mostly along the surface normal


def test_glb_has_the_three_textures_and_a_valid_material(pbr_asset):
    mesh, _, _, glb = pbr_asset
    data = glb.read_bytes()
    length = struct.unpack_from("<I", data, 12)[0]
    gltf = json.loads(data[20:20 + length])
    material = gltf["materials"][0]
    pbr = material["pbrMetallicRoughness"]
    assert pbr["metallicFactor"] == 1.0 and pbr["roughnessFactor"] == 1.0
    textures = {key: pbr[key]["index"] for key in ("baseColorTexture", "metallicRoughnessTexture")}
    textures |= {key: material[key]["index"] for key in ("normalTexture", "occlusionTexture")}
    assert all(0 <= index < len(gltf["textures"]) for index in textures.values())
    assert all(gltf["textures"][i]["source"] < len(gltf["images"]) for i in textures.values())
    assert material["extensions"]["KHR_materials_specular"]["specularFactor"] == pytest.approx(SPECULAR)
    assert "KHR_materials_specular" in gltf["extensionsUsed"]
    back = read_textured(glb)
    assert back.specular == pytest.approx(SPECULAR)
    assert np.array_equal(back.orm, mesh.orm) and np.array_equal(back.normal_map, mesh.normal_map)
    assert np.array_equal(back.texture, mesh.texture)
    assert np.allclose(back.vertices, mesh.vertices, atol=1e-5)  # back in the dataset frame


def test_obj_mtl_names_the_pbr_maps(pbr_asset):
    mesh, folder, written, _ = pbr_asset
    assert [p.name for p in written] == ["ball.obj", "ball.mtl", "ball.png", "ball_orm.png", "ball_roughness.png",
                                         "ball_metallic.png", "ball_normal.png"]
    keys = dict(line.split(" ", 1) for line in (folder / "ball.mtl").read_text().splitlines() if " " in line)
    assert keys["map_Kd"] == "ball.png" and keys["map_Pr"] == "ball_roughness.png"
    assert keys["map_Pm"] == "ball_metallic.png" and keys["norm"] == "ball_normal.png"
    assert keys["map_Bump"].endswith("ball_normal.png")
    assert [float(v) for v in keys["Ks"].split()] == pytest.approx([SPECULAR / 2] * 3)  # Specular IOR Level
    assert np.array_equal(np.array(Image.open(folder / "ball_roughness.png")), mesh.orm[..., 1])
    assert np.array_equal(np.array(Image.open(folder / "ball_metallic.png")), mesh.orm[..., 2])


def test_equirectangular_mapping_and_hdr_file(tmp_path):
    directions = equirect_directions(64, 32)
    assert np.allclose(np.linalg.norm(directions, axis=-1), 1, atol=1e-6)
    # Blender's mapping: the image centre faces +X, a quarter from the left +Y, the top row +Z
    assert np.allclose(directions[16, 32], [1, 0, 0], atol=0.06)
    assert np.allclose(directions[16, 16], [0, 1, 0], atol=0.06)
    assert directions[0, :, 2].min() > 0.99
    uv = direction_to_equirect(directions)
    assert np.allclose(uv[..., 0], (np.arange(64) + 0.5) / 64, atol=1e-6)
    assert np.allclose(uv[..., 1], ((np.arange(32) + 0.5) / 32)[:, None], atol=1e-6)
    image = np.random.default_rng(0).random((32, 64, 3)).astype(np.float32) * np.logspace(-3, 3, 64)[None, :, None]
    back = read_hdr(write_hdr(tmp_path / "e.hdr", image))
    assert back.shape == image.shape and np.all(np.abs(back - image) <= image.max(-1, keepdims=True) / 128)
    assert (tmp_path / "e.hdr").read_bytes().startswith(b"#?RADIANCE")


def test_the_sun_keeps_its_irradiance_however_small():
    for angle in (0.2, 3.0):
        image = add_sun(np.zeros((64, 128, 3), np.float32), np.array([0.3, -0.4, 0.8]), np.array([4.0, 3.0, 2.0]),
                        angle)
        elevation = (0.5 - (np.arange(64) + 0.5) / 64) * np.pi
        solid_angle = (2 * np.pi / 128) * (np.pi / 64) * np.cos(elevation)
        assert np.allclose((image * solid_angle[:, None, None]).sum((0, 1)), [4, 3, 2], rtol=1e-4)
        row, column = np.unravel_index(image.sum(-1).argmax(), image.shape[:2])
        brightest = equirect_directions(128, 64)[row, column]
        assert brightest @ (np.array([0.3, -0.4, 0.8]) / np.linalg.norm([0.3, -0.4, 0.8])) > 0.99


def test_environment_hdr_holds_the_environment_and_the_sun():
    sun = {"direction": [0, 0, 1.0], "irradiance": [2.0, 2.0, 2.0], "angle_deg": 1.0}
    light = LearnedLight({"sun": sun}, environment=lambda d: np.tile([0.1, 0.2, 0.3], (len(d), 1)),
                         radiance=lambda d: 0 * d)
    image = environment_hdr(light, width=64)
    assert image.shape == (32, 64, 3)
    assert np.allclose(np.median(image.reshape(-1, 3), axis=0), [0.1, 0.2, 0.3])
    assert image[0].min() > 10  # the sun, straight up: the whole top row
    assert image[1:].max() < 0.31
