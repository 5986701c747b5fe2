"""Bad input gives one clear message (an operator error report, which ``bpy.ops`` raises as a
RuntimeError headless) and leaves the scene unchanged."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.addon.blender import FAST_OPTIONS, addon_prefs, build_scene, look_at, select_cameras, snapshot, submodule
from tests.support import python_that_crashes, python_without_torch, write_disc_dataset

pytestmark = pytest.mark.usefixtures("addon", "empty_scene", "prefs")


def expect_error(operator, fragment: str, running: bool = False, **kwargs) -> RuntimeError:
    """Run ``operator`` and check it fails with ``fragment`` in its report, changing nothing."""
    before = snapshot()
    with pytest.raises(RuntimeError, match=fragment) as caught:
        operator(**kwargs)
    assert "Traceback" not in str(caught.value)
    assert snapshot() == before
    scene_job = submodule("operators.scene_job")
    assert scene_job.is_running() == running
    return caught.value


def cameras_only_scene(count: int = 4) -> None:
    import bpy

    scene = bpy.context.scene
    for index in range(count):
        camera = bpy.data.objects.new(f"Cam.{index:03d}", bpy.data.cameras.new(f"Cam.{index:03d}"))
        scene.collection.objects.link(camera)
        camera.location = (5 * (index % 2) - 2.5, 5 * (index // 2) - 2.5, 1)
        look_at(camera, (0, 0, 0))
    bpy.context.view_layer.update()


def test_no_cameras_selected():
    import bpy

    build_scene(bpy.context.scene, cameras=16, size=32)
    for obj in bpy.context.scene.objects:
        obj.select_set(obj.name == "Monkey")
    expect_error(bpy.ops.meshlift.reconstruct_cameras, "No cameras selected")
    expect_error(bpy.ops.meshlift.export_cameras, "No cameras selected")
    assert submodule("operators.scene_job").STATUS.state == "error"
    select_cameras(bpy.context, "Cam.001")
    expect_error(bpy.ops.meshlift.reconstruct_cameras, "Only 1 camera")


def test_cameras_without_images_and_nothing_to_render():
    import bpy

    cameras_only_scene()
    select_cameras(bpy.context)
    expect_error(bpy.ops.meshlift.reconstruct_cameras, "no background image and the scene has nothing visible")
    expect_error(bpy.ops.meshlift.export_cameras, "nothing visible to render")


def test_engine_python_without_torch(tmp_path):
    import bpy

    build_scene(bpy.context.scene, cameras=16, size=32)
    select_cameras(bpy.context)
    addon_prefs().python_path = str(python_without_torch(tmp_path))
    error = expect_error(bpy.ops.meshlift.reconstruct_cameras, "cannot import torch")
    assert "Engine Python" in str(error) and "README" in str(error)
    with pytest.raises(RuntimeError, match="cannot import torch"):
        bpy.ops.meshlift.check_python()
    assert submodule("preferences").CHECK_RESULT["ok"] is False
    addon_prefs().python_path = str(tmp_path / "does-not-exist")
    expect_error(bpy.ops.meshlift.reconstruct_cameras, "does not exist or is not executable")


def test_worker_that_crashes(tmp_path):
    import bpy

    dataset = write_disc_dataset(tmp_path / "discs", count=6)
    addon_prefs().python_path = str(python_that_crashes(tmp_path))
    error = expect_error(bpy.ops.meshlift.reconstruct_folder, "killed by signal SIGSEGV", directory=str(dataset))
    assert "Segmentation fault (simulated)" in str(error)
    status = submodule("operators.scene_job").STATUS
    assert status.state == "error" and "killed by signal SIGSEGV" in status.message


def test_worker_that_is_killed(tmp_path):
    import bpy

    dataset = write_disc_dataset(tmp_path / "discs", count=6)
    scene_job = submodule("operators.scene_job")
    before = snapshot()
    job = scene_job.start_from_folder(bpy.context, str(dataset), FAST_OPTIONS)
    os.kill(job.worker.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while job.running and time.monotonic() < deadline:
        job.step()
        time.sleep(0.05)
    assert job.outcome.status == "failed" and "killed by signal SIGKILL" in job.outcome.message
    assert scene_job.STATUS.state == "error" and snapshot() == before


def test_second_reconstruct_while_one_runs(tmp_path):
    import bpy

    dataset = write_disc_dataset(tmp_path / "discs", count=6)
    scene_job = submodule("operators.scene_job")
    build_scene(bpy.context.scene, cameras=16, size=32)
    select_cameras(bpy.context)
    job = scene_job.start_from_folder(bpy.context, str(dataset), {**FAST_OPTIONS, "resolution": 256})
    try:
        expect_error(bpy.ops.meshlift.reconstruct_folder, "already running", running=True, directory=str(dataset))
        expect_error(bpy.ops.meshlift.reconstruct_cameras, "already running", running=True)
        assert scene_job.active_job() is job and job.running  # the first job goes on
        assert scene_job.STATUS.state == "running"
    finally:
        job.cancel()


def test_bad_folders_and_options(tmp_path):
    import bpy

    expect_error(bpy.ops.meshlift.reconstruct_folder, "Choose the image folder")
    expect_error(bpy.ops.meshlift.reconstruct_folder, "Choose an existing image folder",
                 directory=str(tmp_path / "missing"))
    (tmp_path / "photos").mkdir()
    expect_error(bpy.ops.meshlift.reconstruct_folder, "has no transforms.json", directory=str(tmp_path / "photos"))
    dataset = write_disc_dataset(tmp_path / "discs", count=6)
    expect_error(bpy.ops.meshlift.reconstruct_folder, "must be a JSON object", directory=str(dataset),
                 options="resolution=3")


def test_engine_rejects_input_in_plain_words(tmp_path):
    """An error from the engine itself (here: too few views) reaches the user as its message."""
    import bpy

    dataset = write_disc_dataset(tmp_path / "discs", count=2)
    error = expect_error(bpy.ops.meshlift.reconstruct_folder, "at least 3 are needed", directory=str(dataset))
    assert "Internal error" not in str(error)
    assert not any(Path(submodule("preferences").cache_root(), "results").glob("discs-*"))


def test_loading_another_file_stops_the_job(tmp_path):
    import bpy

    dataset = write_disc_dataset(tmp_path / "discs", count=6)
    scene_job = submodule("operators.scene_job")
    job = scene_job.start_from_folder(bpy.context, str(dataset), {**FAST_OPTIONS, "resolution": 256})
    bpy.ops.wm.read_homefile(use_empty=True)  # the modal handler goes with the old file
    assert not scene_job.is_running() and job.outcome.status == "cancelled"
    assert job.worker.outcome is not None and job.worker.outcome.exit_code is not None
