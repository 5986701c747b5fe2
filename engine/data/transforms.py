"""Load posed images described by a ``transforms*.json`` file.

Accepted flavours:

* NeRF-synthetic: a global ``camera_angle_x`` (horizontal field of view, radians; optional
  ``camera_angle_y``), principal point at the image centre.
* instant-ngp / nerfstudio: ``fl_x``, ``fl_y``, ``cx``, ``cy``, ``w``, ``h`` given globally or per
  frame (per-frame values win). When the images are a uniformly resized copy of the size named
  by ``w``/``h``, the intrinsics are rescaled to match. Distortion coefficients are not applied.

Every frame has ``transform_matrix`` (camera-to-world, OpenGL convention: camera looks down -Z,
+Y up; nerfstudio and instant-ngp use the same) and ``file_path``, relative to the json file, with
or without its extension. An optional ``mask_path`` names a greyscale mask (object = white);
otherwise an RGBA image's alpha is the mask. Images without alpha and without ``mask_path`` give
``masks = None``.

Every problem with the files raises :class:`~engine.errors.InputError` with a message that names
the file and says what is wrong.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from ..cameras import Cameras
from ..errors import InputError
from .dataset import DatasetSplit
from .depth_maps import read_frame_maps

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
MIN_VIEWS = 3


MESH_SUFFIXES = (".ply", ".obj", ".glb", ".gltf", ".stl", ".off", ".fbx", ".dae", ".usd", ".usdz")
SPLIT_FILE = re.compile(r"transforms_(?P<split>.+)\.json", re.IGNORECASE)


def find_transforms(dataset: Path, split: str) -> Path | None:
    """The json that describes ``split`` in ``dataset`` (a folder or a json file), or ``None``.

    ``train`` falls back to ``transforms.json`` (all frames) when there is no
    ``transforms_train.json``; other splits need ``transforms_<split>.json``. A json file given
    as the dataset is the split its name says (``transforms_test.json``: ``test``), any other
    json name counts as ``train``.

    Raises:
        InputError: ``dataset`` is a file that is not a camera file (a mesh, an image, ...), or
            the camera file of another split when ``split`` is ``train`` (training on held-out
            views by mistake).
    """
    dataset = Path(dataset)
    if dataset.is_file():
        named = split_of_camera_file(dataset)
        if split == "train" and named != "train":
            raise InputError(
                f"{dataset.name} holds the '{named}' views, not the training views; give the dataset folder "
                f"{dataset.parent} (or its transforms_train.json) to train on the training views"
            )
        return dataset if named == split else None
    named = dataset / f"transforms_{split}.json"
    if named.is_file():
        return named
    if split == "train" and (dataset / "transforms.json").is_file():
        return dataset / "transforms.json"
    return None


def split_of_camera_file(path: Path) -> str:
    """The split a camera file given by name holds (``transforms_<split>.json`` -> ``split``, any
    other ``.json`` -> ``train``); raises :class:`InputError` naming what a non-json file looks like."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        match = SPLIT_FILE.fullmatch(path.name)
        return "train" if match is None else match["split"].lower()
    expected = ("a dataset folder (with transforms_train.json or transforms.json), its transforms_train.json, "
                "or a folder of photos")
    if suffix in MESH_SUFFIXES:
        raise InputError(f"{path} is a mesh ({suffix[1:].upper()}), not a dataset: give {expected}")
    if suffix in IMAGE_SUFFIXES:
        raise InputError(f"{path} is one image, not a dataset: give the folder of photos it is in ({path.parent}), "
                         "or a dataset folder with transforms_train.json or transforms.json")
    raise InputError(f"{path} is not a camera file (transforms*.json): give {expected}")


def load_split(
    dataset: str | Path,
    split: str = "train",
    *,
    scale: float = 1.0,
    max_views: int | None = None,
    require_masks: bool = False,
) -> DatasetSplit:
    """Read one split of a posed dataset into memory.

    Args:
        dataset: a dataset folder (``transforms_<split>.json`` or ``transforms.json`` inside) or a
            json file.
        split: ``"train"`` or ``"test"``.
        scale: resize factor for the images, in (0, 1] (0.5 halves each side; area filtering on
            premultiplied colours so that object borders do not darken).
        max_views: keep at most this many frames, evenly spaced through the file's order.
        require_masks: raise if the images carry no object mask.
    Returns:
        The split, on the CPU, in the world frame of the json file.
    """
    dataset = Path(dataset)
    if not dataset.exists():
        raise InputError(f"Dataset not found: {dataset}")
    path = find_transforms(dataset, split)
    if path is None:
        raise InputError(
            f"No camera file for the '{split}' split in {dataset}: expected transforms_{split}.json"
            + (" or transforms.json" if split == "train" else "")
        )
    if not 0.0 < scale <= 1.0:
        raise InputError(f"The image scale must be in (0, 1], got {scale}")
    if max_views is not None and max_views < MIN_VIEWS:
        raise InputError(f"A limit of {max_views} view(s) leaves too few: at least {MIN_VIEWS} are needed")
    meta = _read_json(path)
    frames = meta.get("frames")
    if not isinstance(frames, list) or not frames:
        raise InputError(f"{path.name} lists no frames")
    if max_views is not None and max_views < len(frames):
        keep = np.linspace(0, len(frames) - 1, max_views).round().astype(int)
        frames = [frames[i] for i in sorted(set(keep.tolist()))]
    if len(frames) < MIN_VIEWS:
        raise InputError(f"{path.name} has {len(frames)} view(s); at least {MIN_VIEWS} are needed")

    root = path.parent
    images, masks, c2ws, intrinsics, names = [], [], [], [], []
    size: tuple[int, int] | None = None
    for index, frame in enumerate(frames):
        name = str(frame.get("file_path", f"frame {index}"))
        image_path = _resolve_image(root, frame.get("file_path"), index)
        rgb, alpha = _read_image(image_path)
        if "mask_path" in frame:
            alpha = _read_mask(_resolve_image(root, frame["mask_path"], index), rgb.shape[:2])
        if size is None:
            size = (rgb.shape[1], rgb.shape[0])
        elif (rgb.shape[1], rgb.shape[0]) != size:
            raise InputError(
                f"Images have different sizes: {names[0]} is {size[0]}x{size[1]} but "
                f"{image_path.name} is {rgb.shape[1]}x{rgb.shape[0]}. Resize them to one size."
            )
        if masks and (alpha is None) != (masks[0] is None):
            raise InputError(f"Some images have masks and some do not ({image_path.name}); give all or none")
        images.append(rgb)
        masks.append(alpha)
        c2ws.append(_read_pose(frame, name, path.name))
        intrinsics.append(_read_intrinsics(meta, frame, size, path.name))
        names.append(image_path.relative_to(root).as_posix() if image_path.is_relative_to(root) else name)

    width, height = size
    image_t = torch.from_numpy(np.stack(images))  # [N, H, W, 3]
    mask_t = None if masks[0] is None else torch.from_numpy(np.stack(masks))  # [N, H, W]
    if require_masks and mask_t is None:
        raise InputError(
            f"The images in {root} have no object masks (no alpha channel, no mask_path); "
            "this method needs them"
        )
    if mask_t is not None:
        empty = [names[i] for i in range(len(names)) if float(mask_t[i].max()) < 0.5]
        if empty:
            raise InputError(
                f"{len(empty)} mask(s) show no object ({', '.join(empty[:5])}"
                f"{', ...' if len(empty) > 5 else ''}); remove those views or fix their alpha"
            )
    k = torch.tensor(intrinsics, dtype=torch.float32)  # [N, 4] fx, fy, cx, cy
    cameras = Cameras(torch.tensor(np.stack(c2ws), dtype=torch.float32), k[:, 0], k[:, 1], k[:, 2], k[:, 3],
                      width, height)
    depths, normals = read_frame_maps(root, meta, frames, cameras)
    result = DatasetSplit(image_t, mask_t, cameras, names, depths, normals)
    return result if scale == 1.0 else resize_split(result, scale)


def resize_split(split: DatasetSplit, scale: float) -> DatasetSplit:
    """The split with images and masks resized by ``scale`` (antialiased, premultiplied alpha); depth
    and normal maps take the nearest pixel (averaging across an object's edge would invent depths)."""
    cameras = split.cameras.scaled(scale)
    size = (cameras.height, cameras.width)
    alpha = torch.ones_like(split.images[..., :1]) if split.masks is None else split.masks[..., None]
    rgba = torch.cat([split.images * alpha, alpha], dim=-1).permute(0, 3, 1, 2)  # [N, 4, H, W]
    rgba = F.interpolate(rgba, size=size, mode="bilinear", antialias=True, align_corners=False)
    rgba = rgba.permute(0, 2, 3, 1).clamp(0.0, 1.0)  # [N, h, w, 4]
    new_alpha = rgba[..., 3]
    images = rgba[..., :3] / new_alpha.clamp_min(1e-6)[..., None]
    images = torch.where(new_alpha[..., None] > 1e-6, images, torch.zeros_like(images)).clamp(0.0, 1.0)
    masks = None if split.masks is None else new_alpha.contiguous()
    depths, normals = split.depths, split.normals
    if depths is not None:  # the source pixel nearest to each new pixel's centre
        depths = F.interpolate(depths[:, None], size=size, mode="nearest-exact")[:, 0]
    if normals is not None:
        normals = F.interpolate(normals.permute(0, 3, 1, 2), size=size, mode="nearest-exact").permute(0, 2, 3, 1)
        normals = normals.contiguous()
    return DatasetSplit(images.contiguous(), masks, cameras, split.names, depths, normals)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"Cannot read {path}: {error}") from error
    except json.JSONDecodeError as error:
        raise InputError(f"{path.name} is not valid JSON: {error}") from error
    if not isinstance(meta, dict):
        raise InputError(f"{path.name} must hold a JSON object with 'frames'")
    return meta


def _resolve_image(root: Path, file_path: Any, index: int) -> Path:
    if not isinstance(file_path, str) or not file_path:
        raise InputError(f"Frame {index} has no file_path")
    base = root / file_path
    if base.is_file():
        return base
    for suffix in IMAGE_SUFFIXES:
        for candidate in (base.with_name(base.name + suffix), base.with_name(base.name + suffix.upper())):
            if candidate.is_file():
                return candidate
    raise InputError(f"Image not found for frame {index}: {base} (tried the extensions {', '.join(IMAGE_SUFFIXES)})")


def _open(path: Path) -> Image.Image:
    try:
        image = Image.open(path)
        image.load()
    except (OSError, UnidentifiedImageError) as error:
        raise InputError(f"Cannot read image {path}: it is missing, truncated or not an image") from error
    return image


def _read_image(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """``rgb [H, W, 3]`` float32 in [0, 1] and ``alpha [H, W]`` (or ``None`` without alpha)."""
    image = _open(path)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    array = np.asarray(image.convert("RGBA" if has_alpha else "RGB"), dtype=np.float32) / 255.0
    if has_alpha:
        return np.ascontiguousarray(array[..., :3]), np.ascontiguousarray(array[..., 3])
    return array, None


def _read_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    mask = np.asarray(_open(path).convert("L"), dtype=np.float32) / 255.0
    if mask.shape != shape:
        raise InputError(f"Mask {path.name} is {mask.shape[1]}x{mask.shape[0]}, its image {shape[1]}x{shape[0]}")
    return mask


def _read_pose(frame: dict[str, Any], name: str, file_name: str) -> np.ndarray:
    """The frame's 4x4 camera-to-world matrix, checked to be finite and rigid."""
    try:
        c2w = np.asarray(frame["transform_matrix"], dtype=np.float64)
    except KeyError as error:
        raise InputError(f"Frame {name} in {file_name} has no transform_matrix") from error
    except (TypeError, ValueError) as error:
        raise InputError(f"The transform_matrix of frame {name} is not a 4x4 matrix of numbers") from error
    if c2w.shape == (3, 4):
        c2w = np.vstack([c2w, [0.0, 0.0, 0.0, 1.0]])
    if c2w.shape != (4, 4):
        raise InputError(f"The transform_matrix of frame {name} has shape {c2w.shape}, expected 4x4")
    if not np.isfinite(c2w).all():
        raise InputError(f"The transform_matrix of frame {name} contains NaN or infinite values")
    rot = c2w[:3, :3]
    if not np.allclose(c2w[3], [0.0, 0.0, 0.0, 1.0], atol=1e-5):
        raise InputError(f"The transform_matrix of frame {name} is not rigid: its last row is not 0 0 0 1")
    if not np.allclose(rot.T @ rot, np.eye(3), atol=2e-3) or np.linalg.det(rot) < 0:
        raise InputError(
            f"The transform_matrix of frame {name} is not rigid: its rotation part has scale, shear or a "
            "mirror. Camera-to-world matrices must be rotation + translation."
        )
    return c2w


def _read_intrinsics(meta: dict[str, Any], frame: dict[str, Any], size: tuple[int, int], file_name: str) -> list[float]:
    """``[fx, fy, cx, cy]`` in pixels of the image as loaded (``size`` = (width, height))."""
    width, height = size

    def get(key: str) -> Any:
        return frame.get(key, meta.get(key))

    try:
        if get("fl_x") is not None:
            fx = float(get("fl_x"))
            fy = float(get("fl_y") if get("fl_y") is not None else fx)
            ref_w = float(get("w") or width)
            ref_h = float(get("h") or height)
            cx = float(get("cx") if get("cx") is not None else ref_w / 2)
            cy = float(get("cy") if get("cy") is not None else ref_h / 2)
            sx, sy = width / ref_w, height / ref_h
            if abs(sx - sy) > 0.01 * max(sx, sy):
                raise InputError(
                    f"{file_name} says the images are {ref_w:g}x{ref_h:g} but they are {width}x{height}, "
                    "a different aspect ratio"
                )
            fx, fy, cx, cy = fx * sx, fy * sy, cx * sx, cy * sy
        elif get("camera_angle_x") is not None:
            fx = 0.5 * width / math.tan(0.5 * float(get("camera_angle_x")))
            angle_y = get("camera_angle_y")
            fy = fx if angle_y is None else 0.5 * height / math.tan(0.5 * float(angle_y))
            cx, cy = width / 2.0, height / 2.0
        else:
            raise InputError(f"{file_name} gives no intrinsics: add camera_angle_x or fl_x/fl_y/cx/cy/w/h")
    except (TypeError, ValueError) as error:
        raise InputError(f"{file_name} has intrinsics that are not numbers: {error}") from error
    values = [fx, fy, cx, cy]
    if not all(math.isfinite(v) for v in values) or fx <= 0 or fy <= 0:
        raise InputError(f"{file_name} has invalid intrinsics (fx={fx}, fy={fy}, cx={cx}, cy={cy})")
    return values
