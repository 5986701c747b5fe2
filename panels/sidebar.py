# SPDX-License-Identifier: GPL-3.0-or-later
"""The sidebar panel: settings, the Reconstruct button, progress with Cancel, and the outcome."""

from __future__ import annotations

import textwrap

import bpy

from .. import properties
from ..bridge import interpreter
from ..operators import jobs

STATE_ICONS = {"done": "CHECKMARK", "error": "ERROR", "cancelled": "CANCEL"}


def wrapped(layout: bpy.types.UILayout, text: str, width_px: float, icon: str = "NONE") -> None:
    """Labels that wrap ``text`` to the panel's width (about 7 px per character)."""
    for index, line in enumerate(textwrap.wrap(text, max(int(width_px / 7), 24)) or [""]):
        layout.label(text=line, icon=icon if index == 0 else "BLANK1" if icon != "NONE" else "NONE")


class MESHLIFT_PT_main(bpy.types.Panel):
    bl_idname = "MESHLIFT_PT_main"
    bl_label = "Meshlift"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Meshlift"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        settings = context.scene.meshlift
        region = getattr(context, "region", None)
        width = region.width if region is not None else 300
        running = jobs.is_running()

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
        column.prop(settings, "method")
        column.prop(settings, "preset")
        column.prop(settings, "device")
        column.prop(settings, "texture_size")
        column.prop(settings, "collection", icon="OUTLINER_COLLECTION")
        if not properties.methods() and interpreter.CATALOG.error:
            box = layout.box()
            wrapped(box, interpreter.CATALOG.error, width, icon="ERROR")
            box.operator("meshlift.check_python", icon="CHECKMARK")

        if running:
            job = jobs.active_job()
            progress = job.progress
            layout.progress(factor=progress.fraction, type="BAR", text=progress.describe())
            layout.label(text=f"{job.name}: {jobs.format_seconds(job.worker.elapsed)} elapsed", icon="TIME")
            layout.operator("meshlift.cancel", icon="CANCEL")
            return

        row = layout.row()
        row.scale_y = 1.4
        if settings.source == "FOLDER":
            row.operator("meshlift.reconstruct_folder", text="Reconstruct", icon="MESH_MONKEY").directory = \
                settings.folder
            layout.operator("meshlift.reconstruct_photos", icon="IMAGE_DATA")  # photos without poses: SfM first
        else:
            row.operator("meshlift.reconstruct_cameras", text="Reconstruct", icon="MESH_MONKEY")
            layout.operator("meshlift.export_cameras", icon="EXPORT")

        status = jobs.STATUS
        if status.state in STATE_ICONS:
            box = layout.box()
            wrapped(box, status.message, width, icon=STATE_ICONS[status.state])
            for line in status.lines:
                wrapped(box, line, width)
