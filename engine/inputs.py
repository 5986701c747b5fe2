"""The input stage: any source -> the views, their masks, the object's hints and its region.

A job's ``dataset`` may be a posed folder (``transforms*.json``, or the json itself), a COLMAP
project or a folder of bare photos. :func:`prepare_inputs` turns each into the same
:class:`Inputs`, so that the pipeline after it does not know where the views came from:

* **photos / COLMAP project** -> cameras by structure-from-motion, an upright frame, the object's
  box and automatic masks (:mod:`engine.sfm.photos`), then read like a posed folder;
* **posed views with masks** (alpha or ``mask_path``) -> the region of interest from the masks
  (:func:`engine.roi.find_roi`);
* **posed views with depth maps and no masks** (RGB-D) -> the box of the depth samples
  (:func:`engine.roi.depth_roi`);
* **posed views without masks** (an object on a table) -> the object located by SfM points and
  automatic masks (:mod:`engine.sfm.object_hints`), its box the region; when that fails, a warning
  and the region the cameras frame (:func:`engine.roi.view_roi`);
* **automatic masks written by** ``poses`` -> masks for methods that need them; for the others only
  the start (hints), never a mask loss.

A user's ``region`` replaces the box; a box stored in the camera file cuts it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch

from .data.dataset import DatasetSplit
from .data.transforms import find_transforms, load_split
from .errors import InputError
from .progress import Progress
from .protocol import ReconstructJob
from .roi import Normalization, crop_to_region, depth_roi, find_roi, stored_region, view_roi
from .sfm.object_hints import ObjectHints, find_object_hints, stored_object_hints
from .sfm.photos import PhotoCameras, photo_dataset
from .sfm.poses import is_photo_folder
from .timings import Timings


@dataclass
class Inputs:
    """What a method reconstructs from.

    Attributes:
        split: the training views in the dataset's world frame, on the job's device; ``masks`` is
            ``None`` when the method fits the images without masks; ``depths``/``normals`` hold the
            frames' depth and normal maps when the camera file names them (``engine.data.depth_maps``).
        normalization: the region of interest and the map to the unit volume.
        hints: for views without masks, where the object and its table are (world frame), else ``None``.
        cameras: the cameras recovered from photos (copied into the output as ``cameras/``), else ``None``.
    """

    split: DatasetSplit
    normalization: Normalization
    hints: ObjectHints | None = None
    cameras: PhotoCameras | None = None


def check_dataset(dataset: str | Path) -> None:
    """Raise :class:`InputError` unless ``dataset`` is something the input stage reads: a folder
    with a training camera file, a COLMAP project or photos, or a training camera file itself.
    Cheap (no image is read), so a job can check its input before announcing any work."""
    path = Path(dataset)
    if not path.exists():
        raise InputError(f"Dataset not found: {path}")
    if path.is_file():
        find_transforms(path, "train")  # raises for a mesh, an image, another split's camera file
    elif find_transforms(path, "train") is None and not is_photo_folder(path):
        raise InputError(f"{path} holds neither a camera file (transforms_train.json or transforms.json) "
                         "nor photos (JPEG/PNG)")


def prepare_inputs(job: ReconstructJob, needs_masks: bool, device: torch.device, progress: Progress,
                   timings: Timings) -> Inputs:
    """The :class:`Inputs` of ``job`` for a method that does (``needs_masks``) or does not need
    masks; stages ``poses``, ``load`` and ``region`` are timed. Raises :class:`InputError`."""
    with timings("poses"):
        cameras = photo_dataset(job.dataset, progress)
    dataset = str(cameras.dataset) if cameras is not None else job.dataset
    with timings("load"):
        progress.update("loading images", 0, 1)
        split = load_split(dataset, "train", scale=job.image_scale, max_views=job.max_views,
                           require_masks=needs_masks).to(device)
        progress.update("loading images", 1, 1)
    with timings("region"):
        hints = None
        if not needs_masks:
            hints = stored_object_hints(dataset, split)
            if hints is not None:  # automatic masks from the photos: a start for the method, not a truth
                split = replace(split, masks=None)
                progress.log("The automatic masks only start the method; it fits the photos without them")
            elif split.masks is None and split.depths is None:
                hints = object_hints_or_none(split, progress)
        if split.masks is not None:
            normalization = find_roi(split, on_step=progress.stage("finding the object"))
        elif split.depths is not None and hints is None:
            normalization = depth_roi(split)
        elif hints is not None:
            normalization = Normalization.from_box(torch.from_numpy(hints.box_min), torch.from_numpy(hints.box_max))
        else:
            normalization = view_roi(split)
        # The hints' box already holds the stored region, grown to take in the table around the foot.
        region = job.region or (None if hints is not None else stored_region(dataset))
        normalization = crop_to_region(normalization, region, job.region is not None)
    return Inputs(split, normalization, hints, cameras)


def object_hints_or_none(split: DatasetSplit, progress: Progress) -> ObjectHints | None:
    """:func:`engine.sfm.object_hints.find_object_hints` for views without masks, or ``None`` (with
    a warning saying why) when SfM or the table search fails: the method then starts blind."""
    try:
        return find_object_hints(split, progress)
    except InputError as error:
        progress.log(f"Could not locate the object on its table ({error}); starting from the cameras alone",
                     "warning")
        return None

