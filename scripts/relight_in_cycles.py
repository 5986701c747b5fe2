"""Render an asset in Blender's Cycles under a light file, at a dataset's cameras: the renderer of
the relighting score (``engine evaluate``; see :mod:`engine.relight` for the format and the output).

    python scripts/relight_in_cycles.py ASSET DATASET --out DIR [--split test_relit] [--light FILE] [--samples 64]

Run it with a Python that has the ``bpy`` module (a development dependency). Blender's OBJ importer
marks every image sRGB; the roughness, metallic and normal maps are set to non-colour data after
import, as the Meshlift add-on's result has them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's engine

from engine.relight import (
    DEFAULT_SAMPLES,
    DEFAULT_SPLIT,
    LIGHT_FILE,
    NON_COLOUR_SUFFIXES,
    VIEW_TRANSFORM,
    blender_camera_settings,
    read_light,
)
from engine.utils.stdio import stdout_to_stderr


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python scripts/relight_in_cycles.py", description=__doc__.split("\n")[0])
    parser.add_argument("asset", help="GLB, glTF or OBJ (as written by the engine)")
    parser.add_argument("dataset", help="dataset folder with transforms_<split>.json")
    parser.add_argument("--out", required=True, help="folder for the renders (created)")
    parser.add_argument("--split", default=DEFAULT_SPLIT, help=f"the cameras (default {DEFAULT_SPLIT})")
    parser.add_argument("--light", default=None, help=f"light file (default DATASET/{LIGHT_FILE})")
    parser.add_argument("--samples", type=int, default=DEFAULT_SAMPLES, help="Cycles samples per pixel")
    parser.add_argument("--threads", type=int, default=0, help="render threads (0: all cores)")
    parser.add_argument("--view-transform", default=VIEW_TRANSFORM, help=f"colour view transform ({VIEW_TRANSFORM})")
    parser.add_argument("--max-views", type=int, default=None, help="render at most this many cameras (evenly spaced)")
    parser.add_argument("--image-scale", type=float, default=1.0, help="resize the images by this factor")
    args = parser.parse_args(argv)
    try:
        import bpy  # noqa: PLC0415 (Blender only in this process)
    except ImportError:
        print("meshlift: relighting needs the bpy module (pip install bpy==4.5.15)", file=sys.stderr)
        return 2
    from engine.data.transforms import load_split  # noqa: PLC0415 (after bpy: its import sets up numpy)

    started = time.perf_counter()
    split = load_split(args.dataset, args.split, scale=args.image_scale, max_views=args.max_views)
    light = read_light(args.light or Path(args.dataset) / LIGHT_FILE)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    renders = _render(bpy, Path(args.asset), light, split, out, samples=args.samples, threads=args.threads,
                      view_transform=args.view_transform)
    print(json.dumps({"renders": [str(p) for p in renders], "seconds": round(time.perf_counter() - started, 2)}))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # bpy 4.5 can hang at interpreter exit


def _render(bpy: Any, asset: Path, light: dict[str, Any], split: Any, out: Path, *, samples: int,
            threads: int, view_transform: str = VIEW_TRANSFORM) -> list[Path]:
    """Import ``asset`` into an empty scene, light it, render every camera of ``split``; returns the
    PNG paths (named after the split's images)."""
    import mathutils  # noqa: PLC0415 (comes with bpy)

    cameras = split.cameras
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    with stdout_to_stderr():
        if asset.suffix.lower() in (".glb", ".gltf"):
            bpy.ops.import_scene.gltf(filepath=str(asset))
        else:
            bpy.ops.wm.obj_import(filepath=str(asset), forward_axis="Y", up_axis="Z")
    for image in bpy.data.images:
        if Path(image.filepath).stem.endswith(NON_COLOUR_SUFFIXES):
            image.colorspace_settings.name = "Non-Color"
    _set_light(bpy, scene, light)

    render = scene.render
    render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_denoising = True
    scene.cycles.denoiser = "OPENIMAGEDENOISE"
    render.threads_mode = "FIXED" if threads > 0 else "AUTO"
    if threads > 0:
        render.threads = threads
    render.film_transparent = True
    render.resolution_x, render.resolution_y = cameras.width, cameras.height
    render.resolution_percentage = 100
    render.image_settings.file_format = "PNG"
    render.image_settings.color_mode = "RGBA"
    render.image_settings.color_depth = "8"
    scene.view_settings.view_transform = view_transform
    scene.view_settings.look = "None"
    scene.view_settings.exposure = 0.0
    scene.view_settings.gamma = 1.0

    camera = bpy.data.objects.new("relight camera", bpy.data.cameras.new("relight camera"))
    scene.collection.objects.link(camera)
    scene.camera = camera
    paths = []
    for index in range(len(cameras)):
        for key, value in blender_camera_settings(float(cameras.fx[index]), float(cameras.cx[index]),
                                                  float(cameras.cy[index]), cameras.width, cameras.height).items():
            setattr(camera.data, key, value)
        camera.matrix_world = mathutils.Matrix(cameras.c2w[index].tolist())  # rows
        path = out / f"{Path(split.names[index]).stem}.png"
        render.filepath = str(path)
        with stdout_to_stderr():
            bpy.ops.render.render(write_still=True)
        paths.append(path)
    return paths


def _set_light(bpy: Any, scene: Any, light: dict[str, Any]) -> None:
    """The world (a colour or an HDR) and the sun of ``light`` (see the module docstring)."""
    world = bpy.data.worlds.new("relight world")
    scene.world = world
    world.use_nodes = True
    background = world.node_tree.nodes["Background"]
    spec = light.get("world") or {"color": [0.0, 0.0, 0.0], "strength": 0.0}
    background.inputs["Strength"].default_value = float(spec.get("strength", 1.0))
    if "hdr" in spec:
        texture = world.node_tree.nodes.new("ShaderNodeTexEnvironment")
        texture.image = bpy.data.images.load(spec["hdr"])
        world.node_tree.links.new(texture.outputs["Color"], background.inputs["Color"])
    else:
        background.inputs["Color"].default_value = (*[float(c) for c in spec["color"]], 1.0)
    sun = light.get("sun")
    if sun is not None:
        data = bpy.data.lights.new("relight sun", "SUN")
        data.energy = float(sun["energy"])
        data.color = [float(c) for c in sun.get("color", (1.0, 1.0, 1.0))]
        data.angle = math.radians(float(sun.get("angle_deg", 0.0)))
        obj = bpy.data.objects.new("relight sun", data)
        obj.rotation_euler = [math.radians(float(a)) for a in sun["rotation_euler_deg"]]
        scene.collection.objects.link(obj)


if __name__ == "__main__":
    sys.exit(main())
