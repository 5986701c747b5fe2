"""The sidebar panel draws in every state (idle, running, done, error, cancelled) and the
preferences draw with and without a check result. ``UILayout`` cannot be made headless, so the
draw functions get a layout that records the calls."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.addon.blender import addon_prefs, build_scene, fake_panel, select_cameras, submodule
from tests.support import python_without_torch

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
    assert props == ["source", "depth_normals", "method", "preset", "device", "texture_size", "preview",
                     "collection", "light_as_world"]
    assert "16 cameras selected" in layout.texts()
    assert operators(layout) == ["meshlift.reconstruct_cameras", "meshlift.texture_selected", "meshlift.export_cameras"]
    assert not any(name == "progress" for name in layout.names())
    bpy.context.scene.meshlift.source = "FOLDER"
    layout = draw_panel()
    assert "folder" in [args[1] for name, args, _ in layout.calls if name == "prop"]
    assert operators(layout) == ["meshlift.reconstruct_folder", "meshlift.reconstruct_photos", "meshlift.relief_image"]


def test_panel_while_running(tmp_path):
    import bpy

    scene_job = submodule("operators.scene_job")
    worker_module = submodule("bridge.worker_process")
    worker = worker_module.WorkerProcess(sys.executable, {}, tmp_path / "job.json")
    worker.progress = worker_module.Progress("carving", 12, 48, 30.0)
    settings = scene_job.JobSettings("hull", "fast", "cpu", {}, "Meshlift", sys.executable)
    job = scene_job.SceneJob("thing", bpy.context.scene.name, settings, worker, [])
    scene_job.Runtime.active = job
    try:
        layout = draw_panel()
    finally:
        scene_job.Runtime.active = None
    (progress,) = [kwargs for name, _, kwargs in layout.calls if name == "progress"]
    assert progress["factor"] == pytest.approx(0.25) and progress["text"] == "carving 12/48, 30 s left"
    assert operators(layout) == ["meshlift.cancel"]  # no second Reconstruct while one runs
    assert ("set", ("enabled", False), {}) in layout.calls  # settings are read-only meanwhile


def test_panel_done_error_cancelled():
    scene_job = submodule("operators.scene_job")
    scene_job.set_status("done", "Added 'Scene_Cam'", ["Scene_Cam: 4000 faces, texture 256 px",
                                                   "hull (fast) on cpu, 16 views, 19 s", "chamfer: 0.0123"])
    texts = draw_panel().texts()
    assert "Added 'Scene_Cam'" in texts and "chamfer: 0.0123" in texts
    shown = " ".join(texts)  # lines longer than the panel is wide (300 px here) wrap
    assert "Scene_Cam: 4000 faces, texture 256 px" in shown and "hull (fast) on cpu, 16 views, 19 s" in shown
    message = ("The engine process was killed by signal SIGKILL before it finished. Its last message: loading "
               "images took longer than expected on this machine.")
    scene_job.set_status("error", message)
    layout = draw_panel()
    error_lines = [kwargs["text"] for name, _, kwargs in layout.calls if name == "label" and kwargs.get("icon")
                   in ("ERROR", "BLANK1")]
    assert " ".join(error_lines) == message and len(error_lines) > 1  # wrapped, nothing lost
    scene_job.set_status("cancelled", "Cancelled; the scene was not changed.")
    assert "Cancelled; the scene was not changed." in " ".join(draw_panel().texts())


def test_panel_says_when_the_engine_is_unavailable(tmp_path):

    addon_prefs().python_path = str(python_without_torch(tmp_path))
    interpreter = submodule("bridge.interpreter")
    interpreter.CATALOG.reset()
    with pytest.raises(submodule("bridge.errors").UserError):
        submodule("properties").load_methods()
    layout = draw_panel()
    assert operators(layout)[:2] == ["meshlift.setup_engine", "meshlift.check_python"]  # the way out, in the panel
    assert "cannot import torch" in " ".join(layout.texts())  # (wrapped to the panel's width)


class PreferencesView:
    """The preferences as ``draw()`` sees them, with a recording layout."""

    def __init__(self, preferences, layout) -> None:
        self.layout, self._preferences = layout, preferences

    def __getattr__(self, name: str):
        return getattr(self._preferences, name)


def test_preferences_draw_and_check():
    import bpy

    preferences = addon_prefs()
    layout = fake_panel().layout
    type(preferences).draw(PreferencesView(preferences, layout), bpy.context)
    assert [args[1] for name, args, _ in layout.calls if name == "prop"] == [
        "show_setup_options", "python_path", "device", "cache_dir", "keep_files"]
    assert "meshlift.setup_engine" in operators(layout)  # no engine environment in this profile
    assert bpy.ops.meshlift.check_python() == {"FINISHED"}
    result = submodule("preferences").CHECK_RESULT
    assert result["ok"] and result["python"] == sys.executable and result["text"].startswith("torch ")
    layout = fake_panel().layout
    type(preferences).draw(PreferencesView(preferences, layout), bpy.context)
    assert sys.executable in layout.texts() and any(t.startswith("torch ") for t in layout.texts())
    assert any(Path(t.split(": ", 1)[-1]).name == "cache" for t in layout.texts() if t.startswith("Cache in use"))


def test_engine_option_overrides_show_the_engine_docs_and_reach_the_job():
    import bpy

    properties = submodule("properties")
    methods = properties.load_methods()
    settings = bpy.context.scene.meshlift
    settings.method = "neus"
    assert bpy.ops.meshlift.option_add() == {"FINISHED"}
    row = settings.options[0]
    row.option, row.value = "iterations", " 300 "
    assert row.key == "iterations"
    # The option's tooltip is the engine's own doc, with its unit, range and default.
    spec = next(m for m in methods if m["name"] == "neus")["options"]["iterations"]
    tooltips = {key: text for key, _name, text, _i in properties._option_items(None, bpy.context)}
    assert tooltips["iterations"].startswith(spec["doc"]) and "unit: steps" in tooltips["iterations"]
    assert "default 5000" in tooltips["iterations"]
    # The preset's tooltip names what differs between the presets.
    assert "iterations 600" in properties.describe_preset(next(m for m in methods if m["name"] == "neus")["presets"],
                                                           "fast")
    assert submodule("operators.scene_job").job_settings(bpy.context).options == {"iterations": "300"}
    panel = fake_panel()
    bpy.types.MESHLIFT_PT_options.draw(panel, bpy.context)
    assert [args[1] for name, args, _ in panel.layout.calls if name == "prop"] == ["option", "value"]
    assert operators(panel.layout) == ["meshlift.option_remove", "meshlift.option_add"]
    assert bpy.ops.meshlift.option_remove(index=0) == {"FINISHED"} and len(settings.options) == 0
