# SPDX-License-Identifier: GPL-3.0-or-later
"""The sidebar panel: settings, the Reconstruct button, progress with Cancel, and the outcome."""

from __future__ import annotations

import textwrap

import bpy

from .. import properties
from ..bridge import interpreter
from ..operators import engine_setup, scene_job

STATE_ICONS = {"done": "CHECKMARK", "error": "ERROR", "cancelled": "CANCEL"}


def wrapped(layout: bpy.types.UILayout, text: str, width_px: float, icon: str = "NONE") -> None:
    """Labels that wrap ``text`` to the panel's width (about 9 px per character, as measured in Blender 4.3)."""
    for index, line in enumerate(textwrap.wrap(text, max(int(width_px / 9), 24)) or [""]):
        layout.label(text=line, icon=icon if index == 0 else "BLANK1" if icon != "NONE" else "NONE")


class SidebarPanel:
    """Where Meshlift's panels live: the 3D viewport's sidebar (N), tab "Meshlift"."""

    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Meshlift"


class MESHLIFT_PT_main(SidebarPanel, bpy.types.Panel):
    bl_idname = "MESHLIFT_PT_main"
    bl_label = "Meshlift"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        settings = context.scene.meshlift
        region = getattr(context, "region", None)
        width = region.width if region is not None else 300
        running = scene_job.is_running()

        layout.use_property_split = True
        layout.use_property_decorate = False
        column = layout.column()
        column.enabled = not running
        column.prop(settings, "source")
        if settings.source == "FOLDER":
            column.prop(settings, "folder")
        else:
            count = sum(1 for o in context.selected_objects if o.type == "CAMERA")
            column.label(text=f"{count} camera{'s' if count != 1 else ''} selected", icon="CAMERA_DATA")
            column.prop(settings, "depth_normals")
        column.prop(settings, "method")
        column.prop(settings, "preset")
        column.prop(settings, "device")
        column.prop(settings, "texture_size")
        column.prop(settings, "preview")
        column.prop(settings, "collection", icon="OUTLINER_COLLECTION")
        column.prop(settings, "light_as_world")
        setup = engine_setup.current()
        if setup is not None and setup.running:
            box = layout.box()
            box.progress(factor=setup.progress.fraction, type="BAR", text=setup.progress.describe())
            box.operator("meshlift.cancel_engine_setup", icon="CANCEL")
        elif not properties.methods() and interpreter.CATALOG.error:
            box = layout.box()
            wrapped(box, interpreter.CATALOG.error, width, icon="ERROR")
            if setup is not None and setup.state == "failed":
                wrapped(box, setup.message, width, icon="ERROR")
            row = box.row()
            row.operator("meshlift.setup_engine", icon="IMPORT")
            row.operator("meshlift.check_python", icon="CHECKMARK")

        if running:
            job = scene_job.active_job()
            progress = job.progress
            layout.progress(factor=progress.fraction, type="BAR", text=progress.describe())
            layout.label(text=f"{job.name}: {scene_job.format_seconds(job.elapsed)} elapsed", icon="TIME")
            layout.operator("meshlift.cancel", icon="CANCEL")
            return

        row = layout.row()
        row.scale_y = 1.4
        if settings.source == "FOLDER":
            row.operator("meshlift.reconstruct_folder", text="Reconstruct", icon="MESH_MONKEY").directory = \
                settings.folder
            layout.operator("meshlift.reconstruct_photos", icon="IMAGE_DATA")  # photos without poses: SfM first
            layout.operator("meshlift.relief_image", icon="IMAGE_RGB")  # one image: a relief
        else:
            row.operator("meshlift.reconstruct_cameras", text="Reconstruct", icon="MESH_MONKEY")
            layout.operator("meshlift.texture_selected", icon="TEXTURE")
            layout.operator("meshlift.export_cameras", icon="EXPORT")

        status = scene_job.STATUS
        if status.state in STATE_ICONS:
            box = layout.box()
            wrapped(box, status.message, width, icon=STATE_ICONS[status.state])
            for line in status.lines:
                wrapped(box, line, width)


class MESHLIFT_PT_options(SidebarPanel, bpy.types.Panel):
    """Overrides of the chosen method's engine options; each option's tooltip is the engine's doc."""

    bl_idname = "MESHLIFT_PT_options"
    bl_label = "Engine Options"
    bl_parent_id = "MESHLIFT_PT_main"
    bl_options = {"DEFAULT_CLOSED"}  # noqa: RUF012 (Blender reads a plain set)

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        settings = context.scene.meshlift
        layout.enabled = not scene_job.is_running()
        if not settings.options:
            layout.label(text="The preset's values apply", icon="INFO")
        for index, item in enumerate(settings.options):
            row = layout.row(align=True)
            row.prop(item, "option", text="")
            row.prop(item, "value", text="")
            row.operator("meshlift.option_remove", text="", icon="X").index = index
        layout.operator("meshlift.option_add", icon="ADD")
