"""The sidebar panel draws in every state (idle, running, done, error, cancelled) and the
preferences draw with and without a check result. ``UILayout`` cannot be made headless, so the
draw functions get a layout that records the calls."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.addon_support import (  # noqa: F401 (fixtures)
    addon,
    addon_prefs,
    build_scene,
    empty_scene,
    fake_panel,
    prefs,
    select_cameras,
    submodule,
)

pytestmark = pytest.mark.usefixtures("addon", "empty_scene", "prefs")


def draw_panel() -> object:
    import bpy

    panel = fake_panel()
    bpy.types.MESHLIFT_PT_main.draw(panel, bpy.context)
    return panel.layout


def operators(layout) -> list[str]:
    return [args[0] for name, args, _ in layout.calls if name == "operator"]


def test_panel_location():
    import bpy

    panel = bpy.types.MESHLIFT_PT_main
    assert (panel.bl_space_type, panel.bl_region_type, panel.bl_category) == ("VIEW_3D", "UI", "Meshlift")


def test_panel_idle_for_both_sources():
    import bpy

    build_scene(bpy.context.scene, cameras=16, size=32)
    select_cameras(bpy.context)
    submodule("properties").load_methods()
    layout = draw_panel()
    props = [args[1] for name, args, _ in layout.calls if name == "prop"]
    assert props == ["source", "method", "preset", "device", "texture_size", "collection"]
    assert "16 cameras selected" in layout.texts()
    assert operators(layout) == ["meshlift.reconstruct_cameras", "meshlift.export_cameras"]
    assert not any(name == "progress" for name in layout.names())
    bpy.context.scene.meshlift.source = "FOLDER"
    layout = draw_panel()
    assert "folder" in [args[1] for name, args, _ in layout.calls if name == "prop"]
    assert operators(layout) == ["meshlift.reconstruct_folder", "meshlift.reconstruct_photos"]


def test_panel_while_running(tmp_path):
    import bpy

    jobs = submodule("operators.jobs")
    worker_module = submodule("bridge.worker")
    worker = worker_module.WorkerProcess(sys.executable, {}, tmp_path / "job.json")
    worker.progress = worker_module.Progress("carving", 12, 48, 30.0)
    settings = jobs.JobSettings("hull", "fast", "cpu", {}, "Meshlift", sys.executable)
    job = jobs.SceneJob("thing", bpy.context.scene.name, settings, worker, [])
    jobs.Runtime.active = job
    try:
        layout = draw_panel()
    finally:
        jobs.Runtime.active = None
    (progress,) = [kwargs for name, _, kwargs in layout.calls if name == "progress"]
    assert progress["factor"] == pytest.approx(0.25) and progress["text"] == "carving 12/48, 30 s left"
    assert operators(layout) == ["meshlift.cancel"]  # no second Reconstruct while one runs
    assert ("set", ("enabled", False), {}) in layout.calls  # settings are read-only meanwhile


def test_panel_done_error_cancelled():
    jobs = submodule("operators.jobs")
    jobs.set_status("done", "Added 'Scene_Cam'", ["Scene_Cam: 4000 faces, texture 256 px",
                                                   "hull (fast) on cpu, 16 views, 19 s", "chamfer: 0.0123"])
    texts = draw_panel().texts()
    assert "Added 'Scene_Cam'" in texts and "chamfer: 0.0123" in texts and "hull (fast) on cpu, 16 views, 19 s" in texts
    message = ("The engine process was killed by signal SIGKILL before it finished. Its last message: loading "
               "images took longer than expected on this machine.")
    jobs.set_status("error", message)
    layout = draw_panel()
    error_lines = [kwargs["text"] for name, _, kwargs in layout.calls if name == "label" and kwargs.get("icon")
                   in ("ERROR", "BLANK1")]
    assert " ".join(error_lines) == message and len(error_lines) > 1  # wrapped, nothing lost
    jobs.set_status("cancelled", "Cancelled; the scene was not changed.")
    assert "Cancelled; the scene was not changed." in draw_panel().texts()


def test_panel_says_when_the_engine_is_unavailable(tmp_path):
    from tests.addon_support import python_without_torch

    addon_prefs().python_path = str(python_without_torch(tmp_path))
    interpreter = submodule("bridge.interpreter")
    interpreter.CATALOG.reset()
    with pytest.raises(interpreter.EngineUnavailable):
        submodule("properties").load_methods()
    layout = draw_panel()
    assert "meshlift.check_python" in operators(layout)
    assert any("cannot import torch" in text for text in layout.texts())


def test_preferences_draw_and_check():
    import bpy

    preferences = addon_prefs()
    layout = fake_panel().layout
    type(preferences).draw(SimpleNamespace(layout=layout), bpy.context)
    assert [args[1] for name, args, _ in layout.calls if name == "prop"] == ["python_path", "device", "cache_dir",
                                                                           "keep_files"]
    assert bpy.ops.meshlift.check_python() == {"FINISHED"}
    result = submodule("preferences").CHECK_RESULT
    assert result["ok"] and result["python"] == sys.executable and result["text"].startswith("torch ")
    layout = fake_panel().layout
    type(preferences).draw(SimpleNamespace(layout=layout), bpy.context)
    assert sys.executable in layout.texts() and any(t.startswith("torch ") for t in layout.texts())
    assert any(Path(t.split(": ", 1)[-1]).name == "cache" for t in layout.texts() if t.startswith("Cache in use"))
