"""Blender's own Z and Normal passes, written by Export Cameras, read by the engine: an independent check
of the depth convention (along the optical axis, world-space normals) against the engine's rasterizer,
and the Depth Fusion method on a dataset made from Blender cameras."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from engine.data.transforms import load_split
from engine.evaluate import geometry_metrics
from engine.render.maps import render_depth_normals
from tests.addon.blender import build_scene, snapshot, submodule

pytestmark = pytest.mark.usefixtures("addon", "empty_scene", "prefs")


def world_mesh(obj) -> trimesh.Trimesh:
    """``obj``'s evaluated mesh in world coordinates, triangulated."""
    import bpy

    evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    mesh = evaluated.to_mesh()
    mesh.calc_loop_triangles()
    vertices = np.array([obj.matrix_world @ v.co for v in mesh.vertices])
    faces = np.array([t.vertices[:] for t in mesh.loop_triangles])
    evaluated.to_mesh_clear()
    return trimesh.Trimesh(vertices, faces, process=False)


def test_blender_passes_match_the_engine_convention(tmp_path):
    import bpy

    scene = bpy.context.scene
    monkey = build_scene(scene, cameras=16, size=64)
    cameras = [scene.objects[f"Cam.{i:03d}"] for i in (0, 4, 8, 13)]
    layer = bpy.context.view_layer
    layer.use_pass_z, layer.use_pass_normal = False, True
    before = snapshot()
    export = submodule("operators.dataset").export_cameras
    path = export(scene, layer, cameras, tmp_path / "views", depth_normals=True)
    assert snapshot() == before and (layer.use_pass_z, layer.use_pass_normal) == (False, True)  # restored
    content = json.loads(path.read_text())
    assert content["depth_along"] == "axis" and content["normal_space"] == "world"
    assert all(f["depth_file_path"] == f["normal_file_path"] == f"depth/{Path(f['file_path']).stem}.exr"
               for f in content["frames"])

    split = load_split(tmp_path / "views")
    mesh = world_mesh(monkey)
    depth, normals = render_depth_normals(torch.tensor(mesh.vertices, dtype=torch.float32),
                                          torch.tensor(mesh.faces), split.cameras)
    both = (split.depths > 0) & (depth > 0)
    # away from silhouettes, where Cycles' jittered first sample may see the background or the object
    inside = both.clone()
    inside[:, 1:-1, 1:-1] &= both[:, :-2, 1:-1] & both[:, 2:, 1:-1] & both[:, 1:-1, :-2] & both[:, 1:-1, 2:]
    assert inside.sum() > 2000
    assert ((split.depths > 0) ^ (depth > 0)).float().mean() < 0.03  # the same pixels see the object
    relative = ((split.depths - depth).abs() / depth)[inside]
    assert float(relative.median()) < 0.003, float(relative.median())  # along the axis, not along the ray
    cosine = (split.normals * normals).sum(-1)[inside]
    assert float(cosine.median()) > 0.995 and float((cosine > 0.9).float().mean()) > 0.9  # world frame


def test_depth_fusion_from_blender_cameras(tmp_path):
    import bpy

    scene = bpy.context.scene
    monkey = build_scene(scene, cameras=16, size=96)
    for obj in scene.objects:
        obj.select_set(obj.type == "CAMERA")
    folder = tmp_path / "monkey_depth"
    assert bpy.ops.meshlift.export_cameras(directory=str(folder)) == {"FINISHED"}
    scene_job = submodule("operators.scene_job")
    submodule("properties").load_methods()
    scene.meshlift.method = "depth"
    scene.meshlift.preset = "fast"
    job = scene_job.start_from_folder(bpy.context, str(folder), {"faces": 4000, "texture_size": 256})
    outcome = scene_job.run_blocking(job)
    assert outcome.status == "done", outcome.message
    assert outcome.result["report"]["method"] == "depth"
    result = world_mesh(bpy.data.objects["monkey_depth"])
    # The result, in the scene's frame, shows Blender's cameras the depths they rendered.
    split = load_split(folder)
    depth, _ = render_depth_normals(torch.tensor(result.vertices, dtype=torch.float32), torch.tensor(result.faces),
                                    split.cameras)
    both = (split.depths > 0) & (depth > 0)
    assert float(both.sum()) > 0.95 * float((split.depths > 0).sum())
    relative = ((depth - split.depths).abs() / split.depths)[both]
    assert float(relative.median()) < 0.005 and float((relative < 0.02).float().mean()) > 0.9, relative.median()
    # and most of it lies near the monkey (whose insides, the backs of its eyes, no camera sees)
    metrics = geometry_metrics(result, world_mesh(monkey), samples=50_000)
    assert metrics["f_score_0.5%"] > 0.85, metrics
