"""Where the object and its table are, for posed photos without masks (mask-free NeuS's start).

Given cameras (from ``transforms.json``) say where the views are but not where the object ends
and the table begins. This runs structure-from-motion on the views only for its sparse points:
the SfM cameras are aligned to the given ones by the similarity of their centres
(:func:`engine.sfm.align.fit_similarity`), the points follow, and :mod:`engine.sfm.scene` finds
the table (the dominant plane under the cameras) and the object's box on it. The automatic masks
of :mod:`engine.sfm.foreground` then outline the object in every view.

Nothing here is trusted as ground truth: the masks miss thin parts and keep some table (see
BENCHMARKS.md), so they are a start for a method that fits the images, never a mask loss.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pycolmap
import torch
from PIL import Image

from ..data.dataset import DatasetSplit
from ..data.transforms import find_transforms
from ..errors import InputError
from ..progress import Progress
from ..roi import Normalization
from .align import Similarity, fit_similarity
from .colmap import run_sfm
from .foreground import estimate_masks
from .scene import upright_scene

# The returned box grows by this share of the SfM box on every side (the SfM box comes from
# percentiles of the sparse points and may cut a thin tip) and reaches as far below the table top,
# so that a method sees the table around the object's foot (and can tell the two apart).
BOX_MARGIN_SHARE = 0.1


@dataclass(frozen=True)
class ObjectHints:
    """The object on its table, in the frame of the cameras they were found for.

    Attributes:
        masks: ``[N, H, W]`` float automatic object masks (1 = object), one per view.
        up: ``[3]`` unit normal of the table top, pointing to the cameras' side.
        ground: ``[3]`` a point on the table top (under the object's centre).
        box_min, box_max: ``[3]`` each, an axis-aligned box holding the object and a slab of
            table under it (see ``BOX_MARGIN_SHARE``).
    """

    masks: torch.Tensor
    up: np.ndarray
    ground: np.ndarray
    box_min: np.ndarray
    box_max: np.ndarray

    def to_unit(self, normalization: Normalization) -> ObjectHints:
        """The same hints in ``normalization``'s unit volume."""
        def point(p: np.ndarray) -> np.ndarray:
            return normalization.to_unit(torch.from_numpy(p)).numpy()
        return replace(self, ground=point(self.ground), box_min=point(self.box_min), box_max=point(self.box_max))


def find_object_hints(split: DatasetSplit, progress: Progress) -> ObjectHints:
    """:class:`ObjectHints` for the posed views of ``split`` (world frame, any scale).

    Raises:
        InputError: SfM registers too few views, or finds no table plane under the object (the
            message says which).
    """
    device, split = split.images.device, split.to("cpu")
    with tempfile.TemporaryDirectory(prefix="meshlift-hints-") as folder:
        images = Path(folder) / "images"
        images.mkdir()
        names = [f"{i:05d}.png" for i in range(len(split))]
        for name, image in zip(names, split.images, strict=True):
            Image.fromarray((image.numpy() * 255 + 0.5).astype(np.uint8)).save(images / name)
        model = pycolmap.Reconstruction(run_sfm(images, Path(folder) / "sfm", progress))
    registered = {model.image(i).name: model.image(i) for i in model.reg_image_ids()}
    index = [i for i, name in enumerate(names) if name in registered]
    sfm_centres = np.stack([registered[names[i]].projection_center() for i in index])  # [M, 3] SfM frame
    given_centres = split.cameras.centers[index].double().numpy()  # [M, 3] world frame
    to_world = fit_similarity(sfm_centres, given_centres)
    points = to_world.points(np.array([p.xyz for p in model.points3D.values()]).reshape(-1, 3))  # [P, 3]
    scene = upright_scene(split.cameras, points)
    if not scene.ground:
        raise InputError("No table or floor plane found under the object in the SfM points")
    upright = scene.to_upright
    cameras = upright.cameras(split.cameras)
    masks = estimate_masks(DatasetSplit(split.images, None, cameras, split.names),
                           torch.tensor(scene.box_min), torch.tensor(scene.box_max), True,
                           progress.stage("finding the object in the photos"))
    back = inverse(upright)
    lo, hi = table_box(np.array(scene.box_min), np.array(scene.box_max))
    corners = back.points(np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]))
    return ObjectHints(masks.to(device), back.rotation[:, 2].copy(), back.points(np.zeros((1, 3)))[0],
                       corners.min(0), corners.max(0))


def stored_object_hints(dataset: str | Path, split: DatasetSplit) -> ObjectHints | None:
    """The hints that ``python -m engine poses`` already wrote for ``dataset`` (automatic masks,
    now ``split.masks``, in an upright frame with the table at z = 0 and the object's
    ``region_of_interest`` on it), or ``None`` when its masks are not automatic or no table was found."""
    path = find_transforms(Path(dataset), "train")
    meta = json.loads(path.read_text()) if path is not None else {}
    sfm, box = meta.get("meshlift_sfm") or {}, meta.get("region_of_interest")
    if split.masks is None or sfm.get("masks") != "auto" or not sfm.get("ground") or box is None:
        return None
    lo, hi = table_box(np.array(box["min"], dtype=np.float64), np.array(box["max"], dtype=np.float64))
    return ObjectHints(split.masks, np.array([0.0, 0.0, 1.0]), np.zeros(3), lo, hi)


def table_box(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The object's box ``[lo, hi]`` in an upright frame (table top at z = 0) grown by
    ``BOX_MARGIN_SHARE`` on every side, which also takes in a slab of the table under it."""
    margin = BOX_MARGIN_SHARE * (hi - lo)
    return lo - margin, hi + margin


def inverse(similarity: Similarity) -> Similarity:
    """The similarity undoing ``similarity``."""
    return Similarity.from_matrix(np.linalg.inv(similarity.matrix()))
