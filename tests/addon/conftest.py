"""Fixtures of the add-on tests: the real ``bpy`` module with the checkout enabled as an extension.

The add-on is enabled once per session as a development extension (``bl_ext.dev.meshlift``) in an
isolated user profile (``BLENDER_USER_RESOURCES``, set before ``bpy`` is first imported), and
disabled at the end: bpy 4.5 hangs at exit while classes are registered. Each test resets the
scene (``empty_scene``) and the preferences (``prefs``) it changes.
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

import pytest

from tests.addon.blender import MODULE, submodule
from tests.support import ROOT


def import_bpy() -> Any:
    """``bpy``, imported in an isolated user profile the first time."""
    if "bpy" not in sys.modules:
        os.environ["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="meshlift-profile-")
    import bpy

    return bpy


@pytest.fixture(scope="session")
def addon(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The enabled add-on's root module (this checkout, linked into a development repository)."""
    bpy = import_bpy()
    import addon_utils

    parent = tmp_path_factory.mktemp("dev-repo")
    (parent / "meshlift").symlink_to(ROOT, target_is_directory=True)
    repo = bpy.context.preferences.extensions.repos.new(name="dev", module="dev", custom_directory=str(parent),
                                                        source="USER")

    def fail(error: BaseException) -> None:
        raise error

    module = addon_utils.enable(MODULE, default_set=True, handle_error=fail)
    assert module is not None
    try:
        yield module
    finally:
        submodule("operators.scene_job").shutdown()
        addon_utils.disable(MODULE, default_set=True)
        bpy.context.preferences.extensions.repos.remove(repo)


@pytest.fixture
def prefs(addon: Any) -> Any:
    """The add-on preferences, restored after the test."""
    import bpy

    preferences = bpy.context.preferences.addons[MODULE].preferences
    saved = {key: getattr(preferences, key) for key in ("python_path", "device", "cache_dir", "keep_files",
                                                        "base_python", "torch_build", "torch_index", "extra_index",
                                                        "wheel_folder", "offline", "show_setup_options")}
    yield preferences
    for key, value in saved.items():
        setattr(preferences, key, value)
    submodule("bridge.interpreter").clear_cache()
    submodule("bridge.interpreter").CATALOG.reset()


@pytest.fixture
def empty_scene(addon: Any) -> Any:
    """A fresh empty file; the job state is reset before and after."""
    import bpy

    scene_job = submodule("operators.scene_job")
    scene_job.shutdown()
    bpy.ops.wm.read_homefile(use_empty=True)
    yield bpy.context.scene
    scene_job.shutdown()
