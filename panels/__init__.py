# SPDX-License-Identifier: GPL-3.0-or-later
"""The View3D ▸ Sidebar (N) ▸ Meshlift panel."""

from __future__ import annotations

import bpy

from .sidebar import MESHLIFT_PT_main

CLASSES = (MESHLIFT_PT_main,)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
