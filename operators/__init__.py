# SPDX-License-Identifier: GPL-3.0-or-later
"""Operators (reconstruct, reconstruct from photos, texture a mesh, relief from an image, export, cancel,
engine-option rows, engine set-up) and the Object ▸ Meshlift menu that makes them findable with F3 menu search."""

from __future__ import annotations

import bpy

from . import engine_setup, preview, scene_job
from .engine_options import CLASSES as OPTION_CLASSES
from .engine_setup import CLASSES as SETUP_CLASSES
from .photos import CLASSES as PHOTO_CLASSES
from .reconstruct import CLASSES as OPERATOR_CLASSES
from .relief import CLASSES as RELIEF_CLASSES
from .texture_mesh import CLASSES as TEXTURE_CLASSES


class MESHLIFT_MT_object(bpy.types.Menu):
    bl_idname = "MESHLIFT_MT_object"
    bl_label = "Meshlift"

    def draw(self, _context: bpy.types.Context) -> None:
        layout = self.layout
        layout.operator_context = "INVOKE_DEFAULT"
        layout.operator("meshlift.reconstruct_cameras", icon="CAMERA_DATA")
        layout.operator("meshlift.reconstruct_folder", icon="FILE_FOLDER")
        layout.operator("meshlift.reconstruct_photos", icon="IMAGE_DATA")
        layout.operator("meshlift.texture_selected", icon="TEXTURE")
        layout.operator("meshlift.relief_image", icon="IMAGE_RGB")
        layout.operator("meshlift.export_cameras", icon="EXPORT")
        layout.separator()
        layout.operator("meshlift.cancel", icon="CANCEL")


def draw_object_menu(self: bpy.types.Menu, _context: bpy.types.Context) -> None:
    self.layout.separator()
    self.layout.menu(MESHLIFT_MT_object.bl_idname)


CLASSES = (*OPERATOR_CLASSES, *PHOTO_CLASSES, *TEXTURE_CLASSES, *RELIEF_CLASSES, *OPTION_CLASSES, *SETUP_CLASSES,
           MESHLIFT_MT_object)


@bpy.app.handlers.persistent
def stop_job_on_load(*_args: object) -> None:
    """Loading another file drops the modal operator's handler: stop its worker too."""
    scene_job.shutdown()


@bpy.app.handlers.persistent
def remove_stray_previews(*_args: object) -> None:
    """After an undo or loading a file: delete preview objects that are not the running job's
    (an undo step or a file saved while a job ran may hold one)."""
    job = scene_job.active_job()
    preview.remove_strays(job.preview.object_name if job is not None and job.preview is not None else None)


HANDLERS = {"load_pre": stop_job_on_load, "load_post": remove_stray_previews, "undo_post": remove_stray_previews,
            "redo_post": remove_stray_previews}
_register_classes, _unregister_classes = bpy.utils.register_classes_factory(CLASSES)


def register() -> None:
    _register_classes()
    bpy.types.VIEW3D_MT_object.append(draw_object_menu)
    for name, handler in HANDLERS.items():
        getattr(bpy.app.handlers, name).append(handler)


def unregister() -> None:
    scene_job.shutdown()
    engine_setup.shutdown()
    for name, handler in HANDLERS.items():
        handlers = getattr(bpy.app.handlers, name)
        if handler in handlers:
            handlers.remove(handler)
    bpy.types.VIEW3D_MT_object.remove(draw_object_menu)
    _unregister_classes()
