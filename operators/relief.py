# SPDX-License-Identifier: GPL-3.0-or-later
"""Relief from Image: one picture and its depth or normal map -> a textured relief in the scene.

The engine's ``relief`` job (``engine/relief.py``) does the work in the worker; this operator
checks the files, starts it and adds the result at the 3D cursor, facing the front view (-Y), the
image's up along +Z. Options: the relief's width (scene units) and a factor on its heights.
"""

from __future__ import annotations

from pathlib import Path

import bpy

from ..bridge.errors import UserError
from ..engine.protocol import ReliefJob
from . import scene_job
from .reconstruct import ReconstructBase, parse_options

MAP_SUFFIXES = (".png", ".exr", ".npy")


def existing_file(path: str, what: str, suffixes: tuple[str, ...] | None = None) -> Path:
    """``path`` (Blender-relative allowed) as an existing file; raises :class:`UserError`."""
    found = Path(bpy.path.abspath(path)) if path else None
    if found is None or not found.is_file():
        raise UserError(f"Choose {what} (got '{path}')." if path else f"Choose {what}.")
    if suffixes is not None and found.suffix.lower() not in suffixes:
        raise UserError(f"{found.name} is not {what}: use a {', '.join(suffixes)} file.")
    return found


def start_relief(context: bpy.types.Context, image: str, map_path: str, source: str, *, width: float = 2.0,
                 scale: float = 1.0, extra_options: dict | None = None) -> scene_job.SceneJob:
    """Start the worker's relief job for ``image`` and its ``source`` (``DEPTH`` or ``NORMALS``) map."""
    scene_job.check_idle()
    image_path = existing_file(image, "an image (PNG or JPEG)")
    kind = "a depth map" if source == "DEPTH" else "a normal map"
    maps = existing_file(map_path, kind, MAP_SUFFIXES)
    settings = scene_job.job_settings(context)
    options = {"width": float(width), "scale": float(scale), **(extra_options or {})}
    name = scene_job.source_name(image_path.stem)

    def make_job(out: str) -> ReliefJob:
        return ReliefJob(image=str(image_path), out=out, depth=str(maps) if source == "DEPTH" else None,
                         normals=str(maps) if source == "NORMALS" else None, options=options, name=name)

    job = scene_job.launch(context, name, image_path, settings, [], make_job=make_job)
    cursor = tuple(context.scene.cursor.location)

    def place(scene: bpy.types.Scene, _files: dict[str, str]) -> None:
        scene.objects[job.object_name].location = cursor

    job.after_build = place
    return job


class MESHLIFT_OT_relief_image(ReconstructBase, bpy.types.Operator):
    """Make a textured relief from one image and its depth or normal map"""

    bl_description = ("Turn one image and its depth map (nearer is higher) or normal map (integrated into heights) "
                      "into a textured relief mesh at the 3D cursor, facing the front view")
    bl_idname = "meshlift.relief_image"
    bl_label = "Relief from Image"

    filepath: bpy.props.StringProperty(name="Image", subtype="FILE_PATH", options={"SKIP_SAVE"})
    filter_image: bpy.props.BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})
    source: bpy.props.EnumProperty(
        name="Heights From", items=[("NORMALS", "Normal Map", "A camera-space normal map (OpenGL: green up)"),
                                    ("DEPTH", "Depth Map", "A depth map: 16-bit PNG, EXR or .npy; nearer is higher")],
        default="NORMALS")
    map_path: bpy.props.StringProperty(name="Map", subtype="FILE_PATH", description="The depth or normal map file")
    width: bpy.props.FloatProperty(name="Width", description="Size of the relief's longer side", default=2.0,
                                   min=1e-4, subtype="DISTANCE")
    height_scale: bpy.props.FloatProperty(name="Height Scale", description="Factor on the heights", default=1.0,
                                          min=0.0)

    def start(self, context: bpy.types.Context, interactive: bool) -> scene_job.SceneJob:
        return start_relief(context, self.filepath, self.map_path, self.source, width=self.width,
                            scale=self.height_scale, extra_options=parse_options(self.options))

    def invoke(self, context: bpy.types.Context, _event: bpy.types.Event) -> set[str]:
        if not self.filepath and not bpy.app.background:
            context.window_manager.fileselect_add(self)  # the file browser shows the other settings too
            return {"RUNNING_MODAL"}
        return self.run(context, modal=not bpy.app.background)

    def execute(self, context: bpy.types.Context) -> set[str]:
        return self.run(context, modal=not bpy.app.background and context.window is not None)


CLASSES = (MESHLIFT_OT_relief_image,)
