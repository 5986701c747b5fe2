# SPDX-License-Identifier: GPL-3.0-or-later
"""Add-on preferences: the engine (Set Up Engine and its options, or a Python of one's own), the
default device, the cache folder."""

from __future__ import annotations

import sys
from pathlib import Path

import bpy

from .bridge import engine_setup, interpreter
from .bridge.errors import UserError

ADDON_ID = __package__  # "bl_ext.<repository>.meshlift"

DEVICES = [
    ("auto", "Automatic", "CUDA when the engine's torch sees a GPU, otherwise the CPU"),
    ("cpu", "CPU", "Always compute on the CPU"),
    ("cuda", "CUDA", "Compute on the first NVIDIA GPU (needs a CUDA build of torch)"),
]

TORCH_BUILDS = [
    ("AUTO", "Automatic", "The CUDA build when an NVIDIA driver is found, otherwise the CPU build"),
    ("CPU", "CPU", "The CPU build of PyTorch (the smallest download)"),
    ("CUDA", "CUDA", f"The CUDA build of PyTorch ({engine_setup.CUDA_BUILD}) for NVIDIA GPUs"),
]

# The last interpreter check, shown in the preferences: (python, text, ok).
CHECK_RESULT: dict[str, object] = {}


def forget_engine_answers() -> None:
    """Forget what the engine's interpreter said (its torch, its methods, the last check): it changed."""
    interpreter.clear_cache()
    interpreter.CATALOG.reset()
    CHECK_RESULT.clear()


def _interpreter_changed(_self: bpy.types.AddonPreferences, _context: bpy.types.Context) -> None:
    forget_engine_answers()


class MeshliftPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    python_path: bpy.props.StringProperty(
        name="Engine Python",
        description=("Python interpreter that runs the reconstruction engine (needs PyTorch; Set Up Engine fills "
                     "it in). Empty: the environment Set Up Engine made, else Blender's own Python if it has torch"),
        subtype="FILE_PATH", update=_interpreter_changed,
    )
    base_python: bpy.props.StringProperty(
        name="Base Python",
        description=("The Python 3.11 that Set Up Engine makes the environment from. Empty: Blender's own Python "
                     "(3.11 in Blender 4.2 to 5.0 from blender.org; some Linux builds have another)"),
        subtype="FILE_PATH",
    )
    torch_build: bpy.props.EnumProperty(name="PyTorch Build", items=TORCH_BUILDS, default="AUTO",
                                        description="Which build of PyTorch Set Up Engine installs")
    torch_index: bpy.props.StringProperty(
        name="PyTorch Index",
        description=("The package index PyTorch comes from. Empty: PyTorch's own index for the chosen build "
                     "(download.pytorch.org)"),
    )
    extra_index: bpy.props.StringProperty(
        name="Extra Index URL", description="Another package index for every package (a studio mirror, say)",
    )
    wheel_folder: bpy.props.StringProperty(
        name="Wheel Folder", subtype="DIR_PATH",
        description="A folder of wheel files pip may install from (for studios without internet access)",
    )
    offline: bpy.props.BoolProperty(
        name="Offline", default=False,
        description="Install only from the wheel folder, without any package index",
    )
    show_setup_options: bpy.props.BoolProperty(name="Set-up Options", default=False)
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
        self.draw_engine(layout.box())
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

    def draw_engine(self, box: bpy.types.UILayout) -> None:
        """Set Up Engine: its state, progress and Cancel, Remove, the log, its options."""
        from .operators import engine_setup as setup_operators  # noqa: PLC0415 (operators import this module)

        setup = setup_operators.current()
        target = engine_environment()
        info = engine_setup.environment_info(target)
        if setup is not None and setup.running:
            box.progress(factor=setup.progress.fraction, type="BAR", text=setup.progress.describe())
            row = box.row()
            row.operator("meshlift.cancel_engine_setup", icon="CANCEL")
            row.operator("meshlift.open_setup_log", icon="TEXT")
        elif info is not None:
            compute = "CUDA" if info.get("cuda_available") else "CPU"
            box.label(text=f"Engine set up: torch {info.get('torch')} ({compute}) in {target}", icon="CHECKMARK")
            row = box.row()
            row.operator("meshlift.remove_engine", icon="TRASH")
            row.operator("meshlift.open_setup_log", icon="TEXT")
        else:
            row = box.row()
            row.scale_y = 1.4
            row.operator("meshlift.setup_engine", icon="IMPORT")
            if setup is not None and setup.state in ("failed", "cancelled"):
                for index, line in enumerate(wrap(setup.message, 90)):
                    box.label(text=line, icon=("ERROR" if setup.state == "failed" else "CANCEL") if index == 0
                              else "BLANK1")
            if setup_log().is_file():
                box.operator("meshlift.open_setup_log", icon="TEXT")
        box.prop(self, "show_setup_options", icon="TRIA_DOWN" if self.show_setup_options else "TRIA_RIGHT",
                 emboss=False)
        if self.show_setup_options:
            column = box.column()
            column.enabled = not (setup is not None and setup.running)
            column.prop(self, "base_python")
            column.prop(self, "torch_build")
            if self.torch_build == "AUTO":
                driver = engine_setup.nvidia_driver()
                column.label(text=f"CUDA: NVIDIA driver {driver} found" if driver else "CPU: no NVIDIA driver found",
                             icon="INFO")
            column.prop(self, "torch_index")
            column.prop(self, "extra_index")
            column.prop(self, "wheel_folder")
            column.prop(self, "offline")


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


def engine_environment(create: bool = False) -> Path:
    """Where Set Up Engine puts the engine's environment (the extension's user folder)."""
    return Path(bpy.utils.extension_path_user(ADDON_ID, path="engine", create=create))


def setup_log() -> Path:
    """The log of the last set-up."""
    return Path(bpy.utils.extension_path_user(ADDON_ID, create=True)) / "engine-setup.log"


def preferred_python(context: bpy.types.Context | None = None) -> str:
    """The preferences' *Engine Python*, else the interpreter of a complete Set Up Engine
    environment, else empty (Blender's own Python may do)."""
    prefs = get_preferences(context)
    if prefs is not None and prefs.python_path:
        return bpy.path.abspath(prefs.python_path)
    target = engine_environment()
    return str(engine_setup.venv_python(target)) if engine_setup.environment_info(target) is not None else ""


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
        forget_engine_answers()
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
