"""The "poses" stage: a folder of photos -> ``transforms.json`` with cameras, masks and a box.

``recover_poses(image_dir, out_dir)`` writes into ``out_dir``:

* ``transforms.json``: the registered views in the engine's convention (instant-ngp style
  per-frame ``fl_x, fl_y, cx, cy, w, h``), in the upright frame of :mod:`engine.sfm.scene`
  (+Z up, object on the ground at the origin, about ``OBJECT_SIZE`` units across), loadable by
  :func:`engine.data.transforms.load_split`. ``file_path`` is relative to ``out_dir`` when the
  image lies inside it (undistorted copies) and absolute otherwise. Extra keys:
  ``region_of_interest`` (``min``/``max``: the object's box, bottom on the ground) and
  ``meshlift_sfm`` (image counts, the names left out, ``colmap_to_world``: the 4x4 similarity
  from the COLMAP model's frame to this one, ``ground``, the mask source).
* ``sparse/0``: the COLMAP model, in COLMAP's own frame (COLMAP's feature and match database is
  scratch, not kept).
* ``undistorted/``: undistorted copies of the images and their model, when the lens needs it.
* ``masks/NAME.png``: object masks, unless the images carry alpha or masks are turned off.

``python -m engine poses`` runs :func:`poses_task` through :func:`engine.jobs.run_task`, like a
reconstruction: an output folder that appears whole or not at all, plus the job's ``log.txt``.

An existing COLMAP project is used instead of running SfM when ``image_dir`` holds
``sparse/0`` (images beside it or in ``images/``), or ``sparse`` is given.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..cameras import Cameras
from ..data.transforms import IMAGE_SUFFIXES, load_split
from ..errors import InputError
from ..output import OutputDir
from ..progress import Progress
from .colmap import list_images, read_model, run_sfm, undistort_if_needed
from .foreground import estimate_masks
from .scene import UprightScene, upright_scene


def find_colmap_project(folder: Path) -> tuple[Path, Path] | None:
    """``(image_dir, model_dir)`` of a COLMAP project in ``folder`` (``sparse/0`` with the images
    in ``images/`` or in ``folder`` itself), or ``None``."""
    model = folder / "sparse" / "0"
    if not (model / "cameras.bin").is_file() and not (model / "cameras.txt").is_file():
        return None
    images = folder / "images"
    return (images if images.is_dir() else folder), model


def recover_poses(image_dir: str | Path, out_dir: str | Path, progress: Progress, masks: str = "auto",
                  sparse: str | Path | None = None) -> Path:
    """Cameras for the photos in ``image_dir``, written as described in the module docstring.

    Args:
        image_dir: a folder of JPEG/PNG photos of one size (or a COLMAP project, see above).
        out_dir: where to write; created if needed, files in it are replaced.
        progress: progress stages and cancellation.
        masks: ``"auto"`` (estimate when the images have no alpha), ``"none"``, or a folder of
            masks named like the images (``NAME.png`` or ``STEM.png``; white = object).
        sparse: an existing COLMAP model folder for these images (skips SfM).
    Returns:
        The path of ``transforms.json``.
    """
    image_dir, out_dir = Path(image_dir).absolute(), Path(out_dir).absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    project = find_colmap_project(image_dir) if sparse is None else (image_dir, Path(sparse).absolute())
    if project is not None:
        image_dir, given_model = project
        progress.log(f"Using the COLMAP model in {given_model}")
    else:
        given_model = run_sfm(image_dir, out_dir, progress)
    model_dir, images = undistort_if_needed(given_model, image_dir, out_dir, progress)
    total = len(list_images(image_dir))
    model = read_model(model_dir, images)
    scene = upright_scene(model.cameras, model.points)
    cameras = scene.to_upright.cameras(model.cameras)
    left_out = sorted(set(list_images(image_dir)) - set(model.names)) if images == image_dir else []
    meta = {
        "region_of_interest": {"min": list(scene.box_min), "max": list(scene.box_max)},
        "meshlift_sfm": {
            "images": total, "registered": len(model.names), "left_out": left_out,
            "colmap_to_world": scene.to_upright.matrix().tolist(), "ground": scene.ground,
            "sparse_model": relative_or_absolute(given_model, out_dir), "masks": "none",
        },
        "frames": [frame(cameras, i, images / name, out_dir) for i, name in enumerate(model.names)],
    }
    path = out_dir / "transforms.json"
    path.write_text(json.dumps(meta, indent=1))
    if masks != "none":
        meta["meshlift_sfm"]["masks"] = add_masks(path, meta, scene, masks, progress)
        path.write_text(json.dumps(meta, indent=1))
    return path


def poses_task(image_dir: str | Path, masks: str = "auto", sparse: str | Path | None = None
               ) -> Callable[[Progress, OutputDir], dict[str, Any]]:
    """:func:`recover_poses` as a task for :func:`engine.jobs.run_task`: written into the output's
    staging folder and committed; its result is ``transforms.json`` and the ``meshlift_sfm`` summary."""
    def run(progress: Progress, output: OutputDir) -> dict[str, Any]:
        with output as folder:
            path = recover_poses(image_dir, folder, progress, masks=masks, sparse=sparse)
            summary = json.loads(path.read_text())["meshlift_sfm"]
            progress.check()
            final = output.commit()
        return {"files": {"transforms": str(final / path.name)}, "report": summary}

    return run


def frame(cameras: Cameras, index: int, image: Path, out_dir: Path) -> dict:
    """One ``frames[]`` entry: pose (OpenGL camera-to-world), intrinsics in pixels, image path."""
    return {
        "file_path": relative_or_absolute(image, out_dir),
        "transform_matrix": cameras.c2w[index].double().tolist(),
        "fl_x": float(cameras.fx[index]), "fl_y": float(cameras.fy[index]),
        "cx": float(cameras.cx[index]), "cy": float(cameras.cy[index]),
        "w": cameras.width, "h": cameras.height,
    }


def relative_or_absolute(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` when inside it, else absolute (POSIX separators)."""
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_posix()


def add_masks(path: Path, meta: dict, scene: UprightScene, masks: str, progress: Progress) -> str:
    """Give every frame a ``mask_path`` (user masks or estimated ones written to ``masks/``);
    returns the mask source (``alpha``, ``user`` or ``auto``)."""
    split = load_split(path)
    if split.masks is not None:
        return "alpha"
    if masks != "auto":
        folder = Path(masks).absolute()
        for entry in meta["frames"]:
            entry["mask_path"] = relative_or_absolute(user_mask(folder, Path(entry["file_path"]).name), path.parent)
        return "user"
    if not scene.ground:
        progress.log("No ground plane found under the object: the automatic masks are only its box", "warning")
    estimated = estimate_masks(split, torch.tensor(scene.box_min), torch.tensor(scene.box_max), scene.ground,
                               progress.stage("finding the object in the photos"))
    folder = path.parent / "masks"
    folder.mkdir(exist_ok=True)
    for entry, mask in zip(meta["frames"], estimated, strict=True):
        name = f"{Path(entry['file_path']).stem}.png"
        Image.fromarray((mask.numpy() * 255).astype(np.uint8), "L").save(folder / name)
        entry["mask_path"] = f"masks/{name}"
    return "auto"


def user_mask(folder: Path, image_name: str) -> Path:
    """The mask for ``image_name`` in ``folder``: ``NAME.png``, ``STEM.png`` or ``STEM`` with any
    image extension."""
    stem = Path(image_name).stem
    candidates = [folder / f"{image_name}.png", *(folder / f"{stem}{s}" for s in IMAGE_SUFFIXES)]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise InputError(f"No mask for {image_name} in {folder} (looked for {image_name}.png and {stem}.png)")


def is_photo_folder(dataset: str | Path) -> bool:
    """Whether ``dataset`` is a folder of images without camera files (a job for :func:`recover_poses`)."""
    folder = Path(dataset)
    if not folder.is_dir() or any(folder.glob("transforms*.json")):
        return False
    return find_colmap_project(folder) is not None or bool(list_images(folder))

