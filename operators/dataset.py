# SPDX-License-Identifier: GPL-3.0-or-later
"""Scene cameras -> a posed dataset (``transforms.json`` + RGBA images) the engine reads.

Each camera contributes its background image when it has one, otherwise a render with the
scene's render settings (film transparent, RGBA PNG; every render setting touched is restored).
Intrinsics are per frame (``bridge.camera_math``), poses are the cameras' world matrices.
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


def has_something_to_render(scene: bpy.types.Scene, view_layer: bpy.types.ViewLayer,
                            hidden: tuple[str, ...] = ()) -> bool:
    """Whether a render would show an object (``hidden``: names of objects left out of the renders)."""
    return any(o.type in RENDERABLE and not o.hide_render and o.name not in hidden
               and o.visible_get(view_layer=view_layer) for o in scene.objects)


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


def denoiser_missing(scene: bpy.types.Scene) -> bool:
    """Whether rendering ``scene`` would fail for want of a denoiser: Cycles with OpenImageDenoise
    on, in a Blender built without it (Debian's, for one)."""
    cycles = getattr(scene, "cycles", None)
    if scene.render.engine != "CYCLES" or cycles is None or not cycles.use_denoising:
        return False
    if getattr(cycles, "denoiser", "") == "OPTIX":  # (without OIDN, Blender 4.3 reads its default as "")
        return False
    return not oidn_available()


def oidn_available() -> bool:
    """Whether this Blender's Cycles has OpenImageDenoise."""
    try:
        import _cycles  # noqa: PLC0415 (Cycles' own module, present only in builds with Cycles)
    except ImportError:
        return True
    return bool(getattr(_cycles, "with_openimagedenoise", True))


NO_DENOISER = ("This Blender has no OpenImageDenoise: the cameras are rendered without denoising (the scene's "
               "setting is left as it is).")


class RenderSettings:
    """Sets film transparent + RGBA PNG (and no border) for one render, with ``passes`` also the Z
    and Normal passes of ``view_layer``, leaves the ``hidden`` objects (names) out of it, and turns
    Cycles' denoising off when this Blender lacks its denoiser (``warnings`` then says so); restores
    every setting it touched afterwards, whatever happened."""

    def __init__(self, scene: bpy.types.Scene, view_layer: bpy.types.ViewLayer | None = None,
                 passes: bool = False, hidden: tuple[str, ...] = ()) -> None:
        self.scene = scene
        self.view_layer = view_layer if passes else None
        self.hidden = [obj for obj in (scene.objects.get(name) for name in hidden) if obj is not None]
        self.warnings: list[str] = []

    def __enter__(self) -> RenderSettings:
        render = self.scene.render
        settings = render.image_settings
        self.saved = {
            "camera": self.scene.camera, "filepath": render.filepath, "film_transparent": render.film_transparent,
            "use_border": render.use_border, "use_file_extension": render.use_file_extension,
            "file_format": settings.file_format, "color_mode": settings.color_mode, "color_depth": settings.color_depth,
        }
        self.denoising = denoiser_missing(self.scene)
        if self.denoising:
            self.scene.cycles.use_denoising = False
            self.warnings.append(NO_DENOISER)
        if self.view_layer is not None:
            self.saved_passes = (self.view_layer.use_pass_z, self.view_layer.use_pass_normal)
            self.view_layer.use_pass_z = self.view_layer.use_pass_normal = True
        self.saved_hidden = [obj.hide_render for obj in self.hidden]
        for obj in self.hidden:
            obj.hide_render = True
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
        if self.denoising:
            self.scene.cycles.use_denoising = True
        if self.view_layer is not None:
            self.view_layer.use_pass_z, self.view_layer.use_pass_normal = self.saved_passes
        for obj, hidden in zip(self.hidden, self.saved_hidden, strict=True):
            obj.hide_render = hidden


def render_still(scene: bpy.types.Scene) -> None:
    """Render ``scene``'s camera to ``scene.render.filepath`` (blocking)."""
    bpy.ops.render.render(write_still=True, scene=scene.name)


def check_sources(scene: bpy.types.Scene, view_layer: bpy.types.ViewLayer, cameras: list[bpy.types.Object],
                  hidden: tuple[str, ...] = ()) -> dict[str, bpy.types.Image | None]:
    """Check that every camera has an image or something to render (besides the ``hidden``
    objects); returns each camera's background image (``None``: it will be rendered). Raises
    :class:`UserError`."""
    check_cameras(cameras)
    images = {camera.name: background_image(camera) for camera in cameras}
    to_render = [camera for camera in cameras if images[camera.name] is None]
    if to_render and not has_something_to_render(scene, view_layer, hidden):
        names = ", ".join(c.name for c in to_render[:4]) + (", ..." if len(to_render) > 4 else "")
        raise UserError(f"The cameras {names} have no background image and the scene has nothing visible to "
                           "render. Add the object to reconstruct, or give each camera a background image.")
    return images


class CameraExport:
    """Writes the cameras' dataset one camera at a time: ``folder/images/*`` and, after the last,
    ``folder/transforms.json``. A modal operator calls :meth:`step` once per timer tick (one render
    per tick, so the interface answers between renders); :meth:`run` does them all at once.

    Cameras are looked up by name at each step (the user may change the scene meanwhile), and
    every render setting is restored after each render. With ``depth_normals`` each rendered camera
    also gets its Z and Normal passes in ``folder/depth/NAME.exr`` (named by the frame's
    ``depth_file_path`` and ``normal_file_path``; Blender's Z is along the optical axis, its normals
    in world space, which ``transforms.json`` says with ``depth_along`` and ``normal_space``).
    The ``hidden`` objects (names; e.g. the mesh being textured) are left out of every render.

    Raises (from the constructor):
        UserError: no or too few cameras, non-perspective cameras, cameras without images in a
            scene with nothing to render.
    """

    def __init__(self, scene: bpy.types.Scene, view_layer: bpy.types.ViewLayer, cameras: list[bpy.types.Object],
                 folder: Path, *, depth_normals: bool = True, hidden: tuple[str, ...] = ()) -> None:
        images = check_sources(scene, view_layer, cameras, hidden)
        self.hidden = hidden
        self.scene_name = scene.name
        self.view_layer_name = view_layer.name
        self.depth_normals = depth_normals
        self.cameras = [camera.name for camera in cameras]
        self.images = {name: image.name if image is not None else None for name, image in images.items()}
        self.folder = Path(folder)
        self.index = 0
        self.frames: list[dict] = []
        self.warnings: list[str] = []
        self.transforms: Path | None = None
        self._taken: set[str] = set()

    @property
    def total(self) -> int:
        return len(self.cameras)

    @property
    def done(self) -> bool:
        return self.transforms is not None

    def step(self) -> bool:
        """Render (or copy the image of) the next camera; after the last, write ``transforms.json``.
        Returns whether the dataset is complete. Raises :class:`UserError` (a render that failed,
        a camera or image that is gone)."""
        if self.done:
            return True
        scene = bpy.data.scenes.get(self.scene_name)
        if scene is None:
            raise UserError(f"The scene '{self.scene_name}' was deleted while its cameras were being rendered.")
        if self.index == self.total:
            extra: dict = {"meshlift": {"scene": scene.name, "blender": bpy.app.version_string}}
            if any("depth_file_path" in frame for frame in self.frames):
                extra.update({"depth_along": "axis", "normal_space": "world"})  # Blender's Z and Normal passes
            self.transforms = write_transforms(self.folder, self.frames, extra)
            return True
        name = self.cameras[self.index]
        camera = scene.objects.get(name)
        if camera is None or camera.type != "CAMERA":
            raise UserError(f"The camera '{name}' was deleted while the cameras were being rendered.")
        stem = unique_name(name, self._taken)
        (self.folder / "images").mkdir(parents=True, exist_ok=True)
        image_name = self.images[name]
        maps: dict[str, str] = {}
        if image_name is None:
            file_name = self._render(scene, camera, self.folder / "images" / f"{stem}.png", stem)
            if self.depth_normals:
                maps = {"depth_file_path": f"depth/{stem}.exr", "normal_file_path": f"depth/{stem}.exr"}
        else:
            image = bpy.data.images.get(image_name)
            if image is None:
                raise UserError(f"The background image '{image_name}' of camera '{name}' was deleted meanwhile.")
            file_name = copy_image(image, self.folder / "images", stem)
        self.frames.append({
            "file_path": f"images/{file_name}",
            "transform_matrix": rigid([list(row) for row in camera.matrix_world]),
            **frame_intrinsics(scene, camera),
            **maps,
            "camera": name,
        })
        self.index += 1
        return False

    def _render(self, scene: bpy.types.Scene, camera: bpy.types.Object, path: Path, stem: str) -> str:
        view_layer = scene.view_layers.get(self.view_layer_name)
        passes = self.depth_normals and view_layer is not None
        with RenderSettings(scene, view_layer, passes=passes, hidden=self.hidden) as settings:
            scene.camera = camera
            scene.render.filepath = str(path)
            try:
                with quiet_stdout(bpy.app.background):
                    render_still(scene)
            except RuntimeError as error:
                reason = str(error).strip().removeprefix("Error:").strip().rstrip(".")
                raise UserError(f"Rendering camera '{camera.name}' failed: {reason}.") from error
            if settings.view_layer is not None and path.is_file():
                (self.folder / "depth").mkdir(exist_ok=True)
                settings.save_passes(self.folder / "depth" / f"{stem}.exr")
        for warning in settings.warnings:
            if warning not in self.warnings:
                self.warnings.append(warning)
        if not path.is_file():
            raise UserError(f"Rendering camera '{camera.name}' produced no image (is the render engine able to run "
                            "here?)")
        return path.name

    def run(self, on_progress: Callable[[int, int, str], None] | None = None) -> Path:
        """Every remaining step; ``on_progress(index, total, camera)`` before each camera and once
        at the end (``camera`` empty). Returns the ``transforms.json`` path."""
        while not self.done:
            if on_progress is not None:
                on_progress(self.index, self.total, self.cameras[self.index] if self.index < self.total else "")
            self.step()
        assert self.transforms is not None
        return self.transforms


def export_cameras(
    scene: bpy.types.Scene, view_layer: bpy.types.ViewLayer, cameras: list[bpy.types.Object], folder: Path,
    on_progress: Callable[[int, int, str], None] | None = None, *, depth_normals: bool = True,
) -> Path:
    """Write ``folder/transforms.json`` and ``folder/images/*`` (with ``depth_normals`` also
    ``folder/depth/*.exr``) for ``cameras`` at once; returns the json path. Raises
    :class:`UserError` (see :class:`CameraExport`)."""
    return CameraExport(scene, view_layer, cameras, folder, depth_normals=depth_normals).run(on_progress)
