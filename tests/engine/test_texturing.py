"""``python -m engine texture``: a given mesh textured from posed images keeps its vertices, faces
and UVs (or gets an unwrap), in the same frame; bad input ends in one sentence."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh

from engine.errors import InputError
from engine.export import read_mesh
from engine.protocol import TextureJob, parse_job
from engine.texturing import read_target_mesh
from tests.support import run_engine, write_disc_dataset

RADIUS = 0.63  # the sphere whose silhouette the disc dataset shows


def uv_sphere(path, with_uvs: bool = True):
    sphere = trimesh.creation.uv_sphere(radius=RADIUS, count=[16, 24])
    if with_uvs:
        direction = sphere.vertices / RADIUS
        uvs = np.stack([np.arctan2(direction[:, 1], direction[:, 0]) / (2 * np.pi) + 0.5,
                        np.arcsin(np.clip(direction[:, 2], -1, 1)) / np.pi + 0.5], axis=1)
        sphere.visual = trimesh.visual.TextureVisuals(uv=uvs)
    sphere.export(path)
    return path


def test_texture_keeps_the_mesh_and_its_uvs(tmp_path):
    dataset = write_disc_dataset(tmp_path / "d", count=8, size=48, radius=12.0)
    source = uv_sphere(tmp_path / "ball.obj")
    result = run_engine("texture", str(source), str(dataset), "--out", str(tmp_path / "o"), "-o", "texture_size=64",
                        "--json")
    assert result.returncode == 0, result.stderr
    event = json.loads(result.stdout)
    assert set(event["files"]) == {"obj", "mtl", "png", "glb", "report", "log"}
    assert event["report"]["input_mesh"]["uvs"] == "its own"
    before, _ = read_mesh(source)
    after, has_uvs = read_mesh(event["files"]["obj"])
    assert has_uvs and len(after.faces) == len(before.faces)
    # the same triangles, corner by corner: positions and UVs
    assert np.allclose(after.vertices[after.faces], before.vertices[before.faces], atol=1e-6)
    assert np.allclose(after.uvs[after.faces], before.uvs[before.faces], atol=1e-6)
    # the disc is (200, 80, 40) in every view: the texture is that colour where the sphere is seen
    texture = after.texture.reshape(-1, 3).astype(int)
    assert np.median(texture, axis=0).tolist() == pytest.approx([200, 80, 40], abs=6)


def test_a_mesh_without_uvs_is_unwrapped_in_place(tmp_path):
    source = uv_sphere(tmp_path / "ball.ply", with_uvs=False)
    mesh, own = read_target_mesh(source, 128)
    original, had = read_mesh(source)
    assert not own and not had
    assert np.allclose(mesh.vertices[mesh.faces], original.vertices[original.faces], atol=1e-6)
    assert mesh.uvs.min() >= 0 and mesh.uvs.max() <= 1 and mesh.uvs.std() > 0.1


def test_bad_meshes_and_jobs_are_refused_in_one_sentence(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_target_mesh(tmp_path / "none.obj", 64)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="not a mesh file"):
        read_target_mesh(tmp_path / "notes.txt", 64)
    with pytest.raises(InputError, match="needs the field\\(s\\): mesh"):
        parse_job({"command": "texture", "dataset": "d", "out": "o"})
    job = TextureJob(dataset="d", out="o", mesh="m.obj", options={"material": "pbr"})
    assert job.to_dict()["command"] == "texture" and parse_job(job.to_dict()) == job
    dataset = write_disc_dataset(tmp_path / "d")
    result = run_engine("texture", str(tmp_path / "none.obj"), str(dataset), "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and "Traceback" not in result.stderr and "does not exist" in result.stderr
    assert not (tmp_path / "o").exists()


def test_texture_with_a_pbr_material_bakes_the_method_s_material_onto_the_mesh(tmp_path):
    dataset = write_disc_dataset(tmp_path / "d", count=8, size=48, radius=12.0)
    source = uv_sphere(tmp_path / "ball.obj")
    # a token DMTet fit: the point is the bake of its material and light onto the given mesh
    result = run_engine("texture", str(source), str(dataset), "--out", str(tmp_path / "o"), "--method", "dmtet",
                        "--preset", "fast", "-o", "material=pbr", "-o", "resolution=16", "-o", "iterations=4",
                        "-o", "refine_iterations=2", "-o", "texture_size=64", "--json")
    assert result.returncode == 0, result.stderr
    event = json.loads(result.stdout)
    assert {"orm", "roughness", "metallic", "normal", "environment"} <= set(event["files"])
    assert event["report"]["material"]["model"] == "pbr" and "sun" in event["report"]["material"]["light"]
    before, _ = read_mesh(source)
    after, _ = read_mesh(event["files"]["glb"])
    assert np.allclose(after.vertices[after.faces], before.vertices[before.faces], atol=1e-5)
    assert after.orm.shape == after.normal_map.shape == (64, 64, 3)
