# SPDX-License-Identifier: GPL-3.0-or-later
"""Add and remove rows of the panel's engine-option overrides (``scene.meshlift.options``)."""

from __future__ import annotations

import bpy


class MESHLIFT_OT_option_add(bpy.types.Operator):
    """Override one of the method's engine options (each option's tooltip says what it does)"""

    bl_idname = "meshlift.option_add"
    bl_label = "Add Engine Option"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 (Blender reads a plain set)

    def execute(self, context: bpy.types.Context) -> set[str]:
        context.scene.meshlift.options.add()
        return {"FINISHED"}


class MESHLIFT_OT_option_remove(bpy.types.Operator):
    """Remove this option override: the preset's value applies again"""

    bl_idname = "meshlift.option_remove"
    bl_label = "Remove Engine Option"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 (Blender reads a plain set)

    index: bpy.props.IntProperty(name="Index", default=0, min=0, options={"HIDDEN", "SKIP_SAVE"})

    def execute(self, context: bpy.types.Context) -> set[str]:
        options = context.scene.meshlift.options
        if self.index >= len(options):
            return {"CANCELLED"}
        options.remove(self.index)
        return {"FINISHED"}


CLASSES = (MESHLIFT_OT_option_add, MESHLIFT_OT_option_remove)
