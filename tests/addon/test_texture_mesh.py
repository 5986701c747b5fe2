"""Texture Selected Mesh from Cameras, through the real worker: the mesh keeps its vertices and
transform and gets a textured material; with and without its own UVs. And the result's material
for a PBR asset: a Principled BSDF with every map wired, and the estimated light as the world."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.addon.blender import build_scene, select_cameras, snapshot, submodule

pytestmark = pytest.mark.usefixtures("addon", "empty_scene", "prefs")

OPTIONS = {"texture_size": 256}


def stand_in(scene, with_uvs: bool):
    """A copy of the test scene's monkey under a transform of its own (rotated, scaled, moved) whose
    world positions coincide with the monkey's, made the active object with the cameras selected."""
    import bpy
    import mathutils

    monkey = build_scene(scene, cameras=16, size=96)
    mesh = monkey.data.copy()
    mesh.name = "Retopo"
    if not with_uvs:
        while mesh.uv_layers:
            mesh.uv_layers.remove(mesh.uv_layers[0])
    obj = bpy.data.objects.new("Retopo", mesh)
    scene.collection.objects.link(obj)
    transform = mathutils.Matrix.LocRotScale((0.5, -0.2, 0.1), mathutils.Euler((0.3, -0.2, 0.9)), (1.5, 1.5, 1.5))
    mesh.transform(transform.inverted() @ monkey.matrix_world)
    obj.matrix_world = transform
    select_cameras(bpy.context)
    obj.select_set(True)
    bpy.context.view_layer.objects.active = obj
    bpy.context.view_layer.update()
    return obj


def geometry(obj) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mesh = obj.data
    positions = np.zeros(len(mesh.vertices) * 3)
    mesh.vertices.foreach_get("co", positions)
    loops = np.zeros(len(mesh.loops), dtype=np.int64)
    mesh.loops.foreach_get("vertex_index", loops)
    return positions, loops, np.array(obj.matrix_world)


@pytest.mark.parametrize("with_uvs", [True, False], ids=["own-uvs", "unwrapped"])
def test_texture_selected_mesh_keeps_its_shape_and_transform(with_uvs):
    import bpy

    context = bpy.context
    obj = stand_in(context.scene, with_uvs)
    before_geometry = geometry(obj)
    before_uvs = None
    if with_uvs:
        before_uvs = np.zeros(len(obj.data.loops) * 2)
        obj.data.uv_layers.active.data.foreach_get("uv", before_uvs)
    before = snapshot()
    result = bpy.ops.meshlift.texture_selected(options=json.dumps(OPTIONS))
    assert result == {"FINISHED"}, submodule("operators.scene_job").STATUS.message
    for expected, got in zip(before_geometry, geometry(obj), strict=True):
        assert np.array_equal(expected, got)
    mesh = obj.data
    assert len(mesh.uv_layers) == 1
    uvs = np.zeros(len(mesh.loops) * 2)
    mesh.uv_layers.active.data.foreach_get("uv", uvs)
    if with_uvs:
        assert np.array_equal(uvs, before_uvs)
    else:
        assert uvs.min() >= -1e-6 and uvs.max() <= 1 + 1e-6 and uvs.std() > 0.05
    material = mesh.materials[0]
    assert len(mesh.materials) == 1
    texture = material.node_tree.nodes["Meshlift Texture"]
    bsdf = next(n for n in material.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    assert bsdf.inputs["Base Color"].links[0].from_node == texture
    pixels = np.array(texture.image.pixels[:]).reshape(256, 256, 4)
    # the monkey is orange (0.8, 0.3, 0.1): the baked colours are warm, red above blue
    assert (pixels[..., 0] - pixels[..., 2]).mean() > 0.2
    after = snapshot()
    assert set(after["objects"]) == set(before["objects"])
    for name, state in before["objects"].items():  # nothing moved, nothing else changed
        assert after["objects"][name] == state, name
    assert after["render"] == before["render"]
    assert not obj.hide_render
    new = {kind: set(after["blocks"][kind]) - set(before["blocks"][kind]) for kind in after["blocks"]}
    assert new["objects"] == set() and new["meshes"] == set() and new["materials"] == {material.name}
    assert new["images"] == {texture.image.name}
    status = submodule("operators.scene_job").STATUS
    assert status.state == "done" and status.message == "Textured 'Retopo'"


def test_texturing_needs_an_active_mesh():
    import bpy

    build_scene(bpy.context.scene, cameras=16, size=32)
    select_cameras(bpy.context)
    bpy.context.view_layer.objects.active = bpy.data.objects["Cam.000"]
    before = snapshot()
    with pytest.raises(RuntimeError, match="The active object is not a mesh"):
        bpy.ops.meshlift.texture_selected()
    assert snapshot() == before


def test_in_the_interface_the_cameras_render_one_per_tick_without_the_mesh(tmp_path):
    """The modal operator's job renders one camera per step (the interface answers between them),
    each without the mesh being textured, which is visible again between renders; then the bake."""
    import bpy

    obj = stand_in(bpy.context.scene, with_uvs=True)
    before_geometry = geometry(obj)
    during: list[bool] = []

    def record(*_args):
        during.append(obj.hide_render)

    bpy.app.handlers.render_pre.append(record)
    try:
        job = submodule("operators.texture_mesh").start_texture(bpy.context, extra_options={"texture_size": 64},
                                                                interactive=True)
        assert job.rendering and job.renders.index == 0 and during == []  # nothing rendered before the first tick
        steps = 0
        while job.rendering:
            job.step()
            steps += 1
            assert len(during) == min(steps, 16) and not obj.hide_render
        assert steps == 17 and during == [True] * 16  # 16 renders, then transforms.json; the worker starts
        assert job.worker.pid is not None
        outcome = submodule("operators.scene_job").run_blocking(job, log=lambda _message: None)
    finally:
        bpy.app.handlers.render_pre.remove(record)
    assert outcome.status == "done", outcome.message
    for expected, got in zip(before_geometry, geometry(obj), strict=True):
        assert np.array_equal(expected, got)
    assert obj.data.materials[0].node_tree.nodes["Meshlift Texture"].image.size[:] == (64, 64)


def test_the_mesh_being_textured_does_not_count_as_something_to_render():
    """With the mesh left out of the renders, a scene holding nothing else is refused before
    anything is rendered, and the mesh is left as it was."""
    import bpy

    obj = stand_in(bpy.context.scene, with_uvs=True)
    bpy.data.objects.remove(bpy.data.objects["Monkey"])
    before = snapshot()
    with pytest.raises(RuntimeError, match="nothing visible to render"):
        bpy.ops.meshlift.texture_selected()
    assert snapshot() == before and not obj.hide_render
