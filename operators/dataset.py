# SPDX-License-Identifier: GPL-3.0-or-later
"""Scene cameras -> a posed dataset (``transforms.json`` + RGBA images) the engine reads.

Each camera contributes its background image when it has one, otherwise a render with the
scene's render settings (film transparent, RGBA PNG; every render setting touched is restored).
With ``depth_normals`` a rendered camera also gets its Z and Normal passes, saved from the same
render as a multilayer OpenEXR (``depth/<camera>.exr``, channels ``<view layer>.Depth.Z`` and
``<view layer>.Normal.X/Y/Z``) that the frame names as its ``depth_file_path`` and
``normal_file_path``: Blender's Z is the depth along the camera's axis in scene units (1e10 where
nothing is hit) and its Normal pass is in world space, which is how the engine reads them
(``engine/data/depth_maps.py``). Intrinsics are per frame (``bridge.camera_math``), poses are the
cameras' world matrices.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import bpy

from ..bridge.camera_math import camera_intrinsics, render_size, rigid, unique_name, write_transforms
from ..bridge.errors import UserError

RENDERABLE = {"MESH", "CURVE", "CURVES", "SURFACE", "META", "FONT", "VOLUME", "POINTCLOUD", "GREASEPENCIL"}
MIN_CAMERAS = 3
FILE_SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "OPEN_EXR": ".exr", "TIFF": ".tif", "BMP": ".bmp", "WEBP": ".webp",
               "TARGA": ".tga"}


def selected_cameras(context: bpy.types.Context) -> list[bpy.types.Object]:
    return sorted((o for o in context.selected_objects if o.type == "CAMERA"), key=lambda o: o.name)


def cameras_by_name(scene: bpy.types.Scene, names: list[str]) -> list[bpy.types.Object]:
    found = []
    for name in names:
        obj = scene.objects.get(name)
        if obj is None or obj.type != "CAMERA":
            raise UserError(f"'{name}' is not a camera in the scene '{scene.name}'")
        found.append(obj)
    return found


def check_cameras(cameras: list[bpy.types.Object]) -> None:
    if not cameras:
        raise UserError("No cameras selected. Select at least 3 camera objects that look at the object, "
                           "or choose an image folder as the source.")
    if len(cameras) < MIN_CAMERAS:
        raise UserError(f"Only {len(cameras)} camera(s) selected; select at least {MIN_CAMERAS} cameras "
                           "that look at the object from different sides.")
    for camera in cameras:
        if camera.data.type != "PERSP":
            raise UserError(f"Camera '{camera.name}' is {camera.data.type.lower()}; Meshlift needs perspective "
                               "cameras.")


def background_image(camera: bpy.types.Object) -> bpy.types.Image | None:
    """The camera's first background image (an image, not a movie clip), if any."""
    for background in camera.data.background_images:
        if background.source == "IMAGE" and background.image is not None:
            return background.image
    return None


def has_something_to_render(scene: bpy.types.Scene, view_layer: bpy.types.ViewLayer) -> bool:
    return any(o.type in RENDERABLE and not o.hide_render and o.visible_get(view_layer=view_layer)
               for o in scene.objects)


def copy_image(image: bpy.types.Image, folder: Path, stem: str) -> str:
    """Write ``image``'s file (packed or on disk) as ``folder/stem.<ext>``; returns the file name."""
    if image.packed_file is not None:
        suffix = Path(image.filepath).suffix.lower() or FILE_SUFFIX.get(image.file_format, ".png")
        (folder / f"{stem}{suffix}").write_bytes(image.packed_file.data)
        return f"{stem}{suffix}"
    source = Path(bpy.path.abspath(image.filepath, library=image.library)) if image.filepath else None
    if source is None or not source.is_file():
        raise UserError(f"The background image '{image.name}' has no file on disk and is not packed; "
                           "save or pack it first.")
    shutil.copyfile(source, folder / f"{stem}{source.suffix.lower()}")
    return f"{stem}{source.suffix.lower()}"


def frame_intrinsics(scene: bpy.types.Scene, camera: bpy.types.Object) -> dict[str, float | int]:
    render = scene.render
    width, height = render_size(render.resolution_x, render.resolution_y, render.resolution_percentage)
    data = camera.data
    return camera_intrinsics(
        lens=data.lens, sensor_width=data.sensor_width, sensor_height=data.sensor_height, sensor_fit=data.sensor_fit,
        shift_x=data.shift_x, shift_y=data.shift_y, width=width, height=height,
        pixel_aspect_x=render.pixel_aspect_x, pixel_aspect_y=render.pixel_aspect_y,
    ).as_dict()


@contextlib.contextmanager
def quiet_stdout(enabled: bool) -> Iterator[None]:
    """Silence the renderer's per-sample status lines on stdout (background mode: they would
    drown the progress messages). Errors still go to stderr."""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


class RenderSettings:
    """Sets film transparent + RGBA PNG (and no border) for the renders, and with ``passes`` the Z and
    Normal passes of ``view_layer``; restores everything after."""

    def __init__(self, scene: bpy.types.Scene, view_layer: bpy.types.ViewLayer | None = None,
                 passes: bool = False) -> None:
        self.scene = scene
        self.view_layer = view_layer if passes else None

    def __enter__(self) -> RenderSettings:
        render = self.scene.render
        settings = render.image_settings
        self.saved = {
            "camera": self.scene.camera, "filepath": render.filepath, "film_transparent": render.film_transparent,
            "use_border": render.use_border, "use_file_extension": render.use_file_extension,
            "file_format": settings.file_format, "color_mode": settings.color_mode, "color_depth": settings.color_depth,
        }
        if self.view_layer is not None:
            self.saved_passes = (self.view_layer.use_pass_z, self.view_layer.use_pass_normal)
            self.view_layer.use_pass_z = self.view_layer.use_pass_normal = True
        render.film_transparent = True
        render.use_border = False
        render.use_file_extension = True
        self.png()
        return self

    def png(self) -> None:
        """The colour renders' format: RGBA PNG, 8 bits."""
        settings = self.scene.render.image_settings
        settings.file_format = "PNG"
        settings.color_mode = "RGBA"
        settings.color_depth = "8"

    def save_passes(self, path: Path) -> None:
        """Save the last render's layers and passes (the Z and Normal passes among them) as a
        multilayer 32-bit float OpenEXR at ``path``."""
        settings = self.scene.render.image_settings
        settings.file_format = "OPEN_EXR_MULTILAYER"
        settings.color_depth = "32"
        try:
            bpy.data.images["Render Result"].save_render(str(path), scene=self.scene)
        finally:
            self.png()

    def __exit__(self, *_exc: object) -> None:
        render, saved = self.scene.render, self.saved
        render.image_settings.file_format = saved["file_format"]
        render.image_settings.color_mode = saved["color_mode"]
        render.image_settings.color_depth = saved["color_depth"]
        render.filepath = saved["filepath"]
        render.film_transparent = saved["film_transparent"]
        render.use_border = saved["use_border"]
        render.use_file_extension = saved["use_file_extension"]
        self.scene.camera = saved["camera"]
        if self.view_layer is not None:
            self.view_layer.use_pass_z, self.view_layer.use_pass_normal = self.saved_passes


def check_sources(scene: bpy.types.Scene, view_layer: bpy.types.ViewLayer,
                  cameras: list[bpy.types.Object]) -> dict[str, bpy.types.Image | None]:
    """Check that every camera has an image or something to render; returns each camera's
    background image (``None``: it will be rendered). Raises :class:`UserError`."""
    check_cameras(cameras)
    images = {camera.name: background_image(camera) for camera in cameras}
    to_render = [camera for camera in cameras if images[camera.name] is None]
    if to_render and not has_something_to_render(scene, view_layer):
        names = ", ".join(c.name for c in to_render[:4]) + (", ..." if len(to_render) > 4 else "")
        raise UserError(f"The cameras {names} have no background image and the scene has nothing visible to "
                           "render. Add the object to reconstruct, or give each camera a background image.")
    return images


def export_cameras(
    scene: bpy.types.Scene, view_layer: bpy.types.ViewLayer, cameras: list[bpy.types.Object], folder: Path,
    on_progress: Callable[[int, int, str], None] | None = None, *, depth_normals: bool = True,
) -> Path:
    """Write ``folder/transforms.json`` and ``folder/images/*`` for ``cameras`` (with ``depth_normals``
    also ``folder/depth/*.exr`` for the rendered ones); returns the json path.

    Raises:
        UserError: no or too few cameras, non-perspective cameras, cameras without images in a
            scene with nothing to render, unusable background images.
    """
    images = check_sources(scene, view_layer, cameras)
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    frames = []
    with RenderSettings(scene, view_layer, passes=depth_normals) as settings:
        for index, camera in enumerate(cameras):
            stem = unique_name(camera.name, taken)
            if on_progress is not None:
                on_progress(index, len(cameras), camera.name)
            image = images[camera.name]
            if image is None:
                path = folder / "images" / f"{stem}.png"
                scene.camera = camera
                scene.render.filepath = str(path)
                with quiet_stdout(bpy.app.background):
                    bpy.ops.render.render(write_still=True, scene=scene.name)
                if not path.is_file():
                    raise UserError(f"Rendering camera '{camera.name}' produced no image (is the render "
                                       "engine able to run here?)")
                file_name = path.name
                maps = {}
                if depth_normals:
                    (folder / "depth").mkdir(exist_ok=True)
                    settings.save_passes(folder / "depth" / f"{stem}.exr")
                    maps = {"depth_file_path": f"depth/{stem}.exr", "normal_file_path": f"depth/{stem}.exr"}
            else:
                file_name, maps = copy_image(image, folder / "images", stem), {}
            frames.append({
                "file_path": f"images/{file_name}",
                "transform_matrix": rigid([list(row) for row in camera.matrix_world]),
                **frame_intrinsics(scene, camera),
                **maps,
                "camera": camera.name,
            })
    if on_progress is not None:
        on_progress(len(cameras), len(cameras), "")
    extra = {"meshlift": {"scene": scene.name, "blender": bpy.app.version_string}}
    if any("depth_file_path" in frame for frame in frames):
        extra.update({"depth_along": "axis", "normal_space": "world"})  # Blender's Z and Normal passes
    return write_transforms(folder, frames, extra)
