"""Enabling and disabling the add-on: twice, without leaks or errors; operators F3 can find."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.addon.blender import MODULE, submodule
from tests.support import ROOT

pytestmark = pytest.mark.usefixtures("addon")

OPERATORS = {
    "MESHLIFT_OT_reconstruct_cameras": "Reconstruct from Selected Cameras",
    "MESHLIFT_OT_reconstruct_folder": "Reconstruct from Image Folder",
    "MESHLIFT_OT_export_cameras": "Export Cameras as Dataset",
    "MESHLIFT_OT_texture_selected": "Texture Selected Mesh from Cameras",
    "MESHLIFT_OT_relief_image": "Relief from Image",
    "MESHLIFT_OT_cancel": "Cancel Reconstruction",
    "MESHLIFT_OT_check_python": "Check Engine Python",
    "MESHLIFT_OT_setup_engine": "Set Up Engine",
    "MESHLIFT_OT_cancel_engine_setup": "Cancel Set-up",
    "MESHLIFT_OT_remove_engine": "Remove Engine",
    "MESHLIFT_OT_open_setup_log": "Open Set-up Log",
}
OTHER_CLASSES = ("MESHLIFT_PT_main", "MESHLIFT_MT_object")


def registered() -> dict[str, bool]:
    import bpy

    return {name: hasattr(bpy.types, name) for name in (*OPERATORS, *OTHER_CLASSES)}


def object_menu_entries() -> int:
    import bpy

    draw = bpy.types.VIEW3D_MT_object.draw
    return sum(1 for f in getattr(draw, "_draw_funcs", ()) if getattr(f, "__name__", "") == "draw_object_menu")


def reraise(error: BaseException) -> None:
    raise error


def test_register_unregister_twice():
    import addon_utils
    import bpy

    assert all(registered().values())
    assert object_menu_entries() == 1
    for _ in range(2):
        addon_utils.disable(MODULE, default_set=True)
        assert not any(registered().values()), registered()
        assert not hasattr(bpy.types.Scene, "meshlift")
        assert object_menu_entries() == 0
        assert not [h for h in bpy.app.handlers.load_pre if h.__module__.startswith(MODULE)]
        assert MODULE not in bpy.context.preferences.addons
        addon_utils.enable(MODULE, default_set=True, handle_error=reraise)
        assert all(registered().values()), registered()
        assert object_menu_entries() == 1
        assert len([h for h in bpy.app.handlers.load_pre if h.__module__.startswith(MODULE)]) == 1
        assert bpy.context.scene.meshlift.collection == "Meshlift"


def test_operators_have_clear_names_and_tooltips():
    import bpy

    for name, label in OPERATORS.items():
        cls = getattr(bpy.types, name)
        assert cls.bl_label == label
        group, op = cls.bl_idname.split(".")
        rna = getattr(getattr(bpy.ops, group), op).get_rna_type()
        assert rna.name == label
        assert len(rna.description) > 20 and "\n" not in rna.description, (name, rna.description)
    # F3 menu search finds operators through menus: all four are in Object > Meshlift
    menu = bpy.types.MESHLIFT_MT_object
    assert menu.bl_label == "Meshlift"
    # undo: only the reconstruct operators make an undo step (that removes their result)
    assert "UNDO" in bpy.types.MESHLIFT_OT_reconstruct_cameras.bl_options
    assert "UNDO" in bpy.types.MESHLIFT_OT_reconstruct_folder.bl_options
    assert "UNDO" in bpy.types.MESHLIFT_OT_texture_selected.bl_options
    assert "UNDO" in bpy.types.MESHLIFT_OT_relief_image.bl_options
    assert "UNDO" not in bpy.types.MESHLIFT_OT_cancel.bl_options


def test_user_data_goes_to_the_extension_user_folder():
    import bpy

    preferences = submodule("preferences")
    cache = preferences.cache_root()
    assert cache == Path(bpy.utils.extension_path_user(MODULE, path="cache"))
    assert "extensions" in cache.parts and cache.is_dir()
    assert not cache.resolve().is_relative_to(ROOT)
