"""The interactive job (the modal operator's), driven by timer ticks as Blender would: one camera
render per tick with Esc between renders, render settings restored, render failures and builds
without OpenImageDenoise in plain words, and the live preview object (shown, replaced in place,
removed at the end or on cancel)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.addon.blender import FAST_OPTIONS, build_scene, select_cameras, snapshot, submodule

pytestmark = pytest.mark.usefixtures("addon", "empty_scene", "prefs")
TINY_DMTET = {"resolution": 20, "iterations": 60, "refine_iterations": 5, "faces": 2000, "texture_size": 128}


def fake_operator(job):
    reports: list[tuple[set, str]] = []
    return SimpleNamespace(_job=job, _timer=None, report=lambda kinds, text: reports.append((kinds, text))), reports


def tick(operator, event_type: str = "TIMER", value: str = "NOTHING") -> set[str]:
    import bpy

    return bpy.types.MESHLIFT_OT_reconstruct_cameras.modal(operator, bpy.context,
                                                          SimpleNamespace(type=event_type, value=value))


def test_cameras_render_one_per_tick_then_the_worker_runs():
    import bpy

    build_scene(bpy.context.scene, cameras=12, size=48)
    select_cameras(bpy.context)
    submodule("properties").load_methods()
    before = snapshot()
    scene_job = submodule("operators.scene_job")
    job = scene_job.start_from_cameras(bpy.context, extra_options=FAST_OPTIONS, interactive=True)
    images = job.renders.folder / "images"
    assert job.rendering and job.worker.pid is None and scene_job.is_running()
    operator, reports = fake_operator(job)
    seen = []
    while job.rendering:
        seen.append(job.progress.describe())
        assert tick(operator) == {"PASS_THROUGH"}
        assert snapshot()["render"] == before["render"]  # restored after every render, between the ticks too
        rendered = len(list(images.glob("*.png"))) if images.is_dir() else 0
        assert rendered == min(len(seen), 12)  # one camera per tick
    assert seen == [f"rendering {i}/12" for i in range(13)]
    transforms = json.loads((Path(job.worker.job["dataset"]) / "transforms.json").read_text())
    assert [frame["camera"] for frame in transforms["frames"]] == [f"Cam.{i:03d}" for i in range(12)]
    assert job.worker.pid is not None
    deadline = time.monotonic() + 120
    while (result := tick(operator)) == {"PASS_THROUGH"}:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert result == {"FINISHED"}, reports
    assert "Scene_Cam" in bpy.data.objects and snapshot()["render"] == before["render"]


def test_while_the_engine_lists_its_methods_the_operator_waits_without_blocking(monkeypatch):
    """Started while the engine is still being asked for its methods (just after Set Up Engine or a
    new Engine Python: its first start imports torch), the modal operator returns at once and
    starts the job on the first tick after the answer; Esc meanwhile starts nothing."""
    import bpy

    build_scene(bpy.context.scene, cameras=12, size=32)
    select_cameras(bpy.context)
    properties, scene_job = submodule("properties"), submodule("operators.scene_job")
    properties.load_methods()
    pending = [True]
    monkeypatch.setattr(properties, "methods_pending", lambda: pending[0])
    started: list[bool] = []

    def start(context, interactive):
        started.append(interactive)
        return scene_job.start_from_cameras(context, extra_options=FAST_OPTIONS, interactive=interactive)

    for stop_with_esc in (True, False):
        operator, reports = fake_operator(None)
        operator.start = start
        pending[0] = True
        assert tick(operator) == {"PASS_THROUGH"} and operator._job is None and not started
        if stop_with_esc:
            assert tick(operator, "ESC", "PRESS") == {"CANCELLED"}
            assert not started and not scene_job.is_running() and reports[-1][0] == {"WARNING"}
            continue
        pending[0] = False
        assert tick(operator, "MOUSEMOVE") == {"PASS_THROUGH"} and not started  # only a timer tick starts it
        assert tick(operator) == {"PASS_THROUGH"} and started == [True]
        job = operator._job
        assert job is scene_job.active_job() and job.rendering and job.renders.index == 0
        assert tick(operator, "ESC", "PRESS") == {"CANCELLED"} and not scene_job.is_running()


def test_esc_between_renders_stops_before_the_worker_starts():
    import bpy

    build_scene(bpy.context.scene, cameras=12, size=32)
    select_cameras(bpy.context)
    before = snapshot()
    job = submodule("operators.scene_job").start_from_cameras(bpy.context, extra_options=FAST_OPTIONS,
                                                               interactive=True)
    operator, reports = fake_operator(job)
    tick(operator)
    tick(operator)
    assert job.progress.describe() == "rendering 2/12"
    assert tick(operator, "ESC", "PRESS") == {"CANCELLED"}
    assert reports == [({"WARNING"}, "Cancelled; the scene was not changed.")]
    assert job.worker.pid is None and not job.renders and not Path(job.worker.job["dataset"]).exists()
    assert snapshot() == before


def test_a_failed_render_is_a_plain_message(monkeypatch):
    import bpy

    dataset = submodule("operators.dataset")
    build_scene(bpy.context.scene, cameras=12, size=32)
    select_cameras(bpy.context)

    def fail(_scene):
        raise RuntimeError("Error: Failed to denoise, build has no OpenImageDenoise support\n")

    monkeypatch.setattr(dataset, "render_still", fail)
    before = snapshot()
    with pytest.raises(RuntimeError) as caught:
        bpy.ops.meshlift.reconstruct_cameras()
    message = str(caught.value)
    assert "Rendering camera 'Cam.000' failed: Failed to denoise, build has no OpenImageDenoise support." in message
    assert "Traceback" not in message and snapshot() == before
    job = submodule("operators.scene_job").start_from_cameras(bpy.context, interactive=True)
    operator, reports = fake_operator(job)
    assert tick(operator) == {"CANCELLED"} and reports[-1][0] == {"ERROR"} and "Rendering camera" in reports[-1][1]
    assert snapshot() == before and not Path(job.worker.job["dataset"]).exists()


def test_without_openimagedenoise_the_renders_are_not_denoised(monkeypatch, tmp_path):
    import bpy

    dataset = submodule("operators.dataset")
    scene = bpy.context.scene
    build_scene(scene, cameras=12, size=32)
    select_cameras(bpy.context, "Cam.00")
    scene.cycles.use_denoising = True
    monkeypatch.setattr(dataset, "oidn_available", lambda: False)
    during = []

    def record(render_scene, *_args):
        during.append(render_scene.cycles.use_denoising)

    bpy.app.handlers.render_pre.append(record)
    try:
        renders = dataset.CameraExport(scene, bpy.context.view_layer, dataset.selected_cameras(bpy.context),
                                       tmp_path / "views")
        renders.run()
    finally:
        bpy.app.handlers.render_pre.remove(record)
    assert during == [False] * 10 and scene.cycles.use_denoising  # off for the renders, then restored
    assert renders.warnings == [dataset.NO_DENOISER]
    assert len(json.loads((tmp_path / "views" / "transforms.json").read_text())["frames"]) == 10


@pytest.fixture(scope="module")
def views(request, tmp_path_factory) -> Path:
    """A small dataset of the test scene, for worker runs that render nothing."""
    request.getfixturevalue("addon")
    import bpy

    bpy.ops.wm.read_homefile(use_empty=True)
    build_scene(bpy.context.scene, cameras=12, size=64)
    select_cameras(bpy.context)
    folder = tmp_path_factory.mktemp("views") / "monkey"
    assert bpy.ops.meshlift.export_cameras(directory=str(folder)) == {"FINISHED"}
    return folder


def run_with_preview(folder: Path, stop_after_preview: bool):
    """A DMTet job with the live preview, ticked until it ends (or, with ``stop_after_preview``,
    cancelled with Esc once a preview is shown). Returns the job, the operator's result and the
    preview objects seen."""
    import bpy

    settings = bpy.context.scene.meshlift
    submodule("properties").load_methods()
    settings.method_id, settings.preset_id, settings.preview = "dmtet", "fast", True
    preview = submodule("operators.preview")
    job = submodule("operators.scene_job").start_from_folder(bpy.context, str(folder), TINY_DMTET, interactive=True)
    assert job.worker.job["preview"] and job.preview is not None
    operator, _reports = fake_operator(job)
    seen: dict[str, int] = {}
    deadline = time.monotonic() + 300
    while (result := tick(operator)) == {"PASS_THROUGH"}:
        for obj in bpy.data.objects:
            if preview.MARK in obj:
                assert obj.hide_select and obj.hide_render and [c.name for c in obj.users_collection] == ["Meshlift"]
                assert len(obj.data.polygons) > 100
                seen[obj.name] = job.preview.shown
        if stop_after_preview and seen:
            result = tick(operator, "ESC", "PRESS")
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return job, result, seen


def test_live_preview_is_shown_in_place_and_removed_at_the_end(views):
    import bpy

    before = snapshot()
    job, result, seen = run_with_preview(views, stop_after_preview=False)
    assert result == {"FINISHED"}
    assert list(seen) == ["monkey (preview)"]  # one object, its mesh replaced in place
    after = snapshot()
    new = {kind: set(after["blocks"][kind]) - set(before["blocks"][kind]) for kind in after["blocks"]}
    assert new["objects"] == {"monkey"} and new["meshes"] == {"monkey"} and new["collections"] == {"Meshlift"}
    assert not Path(job.worker.job["preview"]).exists()  # the preview files are gone with the job
    assert bpy.data.objects["monkey"].users_collection[0].name == "Meshlift"


def test_cancelled_job_takes_its_preview_and_collection_away(views):
    before = snapshot()
    job, result, seen = run_with_preview(views, stop_after_preview=True)
    assert seen and result == {"CANCELLED"}
    assert snapshot() == before  # no preview, no "Meshlift" collection it had made
    assert not Path(job.worker.job["preview"]).exists()


def test_stray_previews_go_after_undo_or_load():
    """A preview caught by an undo step or a saved file comes back without its job: removed."""
    import bpy

    preview = submodule("operators.preview")
    stray = bpy.data.objects.new("x (preview)", bpy.data.meshes.new("x (preview)"))
    stray[preview.MARK] = True
    bpy.context.scene.collection.objects.link(stray)
    keep = bpy.data.objects.new("mine", None)
    bpy.context.scene.collection.objects.link(keep)
    submodule("operators").remove_stray_previews()
    assert "x (preview)" not in bpy.data.objects and "x (preview)" not in bpy.data.meshes
    assert "mine" in bpy.data.objects
