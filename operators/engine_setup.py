# SPDX-License-Identifier: GPL-3.0-or-later
"""Set Up Engine, Cancel, Remove Engine and Open Set-up Log (the work is in ``bridge/engine_setup.py``).

Set Up Engine starts the set-up's background processes and returns at once; a Blender timer
polls them (never blocking), redraws the preferences and the sidebar, and when the set-up is done
selects the new interpreter as *Engine Python*. In background mode (no timers) it waits instead.
"""

from __future__ import annotations

from pathlib import Path

import bpy

from .. import preferences
from ..bridge import engine_setup
from ..bridge.engine_setup import EngineSetup
from ..bridge.errors import UserError
from . import scene_job

POLL_SECONDS = 0.25


class Runtime:
    """The set-up of this Blender session (at most one) and how the last one ended."""

    setup: EngineSetup | None = None


def current() -> EngineSetup | None:
    return Runtime.setup


def is_running() -> bool:
    return Runtime.setup is not None and Runtime.setup.running


def redraw_all() -> None:
    for window in bpy.context.window_manager.windows:
        for area in window.screen.areas:
            if area.type in {"PREFERENCES", "VIEW_3D"}:
                area.tag_redraw()


def finish(setup: EngineSetup) -> None:
    """After the set-up ended: forget stale answers and (when done) select the new interpreter."""
    preferences.forget_engine_answers()
    if setup.state == "done":
        prefs = preferences.get_preferences()
        if prefs is not None:
            prefs.python_path = str(setup.plan.python)
        preferences.CHECK_RESULT.update(python=str(setup.plan.python), text=setup.message, ok=True,
                                        info=setup.info or {})


def poll() -> float | None:
    """The timer: take the set-up's news; stop when it ended."""
    setup = Runtime.setup
    if setup is None:
        return None
    setup.poll()
    redraw_all()
    if setup.running:
        return POLL_SECONDS
    finish(setup)
    return None


def start(context: bpy.types.Context) -> EngineSetup:
    """Plan the set-up from the preferences and start it; raises :class:`UserError`."""
    if is_running():
        raise UserError("The engine is being set up already.")
    if scene_job.is_running():
        raise UserError("A reconstruction is running; set up the engine when it has ended.")
    prefs = preferences.get_preferences(context)
    if prefs is None:
        raise UserError("The Meshlift add-on has no preferences (it is not enabled in the preferences).")
    base = bpy.path.abspath(prefs.base_python) if prefs.base_python else preferences.blender_python()
    plan = engine_setup.plan_setup(
        base, preferences.engine_environment(create=True), preferences.setup_log(), build=prefs.torch_build.lower(),
        torch_index=prefs.torch_index, extra_index=prefs.extra_index,
        wheel_folder=bpy.path.abspath(prefs.wheel_folder) if prefs.wheel_folder else "", offline=prefs.offline)
    Runtime.setup = EngineSetup(plan).start()
    return Runtime.setup


class MESHLIFT_OT_setup_engine(bpy.types.Operator):
    """Make a private Python environment for the engine"""

    bl_description = ("Make a private Python environment with PyTorch and the engine's packages in the extension's "
                      "user folder (downloads about 1 GB, more for CUDA); it runs in the background")
    bl_idname = "meshlift.setup_engine"
    bl_label = "Set Up Engine"
    bl_options = {"REGISTER"}  # noqa: RUF012 (Blender reads a plain set)

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            setup = start(context)
        except UserError as error:
            self.report({"ERROR"}, f"Meshlift: {error}")
            return {"CANCELLED"}
        if bpy.app.background:  # no timers: wait here
            setup.wait()
            finish(setup)
            if setup.state != "done":
                self.report({"ERROR"}, f"Meshlift: {setup.message}")
                return {"CANCELLED"}
            self.report({"INFO"}, setup.message)
            return {"FINISHED"}
        bpy.app.timers.register(poll, first_interval=POLL_SECONDS)
        self.report({"INFO"}, f"Setting up the engine: {setup.plan.describe()}")
        return {"FINISHED"}


class MESHLIFT_OT_cancel_engine_setup(bpy.types.Operator):
    """Stop setting up the engine; the half-made environment is deleted"""

    bl_idname = "meshlift.cancel_engine_setup"
    bl_label = "Cancel Set-up"
    bl_options = {"REGISTER"}  # noqa: RUF012 (Blender reads a plain set)

    def execute(self, _context: bpy.types.Context) -> set[str]:
        setup = Runtime.setup
        if setup is None or not setup.running:
            self.report({"WARNING"}, "The engine is not being set up")
            return {"CANCELLED"}
        setup.cancel()
        finish(setup)
        redraw_all()
        self.report({"INFO"}, setup.message)
        return {"FINISHED"}


class MESHLIFT_OT_remove_engine(bpy.types.Operator):
    """Delete the engine environment that Set Up Engine made (PyTorch and the engine's packages)"""

    bl_idname = "meshlift.remove_engine"
    bl_label = "Remove Engine"
    bl_options = {"REGISTER"}  # noqa: RUF012 (Blender reads a plain set)

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        return context.window_manager.invoke_confirm(self, event)

    def execute(self, context: bpy.types.Context) -> set[str]:
        if is_running() or scene_job.is_running():
            self.report({"ERROR"}, "Meshlift: wait until the set-up or the reconstruction has ended.")
            return {"CANCELLED"}
        target = preferences.engine_environment()
        try:
            engine_setup.remove_environment(target)
        except UserError as error:
            self.report({"ERROR"}, f"Meshlift: {error}")
            return {"CANCELLED"}
        prefs = preferences.get_preferences(context)
        if prefs is not None and prefs.python_path and Path(bpy.path.abspath(prefs.python_path)).is_relative_to(target):
            prefs.python_path = ""
        preferences.forget_engine_answers()
        self.report({"INFO"}, f"Removed the engine environment {target}")
        return {"FINISHED"}


class MESHLIFT_OT_open_setup_log(bpy.types.Operator):
    """Open the log of the last engine set-up (every command it ran and what it printed)"""

    bl_idname = "meshlift.open_setup_log"
    bl_label = "Open Set-up Log"
    bl_options = {"REGISTER"}  # noqa: RUF012 (Blender reads a plain set)

    def execute(self, _context: bpy.types.Context) -> set[str]:
        log = preferences.setup_log()
        if not log.is_file():
            self.report({"WARNING"}, "There is no set-up log yet")
            return {"CANCELLED"}
        bpy.ops.wm.path_open(filepath=str(log))
        return {"FINISHED"}


CLASSES = (MESHLIFT_OT_setup_engine, MESHLIFT_OT_cancel_engine_setup, MESHLIFT_OT_remove_engine,
           MESHLIFT_OT_open_setup_log)


def shutdown() -> None:
    """Stop a running set-up (the add-on is being disabled)."""
    if bpy.app.timers.is_registered(poll):
        bpy.app.timers.unregister(poll)
    if Runtime.setup is not None and Runtime.setup.running:
        Runtime.setup.cancel()
    Runtime.setup = None
