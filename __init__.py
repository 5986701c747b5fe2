# SPDX-License-Identifier: GPL-3.0-or-later
"""Meshlift: posed photos or the cameras of a scene -> a textured mesh in the scene.

The add-on is thin: it gathers inputs, runs the bpy-free engine (``engine/``) in a worker
subprocess through ``bridge/``, shows progress and builds the result with ``bpy.data``.
"""

from . import operators, panels, preferences, properties

_MODULES = (preferences, properties, operators, panels)


def register() -> None:
    for module in _MODULES:
        module.register()


def unregister() -> None:
    for module in reversed(_MODULES):
        module.unregister()
