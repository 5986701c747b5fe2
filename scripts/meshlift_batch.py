"""Headless Meshlift: reconstruct from a scene's cameras (or an image folder) and save the result.

In Blender (background mode; the add-on installed or not)::

    blender -b scene.blend --python-exit-code 1 --python scripts/meshlift_batch.py -- --cameras "Cam*" --out r.blend

With the ``bpy`` module in a plain Python::

    python scripts/meshlift_batch.py -- --blend scene.blend --cameras "Cam*" --method hull --out result.blend

It runs the add-on's own job synchronously (timers do not fire in background mode), prints
progress on stderr, saves ``--out`` and exits 0; on failure it prints one clear message and exits
non-zero (1 the job failed or something unexpected broke, 2 bad arguments or input) without saving
anything. Inside Blender the exit status is set with ``sys.exit`` (Blender itself would exit 0
after an uncaught exception unless ``--python-exit-code`` is given).

With ``--export-only DIR`` it renders the cameras into a dataset (``DIR/transforms.json``,
``DIR/images/``) and stops, so a render farm can make the datasets of many .blend files and
``python -m engine batch`` reconstruct them.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import io
import json
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent  # the extension's source folder
DEV_REPO = "meshlift_batch"


class BatchError(Exception):
    """A problem reported in one line; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def parse_args(argv: list[str]) -> argparse.Namespace:
    args = argv[argv.index("--") + 1:] if "--" in argv else []
    parser = argparse.ArgumentParser(
        prog="meshlift_batch.py", description="Reconstruct a textured mesh headlessly with Meshlift.",
        epilog="Pass the script's arguments after '--'.",
    )
    parser.add_argument("--blend", help="the .blend to open (required with the bpy module; optional in Blender)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--cameras", default=None, help="camera objects to use, a glob pattern (default: all)")
    source.add_argument("--folder", help="reconstruct from this image folder (transforms*.json) instead")
    parser.add_argument("--method", default=None, help="engine method (default: the engine's first, e.g. hull)")
    parser.add_argument("--preset", default=None, help="preset of the method (default: the method's default)")
    parser.add_argument("--device", default="PREFERENCES", choices=("PREFERENCES", "auto", "cpu", "cuda"))
    parser.add_argument("--texture-size", type=int, default=None, help="baked texture size in pixels")
    parser.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                        help="engine option override, e.g. -o resolution=96 -o faces=4000")
    parser.add_argument("--collection", default="Meshlift", help="collection for the result (default Meshlift)")
    parser.add_argument("--python", default=None, help="the Python that runs the engine (needs torch)")
    parser.add_argument("--out", help="where to save the resulting .blend")
    parser.add_argument("--export-only", metavar="DIR", help="write the cameras' dataset into DIR; no reconstruction")
    parsed = parser.parse_args(args)
    if parsed.export_only is not None and parsed.folder is not None:
        parser.error("--export-only writes the cameras' dataset: it does not take --folder")
    if parsed.out is None and parsed.export_only is None:
        parser.error("the following arguments are required: --out (or --export-only DIR)")
    return parsed


def parse_options(pairs: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise BatchError(f"Options are KEY=VALUE, got '{pair}'")
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value.strip()
    return options


def enable_addon(bpy: Any) -> tuple[str, Callable[[], None]]:
    """The add-on's module name, enabling it from this checkout (as a development extension in a
    temporary repository) unless an installed copy is already enabled; plus the undo function.
    The checkout is enabled with ``default_set=True`` so that its preferences exist (``--python``
    sets one); background Blender does not save the preferences, and the undo disables it again."""
    import addon_utils  # noqa: PLC0415 (Blender's module: only importable once bpy is)

    for name, module in list(sys.modules.items()):
        if name.startswith("bl_ext.") and name.endswith(".meshlift") and getattr(module, "__addon_enabled__", False):
            return name, lambda: None
    parent = Path(tempfile.mkdtemp(prefix="meshlift-batch-"))
    (parent / "meshlift").symlink_to(ROOT, target_is_directory=True)
    repos = bpy.context.preferences.extensions.repos
    repo = repos.new(name=DEV_REPO, module=DEV_REPO, custom_directory=str(parent), source="USER")
    name = f"bl_ext.{DEV_REPO}.meshlift"
    errors: list[BaseException] = []
    if addon_utils.enable(name, default_set=True, handle_error=errors.append) is None:
        repos.remove(repo)
        raise BatchError(f"Could not enable the Meshlift add-on from {ROOT}: {errors[0] if errors else 'unknown'}")

    def cleanup() -> None:
        addon_utils.disable(name, default_set=True)
        with contextlib.redirect_stdout(io.StringIO()):  # "not enabled": it was just disabled above
            repos.remove(repo)
        (parent / "meshlift").unlink()
        parent.rmdir()

    return name, cleanup


def report_text(error: RuntimeError) -> str:
    """``bpy.ops`` turns an operator's error report into a RuntimeError: keep the message."""
    text = str(error).strip()
    for prefix in ("Error:", "Meshlift:"):
        text = text.removeprefix(prefix).strip()
    return text


def matching_cameras(scene: Any, pattern: str | None) -> list[str]:
    """The names of the scene's cameras that match the glob ``pattern`` (all when ``None``), sorted."""
    pattern = pattern or "*"
    cameras = sorted(o.name for o in scene.objects if o.type == "CAMERA" and fnmatch.fnmatchcase(o.name, pattern))
    if not cameras:
        available = sorted(o.name for o in scene.objects if o.type == "CAMERA")
        raise BatchError(f"No camera in the scene '{scene.name}' matches '{pattern}' "
                         f"(cameras: {', '.join(available[:10]) or 'none'})")
    return cameras


def export_only(bpy: Any, args: argparse.Namespace) -> None:
    """Render the matching cameras into the dataset folder ``args.export_only`` (the add-on's
    *Export Cameras as Dataset*), without reconstructing."""
    folder = Path(args.export_only).absolute()
    cameras = matching_cameras(bpy.context.scene, args.cameras)
    print(f"Meshlift: exporting {len(cameras)} cameras to {folder}", file=sys.stderr)
    try:
        bpy.ops.meshlift.export_cameras(directory=str(folder), cameras=",".join(cameras))
    except RuntimeError as error:
        raise BatchError(report_text(error), code=1) from error
    print(f"Meshlift: wrote {folder / 'transforms.json'}")


def run(bpy: Any, module_name: str, args: argparse.Namespace) -> None:
    if args.export_only is not None:
        export_only(bpy, args)
        return
    addon = sys.modules[module_name]
    properties, scene_job, UserError = addon.properties, addon.operators.scene_job, addon.bridge.errors.UserError
    scene = bpy.context.scene
    settings = scene.meshlift
    if args.python:
        prefs = addon.preferences.get_preferences(bpy.context)
        if prefs is None:
            raise BatchError(f"The add-on {module_name} has no preferences; enable it in Blender's preferences first",
                             code=1)
        prefs.python_path = args.python
    try:
        methods = properties.load_methods()
    except UserError as error:
        raise BatchError(str(error)) from error
    try:
        info = properties.find_method(methods, args.method or "")
    except LookupError as error:
        raise BatchError(str(error)) from error
    method, presets = info["name"], info["presets"]
    if args.preset is not None and args.preset not in presets:
        raise BatchError(f"Unknown preset '{args.preset}' for {method}. Available: {', '.join(presets)}")
    settings.method_id, settings.preset_id = method, args.preset or ""
    settings.device = args.device
    settings.collection = args.collection
    options = parse_options(args.option)
    if args.texture_size is not None:
        options["texture_size"] = args.texture_size
    print(f"Meshlift: {method} ({properties.preset_name(settings)}) on {scene.name!r}", file=sys.stderr)

    try:
        if args.folder:
            bpy.ops.meshlift.reconstruct_folder(directory=str(Path(args.folder).absolute()),
                                                options=json.dumps(options))
        else:
            cameras = matching_cameras(scene, args.cameras)
            print(f"Meshlift: {len(cameras)} cameras: {', '.join(cameras[:6])}{', ...' if len(cameras) > 6 else ''}",
                  file=sys.stderr)
            bpy.ops.meshlift.reconstruct_cameras(cameras=",".join(cameras), options=json.dumps(options))
    except RuntimeError as error:
        raise BatchError(report_text(error), code=1) from error
    if scene_job.STATUS.state != "done":
        raise BatchError(scene_job.STATUS.message or "The reconstruction did not finish", code=1)
    out = Path(args.out).absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(out))
    for line in [scene_job.STATUS.message, *scene_job.STATUS.lines, f"saved {out}"]:
        print(f"Meshlift: {line}")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    import bpy  # noqa: PLC0415 (after the arguments: --help needs no Blender)

    if args.blend:
        blend = Path(args.blend)
        if not blend.is_file():
            print(f"meshlift_batch: the file {blend} does not exist", file=sys.stderr)
            return 2
        bpy.ops.wm.open_mainfile(filepath=str(blend.absolute()))
    elif not bpy.app.binary_path:
        print("meshlift_batch: --blend is required when running with the bpy module", file=sys.stderr)
        return 2
    cleanup: Callable[[], None] = lambda: None  # noqa: E731
    try:
        module_name, cleanup = enable_addon(bpy)
        run(bpy, module_name, args)
    except BatchError as error:
        print(f"meshlift_batch: {error}", file=sys.stderr)
        return error.code
    except Exception as error:  # anything else is a failure too: its traceback, then one line, exit 1
        traceback.print_exc()
        print(f"meshlift_batch: internal error ({type(error).__name__}: {error})", file=sys.stderr)
        return 1
    finally:
        cleanup()  # bpy 4.5 hangs at exit while add-on classes are registered
    return 0


def leave(code: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    import bpy  # noqa: PLC0415

    if bpy.app.binary_path:  # inside Blender: sys.exit ends Blender with this code
        sys.exit(code)
    os._exit(code)  # the bpy module: skip its shutdown, which can deadlock in 4.5


if __name__ == "__main__":
    try:
        status = main(sys.argv)
    except SystemExit as stop:  # argparse: --help (0) or bad arguments (2)
        status = stop.code if isinstance(stop.code, int) else 2
    leave(status)
