"""Set Up Engine from the add-on: the operator (blocking in background mode, as here), the
interpreter it selects, the preferences in each state, Remove Engine. The set-ups here use a
stand-in base Python (``tests/support.py``); ``tests/bridge/test_engine_setup.py`` runs a real one."""

from __future__ import annotations

import sys

import pytest

from tests.addon.blender import addon_prefs, fake_panel, submodule
from tests.addon.test_panel import PreferencesView, operators
from tests.support import fake_base_python

pytestmark = pytest.mark.usefixtures("addon", "prefs")


def draw_preferences():
    import bpy

    layout = fake_panel().layout
    preferences = addon_prefs()
    preferences.show_setup_options = True
    type(preferences).draw(PreferencesView(preferences, layout), bpy.context)
    return layout


def test_unsupported_base_python_is_one_sentence_and_leaves_nothing(tmp_path):
    import bpy

    addon_prefs().base_python = str(fake_base_python(tmp_path, version="3.13.1"))
    with pytest.raises(RuntimeError, match=r"is Python 3\.13\.1, but the engine needs Python 3\.11: set 'Base Python'"):
        bpy.ops.meshlift.setup_engine()
    assert not submodule("preferences").engine_environment().exists()
    layout = draw_preferences()
    assert "meshlift.setup_engine" in operators(layout) and "meshlift.open_setup_log" in operators(layout)
    assert any("needs Python 3.11" in text for text in layout.texts())
    props = [args[1] for name, args, _ in layout.calls if name == "prop"]
    assert props[:8] == ["show_setup_options", "base_python", "torch_build", "torch_index", "extra_index",
                         "wheel_folder", "offline", "python_path"]


def test_setup_selects_the_new_interpreter_and_remove_engine_deletes_it(tmp_path):
    import bpy

    preferences = submodule("preferences")
    # The environment's "python": pip does nothing, the engine check is the real one.
    env_python = f'if [ "$2" = "engine" ]; then exec "{sys.executable}" "$@"; fi\nexit 0'
    addon_prefs().base_python = str(fake_base_python(tmp_path, env_python=env_python))
    addon_prefs().torch_build = "CPU"
    assert bpy.ops.meshlift.setup_engine() == {"FINISHED"}
    target = preferences.engine_environment()
    python = target / "bin" / "python"
    assert addon_prefs().python_path == str(python) and preferences.preferred_python() == str(python)
    assert submodule("bridge.engine_setup").environment_info(target)["build"] == "cpu"
    layout = draw_preferences()
    assert any(text.startswith("Engine set up: torch ") for text in layout.texts())
    assert "meshlift.remove_engine" in operators(layout) and "meshlift.setup_engine" not in operators(layout)
    log = preferences.setup_log().read_text()
    assert "== installing PyTorch:" in log and "torch==" in log and "+cpu" in log
    assert bpy.ops.meshlift.remove_engine() == {"FINISHED"}
    assert not target.exists() and addon_prefs().python_path == ""
