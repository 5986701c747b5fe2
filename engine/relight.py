"""The relighting score's renderer, as the engine sees it: the light file, Blender's camera settings
for the engine's intrinsics, and the command that renders an asset in Cycles.

The renderer itself, ``scripts/relight_in_cycles.py``, imports ``bpy`` (Blender as a Python module, a
development dependency), so it lives outside ``engine/`` and runs in a process of its own::

    python scripts/relight_in_cycles.py ASSET DATASET --out DIR [--split test_relit] [--light FILE] [--samples 64]

The asset is imported the way an artist imports it (Blender's glTF importer for ``.glb``/``.gltf``,
its OBJ importer with Up = Z, Forward = Y for ``.obj``), lit by the light file (by default
``DATASET/relit_light.json``) and rendered with Cycles on the CPU at every camera of
``transforms_<split>.json``, film transparent, Standard view transform (the datasets' renders use it),
into ``DIR/<image name>.png`` (RGBA, 8 bit). It prints one JSON object on stdout:
``{"renders": [paths...], "seconds": s}``. The script is part of the Meshlift source checkout (the
add-on and an installed engine do not carry it): :func:`relight_command` says so plainly.

Light file (the format of the datasets' ``relit_light.json``)::

    {"sun": {"rotation_euler_deg": [x, y, z], "energy": W/m^2, "color": [r, g, b], "angle_deg": a},
     "world": {"color": [r, g, b], "strength": s}}

Either part may be missing; ``world`` may instead name an equirectangular HDR: ``{"hdr": PATH,
"strength": s}`` (a relative path is taken from the light file's folder).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .errors import InputError

LIGHT_FILE = "relit_light.json"
DEFAULT_SPLIT = "test_relit"
DEFAULT_SAMPLES = 64
# The datasets' renders use Blender's Standard view transform (no tone curve: the sRGB curve only).
VIEW_TRANSFORM = "Standard"
# Images the OBJ importer loads as sRGB that hold data, by the file-name suffix the engine writes.
NON_COLOUR_SUFFIXES = ("_roughness", "_metallic", "_normal", "_orm")
# The renderer (imports bpy), in the source checkout beside engine/.
RENDERER = Path(__file__).resolve().parents[1] / "scripts" / "relight_in_cycles.py"


def read_light(path: str | Path) -> dict[str, Any]:
    """The light file's content, with a relative ``world.hdr`` made absolute."""
    path = Path(path)
    light = json.loads(path.read_text())
    world = light.get("world") or {}
    if "hdr" in world:
        world["hdr"] = str((path.parent / world["hdr"]).resolve())
    return light


def blender_camera_settings(fx: float, cx: float, cy: float, width: int, height: int) -> dict[str, Any]:
    """A Blender camera's lens settings for pinhole intrinsics in pixels (square pixels): a 36 mm
    sensor fitted to the longer image side, the focal length and the principal point's shift (in
    units of the longer side; Blender's shift is positive to the right and up, pixels' ``cy`` down)."""
    longest = max(width, height)
    return {"sensor_fit": "HORIZONTAL" if width >= height else "VERTICAL", "sensor_width": 36.0,
            "sensor_height": 36.0, "lens": fx * 36.0 / longest,
            "shift_x": (width / 2.0 - cx) / longest, "shift_y": (cy - height / 2.0) / longest}


def relight_command(asset: str | Path, dataset: str | Path, out: str | Path, *, split: str = DEFAULT_SPLIT,
                    light: str | Path | None = None, samples: int = DEFAULT_SAMPLES,
                    image_scale: float = 1.0) -> list[str]:
    """The command line that renders ``asset`` at ``dataset``'s ``split`` cameras into ``out`` with
    this interpreter (which must have ``bpy``).

    Raises:
        InputError: the renderer script is not there (an installed engine without the checkout).
    """
    if not RENDERER.is_file():
        raise InputError(f"The relighting renderer {RENDERER.name} is part of the Meshlift source checkout, "
                         "which this engine was not installed from; pass --no-relight to skip the relit PSNR")
    command = [sys.executable, str(RENDERER), str(asset), str(dataset), "--out", str(out), "--split", split,
               "--samples", str(samples), "--image-scale", str(image_scale)]
    return command + (["--light", str(light)] if light is not None else [])
