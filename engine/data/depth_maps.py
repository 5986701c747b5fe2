"""Per-view depth and normal maps: read them from files and convert them to the engine's convention.

The engine's convention (what :class:`~engine.data.dataset.DatasetSplit` holds):

* **depth** ``[H, W]`` float32: the distance of the surface seen at the pixel centre *along the
  camera's optical axis* (the camera-space ``-z`` of the point, as :meth:`engine.cameras.Cameras.project`
  and the rasterizer's ``Fragments.depth`` measure it), in the world units of ``transform_matrix``;
  **0 where there is no depth**.
* **normals** ``[H, W, 3]`` float32: the unit surface normal at the pixel, in the *world frame*,
  pointing out of the surface towards the camera; **0 (all three components) where there is none**.

What the files may hold, named per frame in ``transforms*.json`` the way nerfstudio names them:

* ``depth_file_path``: a 16-bit PNG (integer depths, e.g. millimetres), an OpenEXR file (float; a
  single channel, or a channel named ``Z`` / ``*.Depth.Z`` as Blender's multilayer EXR writes it)
  or a ``.npy`` array ``[H, W]``. The stored value times ``depth_unit_scale_factor`` (global or per
  frame; when absent 0.001 for integer PNGs, millimetres to metres as in nerfstudio, and 1 for
  float files) is the depth in world units. ``depth_along`` (global or per frame) says what it
  measures: ``"axis"`` (the default: along the optical axis, as nerfstudio, Blender's Z pass and
  RGB-D cameras store it) or ``"ray"`` (the distance from the camera centre along the pixel's
  ray); ray distances are converted to axis depths here. A stored 0, ``+inf`` or a value of
  ``1e10`` or more (Blender's background) means no depth at that pixel.
* ``normal_file_path``: a PNG (8 or 16 bits, ``n = 2 * value / max - 1`` per RGB channel), an
  OpenEXR file (float; channels ``X, Y, Z``, ``*.Normal.X/Y/Z`` as Blender writes them, or ``R, G,
  B``) or a ``.npy`` array ``[H, W, 3]``. ``normal_space`` (global or per frame) gives their frame:
  ``"world"`` (the default; Blender's Normal pass), ``"camera"`` (OpenGL camera axes: +X right, +Y
  up, +Z towards the viewer) or ``"camera_opencv"`` (+X right, +Y down, +Z forward). A normal whose
  length is not within 0.5-1.5 (0 for the background, a black PNG pixel) means no normal there;
  the others are normalized, and a map whose normals mostly face away from the camera (pointing
  into the surface) is turned round as a whole.

A bad map (unreadable, of another size than its image, with NaN or ``-inf``, with negative depths,
or without a single valid pixel) raises :class:`~engine.errors.InputError` with one plain sentence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..cameras import Cameras
from ..errors import InputError

# Stored depths at or above this are "no depth": Blender's Z pass writes 1e10 where nothing was hit.
FAR_DEPTH = 1e10
# Default depth_unit_scale_factor for integer PNG depth maps: millimetres to metres (nerfstudio's default).
PNG_DEPTH_SCALE = 1e-3
DEPTH_ALONG = ("axis", "ray")
NORMAL_SPACES = ("world", "camera", "camera_opencv")
# EXR channel names tried in order, matched against a channel's full name or its last dotted parts.
DEPTH_CHANNELS = ("Depth.Z", "Z", "depth", "D", "Y", "R")
NORMAL_CHANNELS = (("Normal.X", "Normal.Y", "Normal.Z"), ("X", "Y", "Z"), ("R", "G", "B"))
# Camera axes of each normal space, in OpenGL camera axes (a diagonal flip).
_SPACE_FLIP = {"camera": np.array([1.0, 1.0, 1.0]), "camera_opencv": np.array([1.0, -1.0, -1.0])}


def read_frame_maps(root: Path, meta: dict[str, Any], frames: list[dict[str, Any]], cameras: Cameras
                    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """``(depths [N, H, W] or None, normals [N, H, W, 3] or None)`` of the ``frames`` of a camera file
    (``meta``, in the folder ``root``) seen by ``cameras``, in the engine's convention. A kind of map
    no frame names is ``None``; a frame without one gets zeros (no data). Raises :class:`InputError`."""
    has_depth = any("depth_file_path" in frame for frame in frames)
    has_normals = any("normal_file_path" in frame for frame in frames)
    if not (has_depth or has_normals):
        return None, None
    shape = (cameras.height, cameras.width)
    depths = np.zeros((len(frames), *shape), np.float32) if has_depth else None
    normals = np.zeros((len(frames), *shape, 3), np.float32) if has_normals else None
    for index, frame in enumerate(frames):
        camera = cameras[index].to("cpu")
        directions = camera.pixel_directions()[0].double()  # [H, W, 3]
        if depths is not None and "depth_file_path" in frame:
            cosines = (directions @ camera.forward[0].double()).numpy()
            depths[index] = read_depth(_map_path(root, frame["depth_file_path"], index), shape,
                                       scale=frame_setting(meta, frame, "depth_unit_scale_factor", None),
                                       along=frame_setting(meta, frame, "depth_along", "axis"), ray_cosines=cosines)
        if normals is not None and "normal_file_path" in frame:
            normals[index] = read_normals(_map_path(root, frame["normal_file_path"], index), shape,
                                          space=frame_setting(meta, frame, "normal_space", "world"),
                                          c2w=camera.c2w[0].double().numpy(), directions=directions.numpy())
    return (None if depths is None else torch.from_numpy(depths),
            None if normals is None else torch.from_numpy(normals))


def frame_setting(meta: dict[str, Any], frame: dict[str, Any], key: str, default: Any) -> Any:
    """The frame's ``key``, else the file's global one, else ``default``."""
    return frame.get(key, meta.get(key, default))


def _map_path(root: Path, file_path: Any, index: int) -> Path:
    if not isinstance(file_path, str) or not file_path:
        raise InputError(f"Frame {index} names a depth or normal map without a file path")
    return root / file_path


def read_depth(path: Path, shape: tuple[int, int], *, scale: float | None, along: str,
               ray_cosines: np.ndarray) -> np.ndarray:
    """The depth map at ``path`` as ``[H, W]`` float32 axis depths in world units (0 = no depth).

    Args:
        path: a ``.png`` (16-bit), ``.exr`` or ``.npy`` file.
        shape: ``(H, W)`` of the frame's image; the map must have this size.
        scale: ``depth_unit_scale_factor`` (``None``: 0.001 for integer PNGs, 1 for float files).
        along: ``"axis"`` or ``"ray"`` (see the module docstring).
        ray_cosines: ``[H, W]`` cosine between each pixel's ray and the optical axis (converts ray
            distances to axis depths).
    Raises:
        InputError: an unreadable or bad map (one sentence naming the file).
    """
    if along not in DEPTH_ALONG:
        raise InputError(f"depth_along must be one of {', '.join(DEPTH_ALONG)}, got {along!r} (for {path.name})")
    raw, is_integer = _read_array(path, channels=1)
    _check_shape(path, raw.shape[:2], shape, "Depth map")
    values = raw.astype(np.float64)
    if np.isnan(values).any() or np.isneginf(values).any():
        raise InputError(f"Depth map {path.name} contains NaN or negative-infinite values; mark missing depth with 0")
    if (values < 0).any():
        raise InputError(f"Depth map {path.name} has negative depths; depths are distances in front of the camera")
    valid = (values > 0) & (values < FAR_DEPTH)
    if not valid.any():
        raise InputError(f"Depth map {path.name} has no valid pixel: every depth is 0, infinite or background")
    factor = (PNG_DEPTH_SCALE if is_integer else 1.0) if scale is None else float(scale)
    if not np.isfinite(factor) or factor <= 0:
        raise InputError(f"depth_unit_scale_factor must be a positive number, got {scale!r} (for {path.name})")
    depth = np.where(valid, values * factor, 0.0)
    if along == "ray":
        depth = depth * ray_cosines
    return depth.astype(np.float32)


def read_normals(path: Path, shape: tuple[int, int], *, space: str, c2w: np.ndarray,
                 directions: np.ndarray) -> np.ndarray:
    """The normal map at ``path`` as ``[H, W, 3]`` float32 unit world-frame normals (0 = none).

    Args:
        path: a ``.png`` (8 or 16 bits), ``.exr`` or ``.npy`` file.
        shape: ``(H, W)`` of the frame's image.
        space: ``"world"``, ``"camera"`` or ``"camera_opencv"`` (see the module docstring).
        c2w: ``[4, 4]`` the frame's camera-to-world matrix (OpenGL).
        directions: ``[H, W, 3]`` world-frame unit directions of the pixel rays (a map whose normals
            mostly face along them, away from the camera, is turned round).
    Raises:
        InputError: an unreadable or bad map.
    """
    if space not in NORMAL_SPACES:
        raise InputError(f"normal_space must be one of {', '.join(NORMAL_SPACES)}, got {space!r} (for {path.name})")
    raw, is_integer = _read_array(path, channels=3)
    _check_shape(path, raw.shape[:2], shape, "Normal map")
    if is_integer:
        normals = raw.astype(np.float64) / float(np.iinfo(raw.dtype).max) * 2.0 - 1.0
    else:
        normals = raw.astype(np.float64)
    if not np.isfinite(normals).all():
        raise InputError(f"Normal map {path.name} contains NaN or infinite values")
    length = np.linalg.norm(normals, axis=-1, keepdims=True)
    valid = (length > 0.5) & (length < 1.5)
    if not valid.any():
        raise InputError(f"Normal map {path.name} has no valid normal (every vector is far from unit length)")
    normals = np.where(valid, normals / np.maximum(length, 1e-12), 0.0)
    if space != "world":
        normals = (normals * _SPACE_FLIP[space]) @ c2w[:3, :3].T
    facing = (normals * directions).sum(-1)[valid[..., 0]]
    if np.median(facing) > 0:  # a map whose normals point into the surface: the whole map is turned
        normals = -normals
    return normals.astype(np.float32)


def _check_shape(path: Path, found: tuple[int, ...], shape: tuple[int, int], kind: str) -> None:
    if tuple(found) != tuple(shape):
        raise InputError(f"{kind} {path.name} is {found[1]}x{found[0]} pixels but its image is {shape[1]}x{shape[0]}")


def _read_array(path: Path, channels: int) -> tuple[np.ndarray, bool]:
    """``(array, is_integer)``: ``[H, W]`` for ``channels=1``, ``[H, W, 3]`` for 3, as stored."""
    if not path.is_file():
        raise InputError(f"{'Depth' if channels == 1 else 'Normal'} map not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        array = _read_npy(path)
    elif suffix == ".exr":
        array = _read_exr(path, channels)
    elif suffix == ".png":
        array = _read_png(path, channels)
    else:
        raise InputError(f"Cannot read {path.name}: depth and normal maps must be .png, .exr or .npy files")
    if channels == 1 and array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    expected = 2 if channels == 1 else 3
    if array.ndim != expected or (channels == 3 and array.shape[2] < 3):
        kind = "one value" if channels == 1 else "three values"
        raise InputError(f"{path.name} holds an array of shape {array.shape}; expected {kind} per pixel")
    if channels == 3:
        array = array[..., :3]
    return array, bool(np.issubdtype(array.dtype, np.integer))


def _read_npy(path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise InputError(f"Cannot read {path.name}: it is not a numpy array file ({error})") from error
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise InputError(f"{path.name} holds {array.dtype} values, not numbers")
    return array


def _read_png(path: Path, channels: int) -> np.ndarray:
    try:
        image = Image.open(path)
        image.load()
    except (OSError, UnidentifiedImageError) as error:
        raise InputError(f"Cannot read {path.name}: it is missing, truncated or not an image") from error
    if channels == 1:
        if image.mode not in ("I;16", "I;16B", "I;16L", "I"):
            raise InputError(f"Depth map {path.name} is a {image.mode} PNG; depth PNGs must be 16-bit greyscale")
        return np.asarray(image).astype(np.uint16 if image.mode.startswith("I;16") else np.int64)
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] < 3:
        raise InputError(f"Normal map {path.name} is a {image.mode} image; normal maps need three colour channels")
    return array


def _read_exr(path: Path, channels: int) -> np.ndarray:
    import OpenEXR  # noqa: PLC0415 (only EXR maps need it)

    try:
        with OpenEXR.File(str(path), separate_channels=True) as file:
            found = {name: np.asarray(channel.pixels) for name, channel in file.channels().items()}
    except Exception as error:  # OpenEXR raises plain RuntimeError/OSError for every kind of bad file
        raise InputError(f"Cannot read {path.name}: it is not a readable OpenEXR file ({error})") from error
    if channels == 1:
        if len(found) == 1:
            return next(iter(found.values()))
        names = [_find_channel(found, wanted) for wanted in DEPTH_CHANNELS]
        name = next((n for n in names if n is not None), None)
        if name is None:
            raise InputError(f"Depth map {path.name} has no depth channel (a single channel, Z or Depth.Z); "
                             f"it has {', '.join(sorted(found))}")
        return found[name]
    for group in NORMAL_CHANNELS:
        names = [_find_channel(found, wanted) for wanted in group]
        if all(n is not None for n in names):
            return np.stack([found[n] for n in names], axis=-1)
    raise InputError(f"Normal map {path.name} has no normal channels (X Y Z, Normal.X/Y/Z or R G B); "
                     f"it has {', '.join(sorted(found))}")


def _find_channel(channels: dict[str, np.ndarray], wanted: str) -> str | None:
    """The channel called ``wanted`` or ending in ``.wanted`` (``ViewLayer.Depth.Z``), if any."""
    return next((name for name in sorted(channels) if name == wanted or name.endswith("." + wanted)), None)
