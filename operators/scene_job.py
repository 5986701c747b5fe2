# SPDX-License-Identifier: GPL-3.0-or-later
"""One reconstruction at a time: start it, step it, cancel it, and what the panel shows.

The same code path serves the modal operator (``step()`` from a timer), headless runs
(``run_blocking()``) and the tests (``start_job()`` + ``step()``). An interactive job (the modal
operator's) renders its cameras one per step, so the interface answers between renders, and
shows the engine's live previews; a blocking one renders them all before it starts the worker.
The worker process is followed through :class:`bridge.worker.WorkerProcess`; everything that
touches ``bpy`` runs in the caller's (main) thread.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bpy

from .. import preferences, properties
from ..bridge.errors import UserError
from ..bridge.objfile import ObjError
from ..bridge.worker_process import Outcome, Progress, WorkerProcess, format_seconds
from ..engine.protocol import RELIEF_COMMAND, TEXTURE_COMMAND, ReconstructJob, safe_name
from . import dataset, result
from .preview import LivePreview


@dataclass
class Status:
    """What the panel shows: ``idle``, ``running``, ``done``, ``error`` or ``cancelled``."""

    state: str = "idle"
    message: str = ""
    lines: list[str] = field(default_factory=list)


STATUS = Status()


class Runtime:
    """The job in progress (module state: one reconstruction at a time, in this Blender process)."""

    active: SceneJob | None = None


def active_job() -> SceneJob | None:
    return Runtime.active


@dataclass
class JobSettings:
    """Everything a job needs besides its source, resolved from the panel and the preferences."""

    method: str
    preset: str
    device: str
    options: dict[str, Any]
    collection: str
    python: str
    preview: bool = False
    light_as_world: bool = False


@dataclass
class SceneJob:
    """A running reconstruction and where its result goes.

    ``renders`` holds the cameras still to render (interactive jobs: one per :meth:`step`); the
    worker starts once they are done. ``preview`` shows the worker's live previews.
    """

    name: str
    scene_name: str
    settings: JobSettings
    worker: WorkerProcess
    temporary: list[Path]
    outcome: Outcome | None = None
    object_name: str | None = None
    # Called as after_build(scene, result_files) once the mesh is in the scene (e.g. to add cameras).
    after_build: Any = None
    renders: dataset.CameraExport | None = None
    preview: LivePreview | None = None
    warnings: list[str] = field(default_factory=list)
    started_at: float = field(default_factory=time.monotonic)
    ended_at: float | None = None
    # Called as build(scene, result_files) -> the object that holds the result; default: a new object.
    build: Any = None
    # What the status says was done to the object.
    action: str = "Added"

    @property
    def running(self) -> bool:
        return self.outcome is None

    @property
    def rendering(self) -> bool:
        return self.renders is not None

    @property
    def progress(self) -> Progress:
        if self.renders is not None:
            return Progress("rendering", self.renders.index, self.renders.total)
        return self.worker.progress

    @property
    def elapsed(self) -> float:
        """Seconds since the job started (renders included), or its whole duration once it ended."""
        return (self.ended_at or time.monotonic()) - self.started_at

    def step(self) -> str:
        """Render the next camera, or take the worker's news (and show its latest preview); when
        the worker has ended, build the result (done), or record the error. Returns the status
        state (``running``, ``done``, ``error``, ``cancelled``)."""
        if self.outcome is not None:
            return STATUS.state
        if self.renders is not None:
            self._render_step()
            return STATUS.state if self.outcome is not None else "running"
        self.worker.poll()
        self._show_preview()
        outcome = self.worker.outcome
        if outcome is None:
            return "running"
        if outcome.status == "done":
            try:
                outcome = self._build(outcome)
            except Exception as error:  # a broken result file: report it, the scene is unchanged
                outcome = Outcome("failed", "import", f"Could not add the result to the scene: {error}", None,
                                  outcome.exit_code)
        self._end(outcome)
        return STATUS.state

    def _render_step(self) -> None:
        renders = self.renders
        assert renders is not None
        try:
            finished = renders.step()
            self.warnings.extend(w for w in renders.warnings if w not in self.warnings)
            if finished:
                self.renders = None
                self.worker.start()
        except UserError as error:
            self._end(Outcome("failed", "render", str(error)))

    def _show_preview(self) -> None:
        event = self.worker.take_preview()
        if event is None:
            return
        if self.preview is None:
            Path(str(event.get("path", ""))).unlink(missing_ok=True)
            return
        try:
            self.preview.show(event)
        except (ObjError, OSError) as error:  # a preview is not worth failing the job for
            self.worker.logs.append(f"preview skipped: {error}")

    def _build(self, outcome: Outcome) -> Outcome:
        scene = bpy.data.scenes.get(self.scene_name)
        if scene is None:
            raise RuntimeError(f"the scene '{self.scene_name}' no longer exists")
        assert outcome.result is not None
        files = outcome.result["files"]
        if self.build is not None:
            obj = self.build(scene, files)
        else:
            obj = result.build_result(scene, files["obj"], self.name, self.settings.collection)
        self.object_name = obj.name
        if self.settings.light_as_world and "environment" in files:
            result.set_world(scene, files["environment"], self.name)
        if self.after_build is not None:
            self.after_build(scene, files)
        return outcome

    def cancel(self) -> None:
        """Stop the renders or the worker (SIGTERM, then SIGKILL); nothing is added to the scene."""
        if self.outcome is not None:
            return
        self.renders = None
        self.worker.cancel()
        self._end(Outcome("cancelled", "cancelled", "Cancelled; the scene was not changed.", None,
                          self.worker.outcome.exit_code if self.worker.outcome else None))

    def _end(self, outcome: Outcome) -> None:
        self.outcome, self.ended_at = outcome, time.monotonic()
        self.renders = None
        if self.preview is not None:
            self.preview.remove()
        if Runtime.active is self:
            Runtime.active = None
        if outcome.status == "done":
            set_status("done", f"{self.action} '{self.object_name}'", [*summary_lines(self, outcome), *self.warnings])
        elif outcome.status == "cancelled":
            set_status("cancelled", outcome.message)
        else:
            set_status("error", outcome.message)
        if not preferences.keep_files():
            for path in self.temporary:
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def set_status(state: str, message: str = "", lines: list[str] | None = None) -> None:
    STATUS.state, STATUS.message, STATUS.lines = state, message, list(lines or [])


def summary_lines(job: SceneJob, outcome: Outcome) -> list[str]:
    report = (outcome.result or {}).get("report", {})
    lines = [f"{job.object_name}: {report.get('mesh', {}).get('faces', '?')} faces, "
             f"texture {report.get('texture', {}).get('size', ['?'])[0]} px",
             f"{report.get('method', job.settings.method)} ({report.get('preset', job.settings.preset)}) on "
             f"{report.get('device', job.settings.device)}, {report.get('views', '?')} views, "
             f"{format_seconds(job.elapsed)}"]
    for key, value in (report.get("metrics") or {}).items():
        lines.append(f"{key.replace('_', ' ')}: {value:.4g}")
    return lines


def is_running() -> bool:
    return Runtime.active is not None and Runtime.active.running


def cancel_active() -> bool:
    """Cancel the running job, if any; returns whether there was one."""
    job = Runtime.active
    if job is None or not job.running:
        return False
    job.cancel()
    return True


def shutdown() -> None:
    """Stop any job (the add-on is being disabled)."""
    cancel_active()
    set_status("idle")


# -- starting ----------------------------------------------------------------------------------


def job_settings(context: bpy.types.Context, extra_options: dict[str, Any] | None = None) -> JobSettings:
    """Resolve the panel settings and the preferences; raises :class:`UserError`."""
    settings = context.scene.meshlift
    python = preferences.engine_python(context)
    known = properties.load_methods()
    try:
        info = properties.find_method(known, settings.method_id)
    except LookupError as error:
        raise UserError(str(error)) from error
    method = info["name"]
    preset = settings.preset_id if settings.preset_id in info["presets"] else info.get("default_preset", "balanced")
    device = preferences.default_device(context) if settings.device == "PREFERENCES" else settings.device
    options: dict[str, Any] = dict(properties.option_overrides(settings))
    if settings.texture_size != "PRESET":
        options["texture_size"] = int(settings.texture_size)
    options.update(extra_options or {})
    known_options = set(info.get("options") or {key for preset in info["presets"].values() for key in preset})
    unknown = sorted(set(options) - known_options)
    if unknown:  # before rendering anything
        raise UserError(f"Unknown option '{unknown[0]}' for {method}. Available: {', '.join(sorted(known_options))}")
    return JobSettings(method, preset, device, options, settings.collection, python, settings.preview,
                       settings.light_as_world)


def stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + f"-{int(time.time() * 1000) % 1000:03d}"


def check_idle() -> None:
    if is_running():
        raise UserError("A reconstruction is already running. Wait for it or cancel it (Esc or the Cancel button) "
                        "before starting another.")


def launch(context: bpy.types.Context, name: str, dataset_path: Path, settings: JobSettings,
           temporary: list[Path], *, interactive: bool = False, renders: dataset.CameraExport | None = None,
           job_fields: dict[str, Any] | None = None, job_type: type[ReconstructJob] = ReconstructJob,
           make_job: Callable[[str], Any] | None = None) -> SceneJob:
    """The job (the active one from now on) whose worker runs a ``job_type`` job on ``dataset_path``
    (or the job ``make_job(out)`` makes for the output folder ``out``, e.g. a relief): started at
    once, or after ``renders`` are done. An ``interactive`` job with ``settings.preview`` asks the
    worker for live previews."""
    cache = preferences.cache_root(context)
    run_id = f"{name}-{stamp()}"
    out = cache / "results" / run_id
    job_file = cache / "jobs" / f"{run_id}.json"
    fields = dict(job_fields or {})
    temporary = [*temporary, job_file, out]
    live = interactive and settings.preview
    if live:
        fields["preview"] = str(cache / "previews" / run_id)
        temporary.append(cache / "previews" / run_id)
    job = make_job(str(out)) if make_job is not None else job_type(
        dataset=str(dataset_path), out=str(out), method=settings.method, preset=settings.preset,
        device=settings.device, options=settings.options, name=name, **fields)
    worker = WorkerProcess(settings.python, job.to_dict(), job_file)
    preview = LivePreview(context.scene.name, settings.collection, name) if live else None
    scene_job = SceneJob(name, context.scene.name, settings, worker, temporary, renders=renders, preview=preview)
    if renders is None:
        try:
            worker.start()
        except UserError:
            for path in temporary:
                shutil.rmtree(path, ignore_errors=True)
            raise
    Runtime.active = scene_job
    doing = {TEXTURE_COMMAND: "Texturing", RELIEF_COMMAND: "Making the relief"}.get(job.command, "Reconstructing")
    set_status("running", f"{doing} '{name}'")
    return scene_job


def start_from_cameras(context: bpy.types.Context, camera_names: list[str] | None = None,
                       extra_options: dict[str, Any] | None = None, log: Any = None,
                       interactive: bool = False) -> SceneJob:
    """Render (or collect) the cameras into a dataset in the cache, then start the worker. An
    ``interactive`` job renders one camera per :meth:`SceneJob.step`; otherwise all are rendered
    here first."""
    check_idle()
    scene = context.scene
    cameras = scene_cameras(context, camera_names)
    dataset.check_cameras(cameras)
    name = source_name_for_cameras(scene, cameras)
    renders = camera_renders(context, cameras, name)
    settings = job_settings(context, extra_options)
    if interactive:
        return launch(context, name, renders.folder, settings, [renders.folder], interactive=True, renders=renders)
    render_all(context, renders, log)
    job = launch(context, name, renders.folder, settings, [renders.folder])
    job.warnings.extend(renders.warnings)
    return job


def scene_cameras(context: bpy.types.Context, camera_names: list[str] | None) -> list[bpy.types.Object]:
    """The named cameras, else the selected ones."""
    return dataset.cameras_by_name(context.scene, camera_names) if camera_names else dataset.selected_cameras(context)


def camera_renders(context: bpy.types.Context, cameras: list[bpy.types.Object], name: str,
                   hidden: tuple[str, ...] = ()) -> dataset.CameraExport:
    """The export of ``cameras`` into a new dataset folder of the cache, nothing rendered yet (with
    the Z and Normal passes when the scene's settings ask for them; the ``hidden`` objects left out)."""
    folder = preferences.cache_root(context) / "datasets" / f"{name}-{stamp()}"
    return dataset.CameraExport(context.scene, context.view_layer, cameras, folder,
                                depth_normals=context.scene.meshlift.depth_normals, hidden=hidden)


def render_all(context: bpy.types.Context, renders: dataset.CameraExport, log: Any = None) -> Path:
    """Every render of ``renders`` at once; its folder is removed again on failure."""
    try:
        return export_with_progress(context, renders, log)
    except Exception:
        shutil.rmtree(renders.folder, ignore_errors=True)
        raise


def start_from_folder(context: bpy.types.Context, folder: str, extra_options: dict[str, Any] | None = None,
                      interactive: bool = False) -> SceneJob:
    """Start the worker on a folder that holds ``transforms*.json``."""
    check_idle()
    path = Path(bpy.path.abspath(folder)) if folder else None
    if path is None or not path.is_dir():
        raise UserError(f"Choose an existing image folder (got '{folder}')." if folder else
                        "Choose the image folder first (a folder with transforms.json and its images).")
    if not list(path.glob("transforms*.json")):
        raise UserError(f"The folder {path} has no transforms.json or transforms_train.json with the camera poses.")
    settings = job_settings(context, extra_options)
    name = source_name(path.name)
    return launch(context, name, path, settings, [], interactive=interactive)


def export_with_progress(context: bpy.types.Context, renders: dataset.CameraExport, log: Any = None) -> Path:
    """All of ``renders`` at once, with Blender's progress cursor (and ``log`` lines)."""
    wm = context.window_manager
    wm.progress_begin(0, renders.total)

    def on_progress(index: int, total: int, camera: str) -> None:
        wm.progress_update(index)
        if log is not None and camera:
            log(f"rendering camera {index + 1}/{total} ({camera})")

    try:
        path = renders.run(on_progress)
    finally:
        wm.progress_end()
    for warning in renders.warnings:
        if log is not None:
            log(warning)
    return path


def source_name(text: str) -> str:
    """``text`` as a name for files and datablocks (see :func:`engine.protocol.safe_name`)."""
    return safe_name(text, "Meshlift")


def source_name_for_cameras(scene: bpy.types.Scene, cameras: list[bpy.types.Object]) -> str:
    """``<common camera name prefix>`` (``Cam`` for ``Cam.001``..), else the scene name."""
    names = [c.name for c in cameras]
    prefix = names[0]
    for name in names[1:]:
        while not name.startswith(prefix):
            prefix = prefix[:-1]
    prefix = prefix.rstrip("0123456789._- ")
    return source_name(f"{scene.name}_{prefix}" if prefix else scene.name)


# -- running without an event loop ---------------------------------------------------------------


def stderr_log(message: str) -> None:
    print(f"Meshlift: {message}", file=sys.stderr, flush=True)


def run_blocking(job: SceneJob, log: Any = stderr_log, interval: float = 0.1) -> Outcome:
    """Step ``job`` until it ends, printing progress (background mode, scripts, tests): every stage
    the worker reported, even one that began and ended between two polls, and the current one's
    progress at least every 3 seconds."""
    logged, last_time = 0, 0.0
    try:
        while job.running:
            job.step()
            stages = job.worker.stages
            for name in stages[logged:-1] if job.running else stages[logged:]:
                log(name)
            now = time.monotonic()
            if job.running and stages and (len(stages) > logged or now - last_time > 3.0):
                log(job.progress.describe())
                last_time = now
            logged = len(stages)
            if job.running:
                time.sleep(interval)
    except KeyboardInterrupt:
        job.cancel()
    assert job.outcome is not None
    return job.outcome


def dump_report(job: SceneJob) -> str:
    """The worker's result report as JSON text (for scripts)."""
    return json.dumps((job.outcome.result or {}).get("report", {}) if job.outcome else {}, indent=2)
