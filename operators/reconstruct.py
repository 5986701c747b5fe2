# SPDX-License-Identifier: GPL-3.0-or-later
"""The operators: reconstruct (modal in the UI, blocking in background mode), export, cancel."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import bpy

from .. import preferences, properties
from ..bridge.errors import UserError
from . import dataset, scene_job

TIMER_SECONDS = 0.2


def redraw_views(context: bpy.types.Context) -> None:
    screen = getattr(context, "screen", None)
    for area in screen.areas if screen else ():
        if area.type == "VIEW_3D":
            area.tag_redraw()


def parse_options(text: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    try:
        options = json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(f"The engine options must be a JSON object, got {text!r}") from error
    if not isinstance(options, dict):
        raise UserError(f"The engine options must be a JSON object, got {text!r}")
    return options


def report_end(op: Any, job: scene_job.SceneJob) -> set[str]:
    """Report how ``job`` ended through ``op.report``; ``FINISHED`` (one undo step) only when
    something was added to the scene."""
    outcome = job.outcome
    assert outcome is not None
    if outcome.status == "done":
        op.report({"INFO"}, " | ".join(scene_job.STATUS.lines) or scene_job.STATUS.message)
        return {"FINISHED"}
    if outcome.status == "cancelled":
        op.report({"WARNING"}, outcome.message)
        return {"CANCELLED"}
    op.report({"ERROR"}, f"Meshlift: {outcome.message}")
    return {"CANCELLED"}


def stop_timer(op: Any, context: bpy.types.Context) -> None:
    timer = getattr(op, "_timer", None)
    if timer is not None:
        context.window_manager.event_timer_remove(timer)
        op._timer = None


def modal_step(op: Any, context: bpy.types.Context, event_type: str, event_value: str = "PRESS") -> set[str]:
    """The body of ``modal()``: Esc cancels; each timer tick renders one camera or polls the worker
    (never waits for it) and shows its latest preview; when the job has ended, the timer goes and
    the result is reported. Other events pass through, so Blender stays usable meanwhile."""
    job: scene_job.SceneJob = op._job
    if event_type == "ESC" and event_value == "PRESS" and job.running:
        job.cancel()
    elif event_type == "TIMER" and job.running:
        job.step()
        reported = getattr(op, "_warned", 0)
        for warning in job.warnings[reported:]:
            op.report({"WARNING"}, f"Meshlift: {warning}")
        op._warned = len(job.warnings)
        redraw_views(context)
    if job.running:
        return {"PASS_THROUGH"}
    stop_timer(op, context)
    redraw_views(context)
    return report_end(op, job)


def waiting_step(op: Any, context: bpy.types.Context, event_type: str, event_value: str = "PRESS") -> set[str]:
    """The body of ``modal()`` before the job exists: it waits, without blocking, for the engine's
    method list (asked for when the engine was chosen, it takes seconds: torch is imported), then
    starts the job (``op.start``) on a timer tick. Esc stops waiting."""
    if event_type == "ESC" and event_value == "PRESS":
        stop_timer(op, context)
        op.report({"WARNING"}, "Cancelled before the job started; the scene was not changed.")
        return {"CANCELLED"}
    if event_type != "TIMER" or properties.methods_pending():
        return {"PASS_THROUGH"}
    try:
        op._job = op.start(context, True)
    except UserError as error:
        stop_timer(op, context)
        if not scene_job.is_running():
            scene_job.set_status("error", str(error))
        op.report({"ERROR"}, f"Meshlift: {error}")
        return {"CANCELLED"}
    redraw_views(context)
    return {"PASS_THROUGH"}


class ReconstructBase:
    """Shared by both reconstruct operators: ``start()`` makes the job, the rest is common."""

    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 (Blender reads a plain set)

    options: bpy.props.StringProperty(
        name="Engine Options", description='Extra engine options as JSON, e.g. {"resolution": 96, "faces": 4000}',
        default="", options={"HIDDEN", "SKIP_SAVE"},
    )

    def start(self, context: bpy.types.Context, interactive: bool) -> scene_job.SceneJob:
        """The job; ``interactive``: followed by this modal operator (renders one per tick, live previews)."""
        raise NotImplementedError

    def run(self, context: bpy.types.Context, modal: bool) -> set[str]:
        if modal and properties.methods_pending():  # start on a later tick (waiting_step), not frozen now
            self._job = None
            self.report({"INFO"}, "Meshlift: waiting for the engine to list its methods...")
            self._timer = context.window_manager.event_timer_add(TIMER_SECONDS, window=context.window)
            context.window_manager.modal_handler_add(self)
            return {"RUNNING_MODAL"}
        try:
            job = self.start(context, modal)
        except UserError as error:
            if not scene_job.is_running():  # a refused second start leaves the running job's status alone
                scene_job.set_status("error", str(error))
            self.report({"ERROR"}, f"Meshlift: {error}")
            return {"CANCELLED"}
        if not modal:
            scene_job.run_blocking(job)
            return report_end(self, job)
        self._job = job
        self._timer = context.window_manager.event_timer_add(TIMER_SECONDS, window=context.window)
        context.window_manager.modal_handler_add(self)
        redraw_views(context)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        return self.run(context, modal=False)

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if self._job is None:
            return waiting_step(self, context, event.type, event.value)
        return modal_step(self, context, event.type, event.value)


class FromCameras(ReconstructBase):
    """Operators whose source is the scene's cameras: ``cameras`` names them (default: the selected ones)."""

    cameras: bpy.props.StringProperty(
        name="Cameras", description="Camera names separated by commas (default: the selected cameras)",
        default="", options={"HIDDEN", "SKIP_SAVE"},
    )

    def camera_names(self) -> list[str] | None:
        return [n.strip() for n in self.cameras.split(",") if n.strip()] or None

    @staticmethod
    def log() -> Any:
        """Where the camera export reports each render: stderr in background mode, nowhere in the UI."""
        return scene_job.stderr_log if bpy.app.background else None

    def invoke(self, context: bpy.types.Context, _event: bpy.types.Event) -> set[str]:
        return self.run(context, modal=not bpy.app.background)


class MESHLIFT_OT_reconstruct_cameras(FromCameras, bpy.types.Operator):
    """Reconstruct a textured mesh from the selected cameras"""

    bl_description = ("Render the selected cameras with the scene's render settings (or use their background "
                      "images), then reconstruct a textured mesh from them")
    bl_idname = "meshlift.reconstruct_cameras"
    bl_label = "Reconstruct from Selected Cameras"

    def start(self, context: bpy.types.Context, interactive: bool) -> scene_job.SceneJob:
        return scene_job.start_from_cameras(context, self.camera_names(), parse_options(self.options), log=self.log(),
                                            interactive=interactive)


class MESHLIFT_OT_reconstruct_folder(ReconstructBase, bpy.types.Operator):
    """Reconstruct a textured mesh from a folder of posed images (transforms.json or transforms_train.json)"""

    bl_idname = "meshlift.reconstruct_folder"
    bl_label = "Reconstruct from Image Folder"

    directory: bpy.props.StringProperty(name="Folder", subtype="DIR_PATH", options={"SKIP_SAVE"})
    filter_folder: bpy.props.BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})

    def start(self, context: bpy.types.Context, interactive: bool) -> scene_job.SceneJob:
        folder = self.directory or context.scene.meshlift.folder
        return scene_job.start_from_folder(context, folder, parse_options(self.options), interactive)

    def invoke(self, context: bpy.types.Context, _event: bpy.types.Event) -> set[str]:
        if not self.directory and not context.scene.meshlift.folder and not bpy.app.background:
            context.window_manager.fileselect_add(self)  # execute() follows, and starts the modal job
            return {"RUNNING_MODAL"}
        return self.run(context, modal=not bpy.app.background)

    def execute(self, context: bpy.types.Context) -> set[str]:
        return self.run(context, modal=not bpy.app.background and context.window is not None)


class MESHLIFT_OT_export_cameras(bpy.types.Operator):
    """Write the selected cameras as a posed dataset"""

    bl_description = ("Render the selected cameras (or copy their background images) into a dataset folder "
                      "(transforms.json and RGBA images) without reconstructing")
    bl_idname = "meshlift.export_cameras"
    bl_label = "Export Cameras as Dataset"
    bl_options = {"REGISTER"}  # noqa: RUF012 (Blender reads a plain set)

    directory: bpy.props.StringProperty(
        name="Folder", description="Where to write the dataset (default: a new folder in the Meshlift cache)",
        subtype="DIR_PATH", options={"SKIP_SAVE"},
    )
    filter_folder: bpy.props.BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})
    cameras: bpy.props.StringProperty(name="Cameras", description="Camera names separated by commas",
                                      default="", options={"HIDDEN", "SKIP_SAVE"})

    def invoke(self, context: bpy.types.Context, _event: bpy.types.Event) -> set[str]:
        if bpy.app.background:
            return self.execute(context)
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        scene = context.scene
        names = [n.strip() for n in self.cameras.split(",") if n.strip()]
        try:
            cameras = dataset.cameras_by_name(scene, names) if names else dataset.selected_cameras(context)
            dataset.check_cameras(cameras)
            if self.directory:
                folder = Path(bpy.path.abspath(self.directory))
            else:
                name = scene_job.source_name_for_cameras(scene, cameras)
                folder = preferences.cache_root(context) / "datasets" / f"{name}-{scene_job.stamp()}"
            if (folder / "transforms.json").exists():
                raise UserError(f"{folder} already holds a transforms.json; choose an empty folder.")
            log = scene_job.stderr_log if bpy.app.background else None
            renders = dataset.CameraExport(scene, context.view_layer, cameras, folder,
                                             depth_normals=scene.meshlift.depth_normals)
            path = scene_job.export_with_progress(context, renders, log)
        except UserError as error:
            self.report({"ERROR"}, f"Meshlift: {error}")
            return {"CANCELLED"}
        for warning in renders.warnings:
            self.report({"WARNING"}, f"Meshlift: {warning}")
        self.report({"INFO"}, f"Wrote {len(cameras)} views to {path}")
        return {"FINISHED"}


class MESHLIFT_OT_cancel(bpy.types.Operator):
    """Stop the running reconstruction; nothing is added to the scene"""

    bl_idname = "meshlift.cancel"
    bl_label = "Cancel Reconstruction"
    bl_options = {"REGISTER"}  # noqa: RUF012 (Blender reads a plain set)

    def execute(self, context: bpy.types.Context) -> set[str]:
        if not scene_job.cancel_active():
            self.report({"WARNING"}, "No reconstruction is running")
            return {"CANCELLED"}
        redraw_views(context)
        self.report({"INFO"}, "Reconstruction cancelled; the scene was not changed")
        return {"FINISHED"}


CLASSES = (MESHLIFT_OT_reconstruct_cameras, MESHLIFT_OT_reconstruct_folder, MESHLIFT_OT_export_cameras,
           MESHLIFT_OT_cancel)
