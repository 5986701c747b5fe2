# SPDX-License-Identifier: GPL-3.0-or-later
"""Add-on preferences: the Python that runs the engine, the default device, the cache folder."""

from __future__ import annotations

import sys
from pathlib import Path

import bpy

from .bridge import interpreter
from .bridge.errors import UserError

ADDON_ID = __package__  # "bl_ext.<repository>.meshlift"

DEVICES = [
    ("auto", "Automatic", "CUDA when the engine's torch sees a GPU, otherwise the CPU"),
    ("cpu", "CPU", "Always compute on the CPU"),
    ("cuda", "CUDA", "Compute on the first NVIDIA GPU (needs a CUDA build of torch)"),
]

# The last interpreter check, shown in the preferences: (python, text, ok).
CHECK_RESULT: dict[str, object] = {}


def _interpreter_changed(_self: bpy.types.AddonPreferences, _context: bpy.types.Context) -> None:
    interpreter.clear_cache()
    interpreter.CATALOG.reset()
    CHECK_RESULT.clear()


class MeshliftPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    python_path: bpy.props.StringProperty(
        name="Engine Python",
        description=("Python interpreter that runs the reconstruction engine (needs PyTorch). "
                     "Empty: Blender's own Python, when it can import torch"),
        subtype="FILE_PATH", update=_interpreter_changed,
    )
    device: bpy.props.EnumProperty(
        name="Device", description="Where the engine computes, unless the panel overrides it", items=DEVICES,
        default="auto",
    )
    cache_dir: bpy.props.StringProperty(
        name="Cache Folder",
        description="Where renders, jobs and results are written. Empty: the extension's user folder",
        subtype="DIR_PATH",
    )
    keep_files: bpy.props.BoolProperty(
        name="Keep Intermediate Files",
        description="Keep the rendered datasets and the engine's result files in the cache folder after a job",
        default=False,
    )

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.use_property_split = True
        layout.prop(self, "python_path")
        row = layout.row()
        row.operator("meshlift.check_python", icon="CHECKMARK")
        if CHECK_RESULT:
            box = layout.box()
            box.label(text=str(CHECK_RESULT["python"]), icon="CHECKMARK" if CHECK_RESULT["ok"] else "ERROR")
            for line in wrap(str(CHECK_RESULT["text"]), 90):
                box.label(text=line)
        layout.prop(self, "device")
        layout.prop(self, "cache_dir")
        layout.prop(self, "keep_files")
        layout.label(text=f"Cache in use: {cache_root(create=False)}", icon="FILE_FOLDER")


def wrap(text: str, width: int) -> list[str]:
    import textwrap  # noqa: PLC0415

    return textwrap.wrap(text, max(width, 20)) or [""]


def get_preferences(context: bpy.types.Context | None = None) -> MeshliftPreferences | None:
    context = context or bpy.context
    addon = context.preferences.addons.get(ADDON_ID)
    return None if addon is None else addon.preferences


def blender_python() -> str:
    """The interpreter of Blender's own process (the venv's Python when bpy is a module)."""
    return sys.executable or ""


def preferred_python(context: bpy.types.Context | None = None) -> str:
    prefs = get_preferences(context)
    return bpy.path.abspath(prefs.python_path) if prefs is not None and prefs.python_path else ""


def engine_python(context: bpy.types.Context | None = None) -> str:
    """The interpreter for the engine; raises :class:`UserError`."""
    return interpreter.resolve_python(preferred_python(context), blender_python())


def default_device(context: bpy.types.Context | None = None) -> str:
    prefs = get_preferences(context)
    return prefs.device if prefs is not None else "auto"


def keep_files(context: bpy.types.Context | None = None) -> bool:
    prefs = get_preferences(context)
    return bool(prefs is not None and prefs.keep_files)


def cache_root(context: bpy.types.Context | None = None, create: bool = True) -> Path:
    """The cache folder: the preference when set, else ``extension_path_user(.., "cache")``."""
    prefs = get_preferences(context)
    if prefs is not None and prefs.cache_dir:
        path = Path(bpy.path.abspath(prefs.cache_dir))
        if create:
            path.mkdir(parents=True, exist_ok=True)
        return path
    return Path(bpy.utils.extension_path_user(ADDON_ID, path="cache", create=create))


class MESHLIFT_OT_check_python(bpy.types.Operator):
    """Check that the engine's Python can run the engine: reports the torch version and whether CUDA is available"""

    bl_idname = "meshlift.check_python"
    bl_label = "Check Engine Python"
    bl_options = {"REGISTER"}  # noqa: RUF012 (Blender reads a plain set)

    def execute(self, context: bpy.types.Context) -> set[str]:
        interpreter.clear_cache()
        interpreter.CATALOG.reset()
        CHECK_RESULT.clear()
        python = preferred_python(context) or blender_python()
        try:
            python = engine_python(context)
            info = interpreter.check(python)
        except UserError as error:
            CHECK_RESULT.update(python=python, text=str(error), ok=False)
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        text = interpreter.describe_check(info)
        CHECK_RESULT.update(python=python, text=text, ok=True, info=info)
        self.report({"INFO"}, f"{python}: {text}")
        return {"FINISHED"}


CLASSES = (MeshliftPreferences, MESHLIFT_OT_check_python)
register, _unregister_classes = bpy.utils.register_classes_factory(CLASSES)


def unregister() -> None:
    _unregister_classes()
    CHECK_RESULT.clear()
