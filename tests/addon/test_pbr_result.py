"""A PBR result in Blender: the Principled BSDF with every map wired (non-colour data where it is
data), the OBJ's normals kept, tangents that agree with Blender's own MikkTSpace (so the normal map
means in Blender what the baker meant), and the estimated light set as the world."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from engine.export import write_obj
from engine.methods.base import LearnedLight, Material
from engine.texture.environment import write_hdr
from engine.texture.pbr import environment_hdr, pbr_mesh
from engine.texture.tangents import mikktspace_tangents
from tests.addon.blender import submodule

pytestmark = pytest.mark.usefixtures("addon", "empty_scene")

SUN = {"direction": [0.0, 0.6, 0.8], "irradiance": [3.0, 2.5, 2.0], "angle_deg": 3.0}


@pytest.fixture(scope="module")
def pbr_asset(tmp_path_factory):
    """A bumpy sphere's PBR asset (a stand-in material and light) written as the engine writes it."""
    sphere = trimesh.creation.icosphere(4)
    bumps = 1.0 + 0.05 * np.sin(5 * sphere.vertices[:, 0]) * np.sin(4 * sphere.vertices[:, 2])
    light = LearnedLight({"sun": SUN}, environment=lambda d: np.full((len(d), 3), 0.2, np.float32),
                         radiance=lambda d: np.full((len(d), 3), 0.2, np.float32))
    material = Material(base_colour=lambda p: np.clip(0.5 + 0.4 * p, 0, 1), roughness=lambda p: np.full(len(p), 0.4),
                        metallic=lambda p: (p[:, 0] > 0).astype(np.float32), light=light, specular=0.3)
    mesh = pbr_mesh(sphere.vertices * bumps[:, None], sphere.faces, material, lambda p: p, target_faces=600,
                    texture_size=128)
    folder = tmp_path_factory.mktemp("pbr")
    write_obj(mesh, folder, "ball")
    write_hdr(folder / "ball_environment.hdr", environment_hdr(light, width=64))
    return folder, mesh


def test_the_result_has_a_principled_bsdf_with_every_map_wired(pbr_asset):
    import bpy

    folder, mesh = pbr_asset
    obj = submodule("operators.result").build_result(bpy.context.scene, folder / "ball.obj", "Ball", "Meshlift")
    nodes = obj.active_material.node_tree.nodes
    bsdf = next(n for n in nodes if n.type == "BSDF_PRINCIPLED")

    def source(socket: str):
        links = bsdf.inputs[socket].links
        assert links, f"{socket} is not wired"
        return links[0].from_node

    assert source("Base Color").image.colorspace_settings.name == "sRGB"
    for socket, kind in (("Roughness", "roughness"), ("Metallic", "metallic")):
        node = source(socket)
        assert node.type == "TEX_IMAGE" and node.image.colorspace_settings.name == "Non-Color"
        assert node.image.packed_file is not None and node.image.name == f"Ball_{kind}"
    normal_map = source("Normal")
    assert normal_map.type == "NORMAL_MAP" and normal_map.space == "TANGENT"
    assert bsdf.inputs["Specular IOR Level"].default_value == pytest.approx(0.15)  # half the learned level
    assert normal_map.uv_map == obj.data.uv_layers[0].name
    image = normal_map.inputs["Color"].links[0].from_node.image
    assert image.colorspace_settings.name == "Non-Color" and image.packed_file is not None
    # the metallic map holds the material's metallic (the sphere's +x half), read by Blender
    metallic = np.array(source("Metallic").image.pixels[:]).reshape(128, 128, 4)[..., 0]
    assert 0.3 < metallic.mean() < 0.7 and set(np.unique(np.round(metallic, 2))) <= {0.0, 1.0}

    # the mesh carries the engine's normals, and Blender's MikkTSpace tangents agree with the baker's
    blender_mesh = obj.data
    normals = np.zeros(len(blender_mesh.loops) * 3)
    blender_mesh.corner_normals.foreach_get("vector", normals)
    corners = np.asarray(mesh.faces).reshape(-1)
    assert np.abs(normals.reshape(-1, 3) - mesh.normals[corners]).max() < 1e-4
    blender_mesh.calc_tangents(uvmap=blender_mesh.uv_layers[0].name)
    tangents = np.zeros(len(blender_mesh.loops) * 3)
    blender_mesh.loops.foreach_get("tangent", tangents)
    signs = np.zeros(len(blender_mesh.loops))
    blender_mesh.loops.foreach_get("bitangent_sign", signs)
    ours, our_signs = mikktspace_tangents(mesh.vertices, mesh.faces, mesh.uvs, mesh.normals)
    cos = (tangents.reshape(-1, 3) * ours.reshape(-1, 3)).sum(-1)
    assert cos.min() > 0.9999, np.percentile(cos, [0, 1, 5])  # measured: 0.9999999 at worst
    assert np.array_equal(signs, np.repeat(our_signs, 3))


def test_the_estimated_light_becomes_the_world(pbr_asset):
    import bpy

    folder, _ = pbr_asset
    scene = bpy.context.scene
    world = submodule("operators.result").set_world(scene, folder / "ball_environment.hdr", "Ball")
    assert scene.world == world and world.name == "Ball Light"
    background = next(n for n in world.node_tree.nodes if n.type == "BACKGROUND")
    texture = background.inputs["Color"].links[0].from_node
    assert texture.type == "TEX_ENVIRONMENT" and texture.image.packed_file is not None
    pixels = np.array(texture.image.pixels[:]).reshape(32, 64, 4)  # Blender's rows run bottom to top
    # the sun is the brightest pixel, where the mapping puts its direction: azimuth 90° (u = 0.25), up 53°
    row, column = np.unravel_index(pixels[..., :3].sum(-1).argmax(), pixels.shape[:2])
    assert abs((column + 0.5) / 64 - 0.25) < 2 / 64
    assert abs((row + 0.5) / 32 - (0.5 + np.degrees(np.arcsin(0.8)) / 180)) < 2 / 32


def test_a_finished_job_sets_the_light_as_world_only_when_asked(pbr_asset):
    import bpy

    folder, _ = pbr_asset
    scene_job = submodule("operators.scene_job")
    outcome = submodule("bridge.worker_process").Outcome(
        "done", "result", "", {"files": {"obj": str(folder / "ball.obj"),
                                         "environment": str(folder / "ball_environment.hdr")}, "report": {}})
    scene = bpy.context.scene
    for asked in (False, True):
        settings = scene_job.JobSettings("dmtet", "fast", "cpu", {}, "Meshlift", "python", light_as_world=asked)
        job = scene_job.SceneJob("Ball", scene.name, settings, worker=None, temporary=[])
        job._build(outcome)
        assert (scene.world is not None and scene.world.name.startswith("Ball Light")) == asked
