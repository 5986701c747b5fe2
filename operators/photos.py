# SPDX-License-Identifier: GPL-3.0-or-later
"""Reconstruct from Photos: a folder of plain JPEG/PNG photos, cameras found by the engine (SfM).

The engine does the work (``engine/sfm``: structure-from-motion as the job's first progress stage,
an upright frame, the object's box, masks); this operator only checks the folder, starts the job
and, with "Import Cameras", adds the recovered cameras to the scene from the result's
``cameras/transforms.json`` so the user can see what SfM found. "Custom Region" overrides the
automatic box (after a first run the imported cameras show the frame to choose it in).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import bpy
import mathutils

from ..bridge.camera_math import Intrinsics, blender_camera_settings
from ..bridge.errors import UserError
from . import scene_job
from .reconstruct import ReconstructBase, parse_options

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
MIN_PHOTOS = 3


def check_photo_folder(folder: str) -> Path:
    """The folder as a path; raises :class:`UserError` unless it holds enough photos."""
    path = Path(bpy.path.abspath(folder)) if folder else None
    if path is None or not path.is_dir():
        raise UserError(f"Choose an existing folder of photos (got '{folder}')." if folder else
                             "Choose a folder of photos (JPEG or PNG) of one object.")
    count = sum(1 for p in path.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
    if count < MIN_PHOTOS:
        raise UserError(f"The folder {path} has {count} JPEG/PNG photo(s); take at least {MIN_PHOTOS} "
                             "(20-60 overlapping photos all around the object work best).")
    if list(path.glob("transforms*.json")):
        raise UserError(f"The folder {path} already has camera poses (transforms.json): use "
                             "Reconstruct from Image Folder instead.")
    return path


def import_cameras(scene: bpy.types.Scene, transforms: Path, collection_name: str) -> list[bpy.types.Object]:
    """Add one camera object per frame of ``transforms`` (engine convention = Blender's camera
    convention, so ``transform_matrix`` is the object's world matrix) to a new collection."""
    meta = json.loads(transforms.read_text())
    collection = bpy.data.collections.new(collection_name)
    scene.collection.children.link(collection)
    objects = []
    for frame in meta["frames"]:
        name = Path(frame["file_path"]).stem
        data = bpy.data.cameras.new(name)
        intrinsics = Intrinsics(frame["fl_x"], frame["fl_y"], frame["cx"], frame["cy"], frame["w"], frame["h"])
        for key, value in blender_camera_settings(intrinsics).items():
            setattr(data, key, value)
        obj = bpy.data.objects.new(name, data)
        obj.matrix_world = mathutils.Matrix(frame["transform_matrix"])
        collection.objects.link(obj)
        objects.append(obj)
    return objects


def start_from_photos(context: bpy.types.Context, folder: str, extra_options: dict[str, Any] | None = None,
                      add_cameras: bool = True, region: list[float] | None = None, *,
                      interactive: bool = False) -> scene_job.SceneJob:
    """Start the worker on a folder of photos; with ``add_cameras`` the recovered cameras join the
    scene; ``region`` (min x y z, max x y z in the upright frame) replaces the automatic box."""
    scene_job.check_idle()
    path = check_photo_folder(folder)
    if region is not None and not all(hi > lo for lo, hi in zip(region[:3], region[3:], strict=True)):
        raise UserError("The region's maximum must exceed its minimum on every axis.")
    settings = scene_job.job_settings(context, extra_options)
    fields = None if region is None else {"region": [float(v) for v in region]}
    job = scene_job.launch(context, scene_job.source_name(path.name), path, settings, [], interactive=interactive,
                           job_fields=fields)
    if add_cameras:
        def add(scene: bpy.types.Scene, files: dict[str, str]) -> None:
            import_cameras(scene, Path(files["obj"]).parent / "cameras" / "transforms.json", f"{job.name} Cameras")
        job.after_build = add
    return job


class MESHLIFT_OT_reconstruct_photos(ReconstructBase, bpy.types.Operator):
    """Reconstruct a textured mesh from a folder of photos without camera poses (cameras found by SfM)"""

    bl_idname = "meshlift.reconstruct_photos"
    bl_label = "Reconstruct from Photos"

    directory: bpy.props.StringProperty(name="Folder", subtype="DIR_PATH", options={"SKIP_SAVE"})
    filter_folder: bpy.props.BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})
    import_cameras: bpy.props.BoolProperty(
        name="Import Cameras", description="Also add the cameras found by structure-from-motion to the scene",
        default=True,
    )
    use_region: bpy.props.BoolProperty(
        name="Custom Region", description="Reconstruct inside this box instead of the automatic one (the photos' "
        "frame: the table is z = 0, the object is about 2 units across)", default=False,
    )
    region_min: bpy.props.FloatVectorProperty(name="Region Min", size=3, default=(-1.0, -1.0, 0.0))
    region_max: bpy.props.FloatVectorProperty(name="Region Max", size=3, default=(1.0, 1.0, 2.0))

    def start(self, context: bpy.types.Context, interactive: bool) -> scene_job.SceneJob:
        region = [*self.region_min, *self.region_max] if self.use_region else None
        return start_from_photos(context, self.directory, parse_options(self.options), self.import_cameras, region,
                                 interactive=interactive)

    def invoke(self, context: bpy.types.Context, _event: bpy.types.Event) -> set[str]:
        if not self.directory and not bpy.app.background:
            context.window_manager.fileselect_add(self)  # execute() follows, and starts the modal job
            return {"RUNNING_MODAL"}
        return self.run(context, modal=not bpy.app.background)

    def execute(self, context: bpy.types.Context) -> set[str]:
        return self.run(context, modal=not bpy.app.background and context.window is not None)


CLASSES = (MESHLIFT_OT_reconstruct_photos,)
