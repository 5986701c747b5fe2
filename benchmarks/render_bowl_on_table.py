"""Render the shared bowl standing on a textured table as opaque photos, with Cycles through the ``bpy`` module.

    .venv/bin/python benchmarks/render_bowl_on_table.py OUT [--views 60] [--samples 32]

Writes ``OUT/photos/*.jpg`` (bare photos: nothing but the images), ``OUT/truth/transforms_train.json``
(the cameras they were taken with, for scoring only) and ``OUT/truth/gt_mesh.ply`` (the bowl where it
stands in that frame). The bowl is ``../shared/datasets/bowl/gt_mesh.ply`` wearing a procedural blue
and yellow texture (noise and checker in object space), on a large table with a busy Voronoi
texture, under a uniform light-blue sky (diffuse, no specular), seen from the upper hemisphere
(elevations 10 to 65 degrees, upright cameras, 320x240, horizontal field of view 0.69 rad) like
``spot-tabletop``. Never write OUT inside the repository: it is a dataset.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import torch
import trimesh

from engine.utils.math import look_at

BOWL = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "bowl" / "gt_mesh.ply"
WIDTH, HEIGHT, FOV_X, DISTANCE = 320, 240, 0.69, 3.2


def camera_eyes(count: int) -> np.ndarray:
    """``[count, 3]`` camera centres on a spiral over the upper hemisphere, elevations 10-65 degrees."""
    golden = math.pi * (3 - math.sqrt(5))
    eyes = []
    for i in range(count):
        elevation = math.radians(10 + 55 * (i + 0.5) / count)
        azimuth = i * golden
        eyes.append(DISTANCE * np.array([math.cos(azimuth) * math.cos(elevation),
                                         math.sin(azimuth) * math.cos(elevation), math.sin(elevation)]))
    return np.stack(eyes)


def material(bpy, name: str, build) -> object:
    """A node material whose Principled BSDF's base colour ``build(nodes, links)`` returns (a socket)."""
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = nodes["Principled BSDF"]
    bsdf.inputs["Roughness"].default_value = 1.0
    bsdf.inputs["Specular IOR Level"].default_value = 0.0
    links.new(build(nodes, links), bsdf.inputs["Base Color"])
    return mat


def bowl_colour(nodes, links):
    """Noise times checker in object space, between blue and yellow (the shared datasets' texture)."""
    coords = nodes.new("ShaderNodeTexCoord")
    noise = nodes.new("ShaderNodeTexNoise")
    noise.inputs["Scale"].default_value = 4.0
    noise.inputs["Detail"].default_value = 6.0
    links.new(coords.outputs["Object"], noise.inputs["Vector"])
    ramp = nodes.new("ShaderNodeValToRGB")
    ramp.color_ramp.elements[0].position, ramp.color_ramp.elements[1].position = 0.4, 0.6
    ramp.color_ramp.elements[0].color = (0.05, 0.15, 0.8, 1.0)
    ramp.color_ramp.elements[1].color = (0.95, 0.8, 0.3, 1.0)
    links.new(noise.outputs["Fac"], ramp.inputs["Fac"])
    checker = nodes.new("ShaderNodeTexChecker")
    checker.inputs["Scale"].default_value = 5.0
    checker.inputs["Color1"].default_value = (1.0, 1.0, 1.0, 1.0)
    checker.inputs["Color2"].default_value = (0.55, 0.55, 0.55, 1.0)
    links.new(coords.outputs["Object"], checker.inputs["Vector"])
    mix = nodes.new("ShaderNodeMix")
    mix.data_type = "RGBA"
    mix.blend_type = "MULTIPLY"
    mix.inputs["Factor"].default_value = 1.0
    links.new(ramp.outputs["Color"], mix.inputs[6])
    links.new(checker.outputs["Color"], mix.inputs[7])
    return mix.outputs[2]


def table_colour(nodes, links):
    """A busy Voronoi pattern in browns and greys: every cell its own shade, darkened by a finer noise."""
    voronoi = nodes.new("ShaderNodeTexVoronoi")
    voronoi.inputs["Scale"].default_value = 12.0
    shade = nodes.new("ShaderNodeRGBToBW")
    links.new(voronoi.outputs["Color"], shade.inputs["Color"])
    ramp = nodes.new("ShaderNodeValToRGB")
    ramp.color_ramp.elements[0].color = (0.08, 0.05, 0.03, 1.0)
    ramp.color_ramp.elements[1].color = (0.8, 0.72, 0.6, 1.0)
    links.new(shade.outputs["Val"], ramp.inputs["Fac"])
    noise = nodes.new("ShaderNodeTexNoise")
    noise.inputs["Scale"].default_value = 30.0
    mix = nodes.new("ShaderNodeMix")
    mix.data_type = "RGBA"
    mix.blend_type = "MULTIPLY"
    mix.inputs["Factor"].default_value = 0.5
    links.new(ramp.outputs["Color"], mix.inputs[6])
    links.new(noise.outputs["Color"], mix.inputs[7])
    return mix.outputs[2]


def render(out: Path, views: int, samples: int) -> None:
    import bpy  # only this script needs Blender
    from mathutils import Matrix

    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_denoising = True
    scene.render.resolution_x, scene.render.resolution_y = WIDTH, HEIGHT
    scene.render.image_settings.file_format = "JPEG"
    scene.render.image_settings.quality = 92
    scene.view_settings.view_transform = "Standard"
    world = bpy.data.worlds.new("sky")
    world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.62, 0.78, 0.95, 1.0)
    scene.world = world

    bowl = trimesh.load(BOWL, force="mesh")
    floor = float(bowl.bounds[0, 2])
    mesh = bpy.data.meshes.new("bowl")
    mesh.from_pydata(bowl.vertices.tolist(), [], bowl.faces.tolist())
    mesh.update()
    bowl_object = bpy.data.objects.new("bowl", mesh)
    bowl_object.data.materials.append(material(bpy, "bowl", bowl_colour))
    scene.collection.objects.link(bowl_object)
    bpy.ops.mesh.primitive_plane_add(size=12.0, location=(0.0, 0.0, floor))
    bpy.context.active_object.data.materials.append(material(bpy, "table", table_colour))

    camera_data = bpy.data.cameras.new("camera")
    camera_data.sensor_fit = "HORIZONTAL"
    camera_data.angle_x = FOV_X
    camera = bpy.data.objects.new("camera", camera_data)
    scene.collection.objects.link(camera)
    scene.camera = camera

    (out / "photos").mkdir(parents=True, exist_ok=True)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    frames = []
    for i, eye in enumerate(camera_eyes(views)):
        eye_t = torch.tensor(eye, dtype=torch.float32)[None]
        c2w = look_at(eye_t, torch.zeros(3), torch.tensor([0.0, 0.0, 1.0]))[0].numpy().astype(np.float64)
        camera.matrix_world = Matrix(c2w.tolist())  # from rows
        scene.render.filepath = str(out / "photos" / f"photo_{i:03d}.jpg")
        bpy.ops.render.render(write_still=True)
        frames.append({"file_path": f"../photos/photo_{i:03d}", "transform_matrix": c2w.tolist()})
    meta = {"camera_angle_x": FOV_X, "w": WIDTH, "h": HEIGHT, "frames": frames}
    (out / "truth" / "transforms_train.json").write_text(json.dumps(meta, indent=1))
    bowl.export(out / "truth" / "gt_mesh.ply")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out")
    parser.add_argument("--views", type=int, default=60)
    parser.add_argument("--samples", type=int, default=32)
    args = parser.parse_args()
    render(Path(args.out), args.views, args.samples)
    sys.stdout.flush()
    os._exit(0)  # bpy 4.5 can hang on a normal exit (../shared/docs/blender-testing.md)


if __name__ == "__main__":
    main()
