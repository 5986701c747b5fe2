# SPDX-License-Identifier: GPL-3.0-or-later
"""The View3D ▸ Sidebar (N) ▸ Meshlift panel."""

from __future__ import annotations

import bpy

from .sidebar import MESHLIFT_PT_main, MESHLIFT_PT_options

CLASSES = (MESHLIFT_PT_main, MESHLIFT_PT_options)

register, unregister = bpy.utils.register_classes_factory(CLASSES)
