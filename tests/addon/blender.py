"""Helpers for the add-on tests (the real ``bpy`` module, no mocks): the enabled add-on's modules
and preferences, test scenes, a stand-in for ``UILayout``. The fixtures are in ``conftest.py``."""

from __future__ import annotations

import math
import sys
from types import SimpleNamespace
from typing import Any

MODULE = "bl_ext.dev.meshlift"
# Small and fast: hull, fast preset, a coarse grid, few faces, a small texture.
FAST_OPTIONS = {"resolution": 96, "faces": 4000, "texture_size": 256}


def addon_prefs() -> Any:
    import bpy

    return bpy.context.preferences.addons[MODULE].preferences


def submodule(name: str) -> Any:
    """``submodule("operators.scene_job")`` -> the add-on's module."""
    return sys.modules[f"{MODULE}.{name}"]


def look_at(obj: Any, target: tuple[float, float, float]) -> None:
    from mathutils import Vector

    direction = Vector(target) - obj.location
    obj.rotation_euler = direction.to_track_quat("-Z", "Y").to_euler()


def orbit_positions(count: int = 16, distance: float = 6.0) -> list[tuple[float, float, float]]:
    """Three rings (6 high, 6 level, 4 low) around the origin."""
    rings = [(6, math.radians(50)), (6, math.radians(8)), (count - 12, math.radians(-35))]
    positions = []
    for number, elevation in rings:
        for i in range(number):
            angle = 2 * math.pi * (i + 0.5 * (elevation < 0)) / number
            positions.append((distance * math.cos(angle) * math.cos(elevation),
                              distance * math.sin(angle) * math.cos(elevation), distance * math.sin(elevation)))
    return positions


def build_scene(scene: Any, cameras: int = 16, size: int = 128) -> Any:
    """A monkey with a material, a sun, ``cameras`` cameras named ``Cam.NNN`` looking at it, and
    Cycles on the CPU at ``size``² with 16 samples. Returns the monkey."""
    import bpy

    bpy.ops.mesh.primitive_monkey_add(size=2.0, location=(0.2, -0.1, 0.3))
    monkey = bpy.context.active_object
    monkey.name = "Monkey"
    material = bpy.data.materials.new("MonkeyPaint")
    material.use_nodes = True
    bsdf = material.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = (0.8, 0.3, 0.1, 1.0)
    monkey.data.materials.append(material)
    sun = bpy.data.objects.new("Sun", bpy.data.lights.new("Sun", "SUN"))
    scene.collection.objects.link(sun)
    sun.rotation_euler = (0.6, 0.2, 0.8)
    if scene.world is None:
        scene.world = bpy.data.worlds.new("World")
    for index, position in enumerate(orbit_positions(cameras)):
        camera = bpy.data.objects.new(f"Cam.{index:03d}", bpy.data.cameras.new(f"Cam.{index:03d}"))
        scene.collection.objects.link(camera)
        camera.location = position
        look_at(camera, (0.2, -0.1, 0.3))
    render = scene.render
    render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = 16
    scene.cycles.use_denoising = False
    render.resolution_x = render.resolution_y = size
    render.resolution_percentage = 100
    bpy.context.view_layer.update()
    return monkey


def select_cameras(context: Any, pattern: str = "Cam.") -> list[Any]:
    for obj in context.scene.objects:
        obj.select_set(obj.type == "CAMERA" and obj.name.startswith(pattern))
    return [o for o in context.scene.objects if o.select_get()]


def snapshot() -> dict[str, Any]:
    """Everything a failed or cancelled job must leave alone: the datablocks and the objects'
    transforms, data and collections. ("Render Result" is Blender's viewer image, not scene data.)"""
    import bpy

    blocks = {}
    for kind in ("objects", "meshes", "materials", "images", "collections", "cameras", "lights", "node_groups"):
        blocks[kind] = sorted(b.name for b in getattr(bpy.data, kind) if b.name != "Render Result")
    objects = {o.name: (tuple(tuple(r) for r in o.matrix_world), o.data.name if o.data else None,
                        tuple(sorted(c.name for c in o.users_collection)), len(o.data.vertices) if o.type == "MESH"
                        else None) for o in bpy.data.objects}
    render = bpy.context.scene.render
    settings = (render.film_transparent, render.filepath, render.image_settings.file_format,
                render.image_settings.color_mode, bpy.context.scene.camera.name if bpy.context.scene.camera else None)
    return {"blocks": blocks, "objects": objects, "render": settings}


class Recorder:
    """Stands in for ``UILayout`` (which cannot be made headless): records every call, returns
    sub-layouts that record into the same list, accepts attribute assignments."""

    def __init__(self, calls: list[tuple[str, tuple, dict]] | None = None) -> None:
        object.__setattr__(self, "calls", [] if calls is None else calls)

    def __getattr__(self, name: str) -> Any:
        def record(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, args, kwargs))
            return Recorder(self.calls)

        return record

    def __setattr__(self, name: str, value: Any) -> None:
        self.calls.append(("set", (name, value), {}))

    def texts(self) -> list[str]:
        return [str(kw.get("text", "")) for name, _a, kw in self.calls if name in ("label", "progress", "operator")]

    def names(self) -> list[str]:
        return [name for name, _a, _kw in self.calls]


def fake_panel() -> SimpleNamespace:
    return SimpleNamespace(layout=Recorder())
