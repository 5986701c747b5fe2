# SPDX-License-Identifier: GPL-3.0-or-later
"""Operators (reconstruct, reconstruct from photos, texture a mesh, export, cancel, engine-option rows) and the
Object ▸ Meshlift menu that makes them findable with F3 menu search."""

from __future__ import annotations

import bpy

from . import scene_job
from .engine_options import CLASSES as OPTION_CLASSES
from .photos import CLASSES as PHOTO_CLASSES
from .reconstruct import CLASSES as OPERATOR_CLASSES
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
        layout.operator("meshlift.export_cameras", icon="EXPORT")
        layout.separator()
        layout.operator("meshlift.cancel", icon="CANCEL")


def draw_object_menu(self: bpy.types.Menu, _context: bpy.types.Context) -> None:
    self.layout.separator()
    self.layout.menu(MESHLIFT_MT_object.bl_idname)


CLASSES = (*OPERATOR_CLASSES, *PHOTO_CLASSES, *TEXTURE_CLASSES, *OPTION_CLASSES, MESHLIFT_MT_object)


@bpy.app.handlers.persistent
def stop_job_on_load(*_args: object) -> None:
    """Loading another file drops the modal operator's handler: stop its worker too."""
    scene_job.shutdown()


_register_classes, _unregister_classes = bpy.utils.register_classes_factory(CLASSES)


def register() -> None:
    _register_classes()
    bpy.types.VIEW3D_MT_object.append(draw_object_menu)
    bpy.app.handlers.load_pre.append(stop_job_on_load)


def unregister() -> None:
    scene_job.shutdown()
    if stop_job_on_load in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(stop_job_on_load)
    bpy.types.VIEW3D_MT_object.remove(draw_object_menu)
    _unregister_classes()
