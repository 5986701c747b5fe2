# SPDX-License-Identifier: GPL-3.0-or-later
"""The panel's settings: a PropertyGroup on the scene (``scene.meshlift``).

Methods and presets come from the engine (``python -m engine methods --json``, loaded once in the
background): the enums are dynamic, and the choice is stored by name (``method_id``,
``preset_id``) so it survives the engine gaining or reordering methods.
"""

from __future__ import annotations

from typing import Any

import bpy

from . import preferences
from .bridge import interpreter

TEXTURE_SIZES = [
    ("PRESET", "Preset", "The texture size of the chosen preset"),
    ("256", "256", "256 x 256 pixels"),
    ("512", "512", "512 x 512 pixels"),
    ("1024", "1024", "1024 x 1024 pixels"),
    ("2048", "2048", "2048 x 2048 pixels"),
    ("4096", "4096", "4096 x 4096 pixels"),
]
DEVICES = [("PREFERENCES", "Default", "The device set in the add-on preferences"), *preferences.DEVICES]

# Enum items handed to Blender must stay referenced from Python (Blender keeps raw pointers).
_ITEMS: dict[str, list[tuple[str, str, str, int]]] = {}


def methods() -> list[dict[str, Any]]:
    """The engine's methods if known; starts loading them in the background otherwise (and
    redraws the sidebar once they, or the reason they cannot be had, are known)."""
    catalog = interpreter.CATALOG
    if catalog.methods is None:
        catalog.prefetch(preferences.preferred_python(), preferences.blender_python())
        if catalog.error is None and not bpy.app.timers.is_registered(_redraw_when_loaded):
            bpy.app.timers.register(_redraw_when_loaded, first_interval=0.25)
    return catalog.methods or []


def methods_pending() -> bool:
    """Whether the engine is still being asked for its methods (a job started now would wait for
    the answer, the interface frozen meanwhile: the engine's first start imports torch)."""
    return not methods() and interpreter.CATALOG.error is None


def _redraw_when_loaded() -> float | None:
    """A timer: once the method list has arrived (or failed), redraw the 3D views' sidebars."""
    if interpreter.CATALOG.methods is None and interpreter.CATALOG.error is None:
        return 0.25
    for window in bpy.context.window_manager.windows:
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()
    return None


def load_methods() -> list[dict[str, Any]]:
    """The engine's methods, waiting for them; raises :class:`UserError`."""
    return interpreter.CATALOG.load(preferences.preferred_python(), preferences.blender_python())


def find_method(known: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The entry of ``known`` (the engine's method list) called ``name`` (empty: the first one);
    raises ``LookupError`` with a message naming the choices."""
    names = [m["name"] for m in known]
    if not names:
        raise LookupError("The engine offers no reconstruction method")
    if name and name not in names:
        raise LookupError(f"Unknown method '{name}'. Available: {', '.join(names)}")
    return known[names.index(name)] if name else known[0]


def method_info(settings: MeshliftSettings) -> dict[str, Any] | None:
    known = methods()
    return next((m for m in known if m["name"] == settings.method_id), known[0] if known else None)


def _method_items(_self: Any, _context: Any) -> list[tuple[str, str, str, int]]:
    known = methods()
    if known:
        items = [(m["name"], m["title"], m["description"], i) for i, m in enumerate(known)]
    elif interpreter.CATALOG.error:
        items = [("NONE", "Engine unavailable", interpreter.CATALOG.error, 0)]
    else:
        items = [("NONE", "Loading...", "Asking the engine for its methods", 0)]
    _ITEMS["method"] = items
    return items


def _get_method(self: MeshliftSettings) -> int:
    names = [m["name"] for m in methods()]
    return names.index(self.method_id) if self.method_id in names else 0


def _set_method(self: MeshliftSettings, value: int) -> None:
    known = methods()
    if 0 <= value < len(known):
        self.method_id = known[value]["name"]
        if self.preset_id not in known[value]["presets"]:
            self.preset_id = ""


def describe_preset(presets: dict[str, dict[str, Any]], name: str) -> str:
    """The tooltip of preset ``name``: the values in which the presets differ (``iterations 600,
    rays 2048``), the rest being the same in all of them."""
    differing = [key for key in presets[name] if len({repr(p.get(key)) for p in presets.values()}) > 1]
    text = ", ".join(f"{key.replace('_', ' ')} {presets[name][key]}" for key in differing)
    return text or "The method's settings"


def describe_option(spec: dict[str, Any]) -> str:
    """The tooltip of one engine option: its doc, then unit, range and default (``methods --json``)."""
    bounds = [f"at least {spec['min']}" if spec.get("min") is not None else "",
              f"at most {spec['max']}" if spec.get("max") is not None else ""]
    details = [f"unit: {spec['unit']}" if spec.get("unit") else "", " and ".join(b for b in bounds if b),
               f"default {spec.get('default')}"]
    return f"{spec.get('doc', '')} ({'; '.join(d for d in details if d)})"


def _preset_items(self: MeshliftSettings, _context: Any) -> list[tuple[str, str, str, int]]:
    info = method_info(self)
    if info is None:
        items = [("NONE", "-", "The engine's presets are not known yet", 0)]
    else:
        items = [(name, name.title(), describe_preset(info["presets"], name), i)
                 for i, name in enumerate(info["presets"])]
    _ITEMS["preset"] = items
    return items


def _option_items(_self: Any, context: Any) -> list[tuple[str, str, str, int]]:
    info = method_info(context.scene.meshlift) if context is not None and context.scene else None
    specs = (info or {}).get("options", {})
    items = [(key, key.replace("_", " ").title(), describe_option(spec), i)
             for i, (key, spec) in enumerate(specs.items())]
    _ITEMS["option"] = items or [("NONE", "-", "The engine's options are not known yet", 0)]
    return _ITEMS["option"]


def _get_option(self: MeshliftOption) -> int:
    names = [item[0] for item in _ITEMS.get("option", [])]
    return names.index(self.key) if self.key in names else 0


def _set_option(self: MeshliftOption, value: int) -> None:
    items = _ITEMS.get("option", [])
    if 0 <= value < len(items) and items[value][0] != "NONE":
        self.key = items[value][0]


class MeshliftOption(bpy.types.PropertyGroup):
    """One override of an engine option (``-o KEY=VALUE`` on the command line)."""

    key: bpy.props.StringProperty(name="Option Name", default="", options={"HIDDEN"})
    option: bpy.props.EnumProperty(
        name="Option", description="The engine option to set (its tooltip says what it does)",
        items=_option_items, get=_get_option, set=_set_option,
    )
    value: bpy.props.StringProperty(name="Value", description="The option's value; the engine checks it")


def option_overrides(settings: MeshliftSettings) -> dict[str, str]:
    """The panel's option overrides, ``{name: value text}`` (rows without a name are ignored)."""
    return {item.key: item.value.strip() for item in settings.options if item.key and item.value.strip()}


def preset_name(settings: MeshliftSettings) -> str:
    """The chosen preset, or the method's default."""
    info = method_info(settings)
    if info is None:
        return settings.preset_id or "balanced"
    if settings.preset_id in info["presets"]:
        return settings.preset_id
    return info.get("default_preset") or next(iter(info["presets"]))


def _get_preset(self: MeshliftSettings) -> int:
    info = method_info(self)
    if info is None:
        return 0
    names = list(info["presets"])
    chosen = preset_name(self)
    return names.index(chosen) if chosen in names else 0


def _set_preset(self: MeshliftSettings, value: int) -> None:
    info = method_info(self)
    if info is not None and 0 <= value < len(info["presets"]):
        self.preset_id = list(info["presets"])[value]


class MeshliftSettings(bpy.types.PropertyGroup):
    source: bpy.props.EnumProperty(
        name="Source", description="What to reconstruct from",
        items=[
            ("CAMERAS", "Selected Cameras", "Render the selected cameras (or use their background images)",
             "CAMERA_DATA", 0),
            ("FOLDER", "Image Folder", "A folder with images and a transforms*.json with their camera poses",
             "FILE_FOLDER", 1),
        ],
        default="CAMERAS",
    )
    folder: bpy.props.StringProperty(
        name="Folder", description="Folder with transforms.json (or transforms_train.json) and the images it names",
        subtype="DIR_PATH",
    )
    depth_normals: bpy.props.BoolProperty(
        name="Depth and Normals",
        description="Also render the cameras' Z and Normal passes into the dataset: the Depth Fusion method needs "
                    "them, DMTet and NeuS use them as extra supervision (fewer views suffice)",
        default=True,
    )
    method_id: bpy.props.StringProperty(name="Method Name", default="", options={"HIDDEN"})
    method: bpy.props.EnumProperty(
        name="Method", description="Reconstruction method (the list comes from the engine)",
        items=_method_items, get=_get_method, set=_set_method,
    )
    preset_id: bpy.props.StringProperty(name="Preset Name", default="", options={"HIDDEN"})
    preset: bpy.props.EnumProperty(
        name="Preset", description="Speed/quality trade-off of the method", items=_preset_items,
        get=_get_preset, set=_set_preset,
    )
    device: bpy.props.EnumProperty(name="Device", description="Where the engine computes", items=DEVICES,
                                   default="PREFERENCES")
    texture_size: bpy.props.EnumProperty(name="Texture Size", description="Size of the baked texture",
                                         items=TEXTURE_SIZES, default="PRESET")
    collection: bpy.props.StringProperty(
        name="Collection", description="Collection that receives the result (created under the scene collection)",
        default="Meshlift",
    )
    preview: bpy.props.BoolProperty(
        name="Live Preview", default=True,
        description=("While DMTet or NeuS optimize, show the surface as it forms: a temporary object in the "
                     "result's collection, updated every few seconds and removed when the job ends"),
    )
    light_as_world: bpy.props.BoolProperty(
        name="Estimated Light as World",
        description="With a PBR material (engine option material=pbr), make the light the engine estimated "
        "(an HDR of the environment and the sun) the scene's world, so the result is lit as in the photos",
        default=False,
    )
    options: bpy.props.CollectionProperty(type=MeshliftOption, name="Engine Options")


def register() -> None:
    bpy.utils.register_class(MeshliftOption)
    bpy.utils.register_class(MeshliftSettings)
    bpy.types.Scene.meshlift = bpy.props.PointerProperty(type=MeshliftSettings)


def unregister() -> None:
    if bpy.app.timers.is_registered(_redraw_when_loaded):
        bpy.app.timers.unregister(_redraw_when_loaded)
    del bpy.types.Scene.meshlift
    bpy.utils.unregister_class(MeshliftSettings)
    bpy.utils.unregister_class(MeshliftOption)
    _ITEMS.clear()
