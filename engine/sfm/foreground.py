"""Automatic object masks for opaque photos of an object standing on a table or floor.

Photos are taken as they come: exposure and white balance change from one to the next, the object
may be glossy (highlights that move with the view) and a sun casts hard shadows on the table. The
masks rest on what does not change with the light. Which cue decides what:

* **The sparse points** (:mod:`engine.sfm.scene`): the object's box is the SfM points above the
  table that nearly every camera keeps in frame. A pixel whose ray misses the box is background.
* **The table around the box** (:mod:`engine.sfm.exposure`): each photo's exposure and white
  balance (a gain per channel) are found on a ring of table points around the box and corrected
  before anything is compared, and the table's own spread across the corrected views sets the
  colour tolerance (``TOLERANCE_PER_SPREAD`` times it, within ``MIN_TOLERANCE`` and
  ``MAX_TOLERANCE``): as tight as the photos allow, so that an object colour rarely passes for the
  table behind it.
* **The table plane's colour consistency** (:mod:`engine.sfm.plane_test`): a pixel whose table
  point the other views see in the same colour is table; this is the only cue that calls a pixel
  inside the box background. A cast shadow is the table, darker but the same from every view, so
  it passes as table wherever the other views see it; a highlight moves with the view and never
  matches the table behind it; a shadow falling on the object is the object's colour, darker, and
  is kept like any object colour.
* **Object colours** (from the second pass): a pixel the plane test calls table stays object when
  its colour is far more typical of the previous pass's object than of its background (a white leg
  in front of the white leg that the other views see).
* **Clean-up** (:func:`clean`): specks removed, holes up to ``MAX_FILLED_HOLE_SHARE`` of the image
  filled (bigger ones are the table seen between legs or under a belly), small islands dropped.
* **The views' agreement**: the masks of all views are carved into a visual hull, and the final
  masks are that hull's silhouettes: what one view could not rule out (the sky behind the object
  in a low view) but the others carved away is dropped. Every view is trusted: with the
  tolerance tied to the table's spread the views rarely miss object pixels, and a hull that lets
  one view disagree keeps blobs of background that only one view could check (bunny-tabletop-studio
  hull Chamfer-L1 0.0243 against 0.0205, spot-tabletop 0.0128 against 0.0121).

This runs ``PASSES`` times: the first pass takes the object's box as what may hide a table point
from a view, later passes the hull of the previous masks (tighter, so more table points can be
checked). The occluder's bottom ``CLEAR_HEIGHT_SHARE`` of the box height is ignored: lines of sight
that graze the table (under a belly, between legs) count as clear, so the table under the object
can be checked by the low views that see it. Everything runs at ``WORK_SIZE`` pixels on the longest
side and the masks are scaled back up. Without a ground plane only the box test applies (a coarse
mask). BENCHMARKS.md ("Photos under real light, issue 20") has the measurements behind each choice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
import trimesh
from scipy import ndimage

from ..carving import hull_mesh
from ..data.dataset import DatasetSplit
from ..data.transforms import resize_split
from ..render import rasterize
from .exposure import apply_gains, hide_behind_box, sample_views, table_ring, table_spread, view_gains
from .plane_test import GROUND_REACH, blur, table_pixels

WORK_SIZE = 400
# The colour tolerance: this many times the table's spread across the views, within the bounds.
# On spot-tabletop the spread is 0.0034 (sRGB) over the views that see each table point past the
# box (0.0070 over all those that have it in the picture, the factor 5 then), so the tolerance is
# 0.034; the fixed 0.08 used before let 8.7% of the glossy bunny's pixels pass for the table
# behind them (0.6% with the spread).
TOLERANCE_PER_SPREAD = 10.0
MIN_TOLERANCE, MAX_TOLERANCE = 0.02, 0.08
# Islands smaller than this share of the largest one are dropped.
MIN_ISLAND_SHARE = 0.1
COLOUR_BINS = 32
# Pixels this far inside / outside the previous pass's silhouettes train the colour histograms.
SURE_INSIDE_PIXELS = 3
SURE_OUTSIDE_PIXELS = 6
# Holes in a view's mask up to this share of the image are filled (object pixels whose colour the
# ground behind happens to share); bigger holes are the ground seen through the object (between
# the legs, under a belly) and stay open.
MAX_FILLED_HOLE_SHARE = 0.0013
PASSES = 3
HULL_RESOLUTION = 64
# The occluder's lowest share of the box height is ignored (see the module docstring).
CLEAR_HEIGHT_SHARE = 0.15


def estimate_masks(split: DatasetSplit, box_min: torch.Tensor, box_max: torch.Tensor, ground: bool,
                   on_view: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """``[N, H, W]`` float masks (1 = object) for the views of ``split`` (cameras in the upright
    frame of :mod:`engine.sfm.scene`), the object's box ``box_min``/``box_max`` (``[3]`` each,
    same frame) and whether ``z = 0`` is a real ground plane. ``on_view(step, total)`` counts
    views over all ``PASSES``."""
    factor = min(1.0, WORK_SIZE / max(split.cameras.width, split.cameras.height))
    small = split if factor == 1.0 else resize_split(split, factor)
    *_, last = mask_passes(small, box_min.float(), box_max.float(), ground, on_view)
    result = last.silhouettes.float()[:, None]  # [N, 1, h, w]
    if factor != 1.0:
        result = F.interpolate(result, size=(split.cameras.height, split.cameras.width), mode="bilinear",
                               align_corners=False)
    return (result[:, 0] > 0.5).float()


class MaskPass:
    """One pass: the views' own ``masks`` and the ``silhouettes`` of their hull (``[N, h, w]`` bool),
    with the ``tolerance`` the colour test used."""

    def __init__(self, masks: torch.Tensor, silhouettes: torch.Tensor, tolerance: float) -> None:
        self.masks, self.silhouettes, self.tolerance = masks, silhouettes, tolerance


def mask_passes(split: DatasetSplit, lo: torch.Tensor, hi: torch.Tensor, ground: bool,
                on_view: Callable[[int, int], None] | None = None) -> Iterator[MaskPass]:
    """The ``PASSES`` passes of :func:`estimate_masks` on ``split`` (at working size) in the box
    ``[lo, hi]``, one :class:`MaskPass` each."""
    tolerance = MAX_TOLERANCE
    if ground:
        split, tolerance = corrected_photos(split, lo, hi)
    occluder = trimesh.creation.box(bounds=np.stack([lo.numpy(), hi.numpy()]))
    clear = float(lo[2] + CLEAR_HEIGHT_SHARE * (hi[2] - lo[2]))
    ratio = None
    for n_pass in range(PASSES):
        report = None if on_view is None else (lambda i, n, p=n_pass: on_view(p * n + i, PASSES * n))
        test = table_pixels(split, lo, hi, ground, occluder=occluder, clear=clear, tolerance=tolerance,
                            colour_ratio=ratio, on_view=report)
        masks = torch.from_numpy(np.stack([clean(~view) for view in test.table.numpy()]))
        occluder = visual_hull(DatasetSplit(split.images, masks.float(), split.cameras, split.names), lo, hi)
        # The hull's own silhouettes: what a view could not rule out (the sky behind the object in
        # a low view) but the others carved away is dropped, and the masks agree with each other.
        silhouettes = rasterize(torch.tensor(occluder.vertices, dtype=torch.float32),
                                torch.tensor(occluder.faces, dtype=torch.int64), split.cameras).face_id >= 0
        yield MaskPass(masks, silhouettes, tolerance)
        if n_pass + 1 < PASSES:
            ratio = partial(lookup_colours, colour_log_ratio(split.images, test.sure_object & silhouettes,
                                                             ~test.sure_object & ~silhouettes))


def corrected_photos(split: DatasetSplit, lo: torch.Tensor, hi: torch.Tensor) -> tuple[DatasetSplit, float]:
    """``split`` with each photo's exposure and white balance corrected on the table around the box
    ``[lo, hi]`` (:mod:`engine.sfm.exposure`), and the colour tolerance its table's spread gives."""
    ring = table_ring(lo, hi, GROUND_REACH * float((hi - lo).norm()))
    # Only the box's part above the clear height is in the way, as in the plane test.
    above = torch.cat([lo[:2], lo[2:] + CLEAR_HEIGHT_SHARE * (hi[2:] - lo[2:])])
    colours = hide_behind_box(sample_views(blur(split.images), split.cameras, ring), split.cameras, ring, above, hi)
    gains = view_gains(colours)
    spread = table_spread(apply_gains(colours, gains))
    tolerance = MAX_TOLERANCE if np.isnan(spread) else float(np.clip(TOLERANCE_PER_SPREAD * spread, MIN_TOLERANCE,
                                                                        MAX_TOLERANCE))
    return DatasetSplit(apply_gains(split.images, gains), None, split.cameras, split.names), tolerance


def visual_hull(split: DatasetSplit, lo: torch.Tensor, hi: torch.Tensor) -> trimesh.Trimesh:
    """The hull of ``split``'s masks in the box ``[lo, hi]`` at ``HULL_RESOLUTION``, closed at the
    box's sides (the ground)."""
    carved = hull_mesh(split, lo, hi, HULL_RESOLUTION)
    if carved is None:  # nothing left: keep the whole box as the occluder
        return trimesh.creation.box(bounds=np.stack([lo.numpy(), hi.numpy()]))
    return carved[0]


def colour_log_ratio(images: torch.Tensor, sure_object: torch.Tensor, sure_table: torch.Tensor) -> torch.Tensor:
    """``[B, B, B]`` (``B = COLOUR_BINS``) log p(colour | object) - log p(colour | background):
    Gaussian-smoothed colour histograms of the pixels of ``images [N, H, W, 3]`` (sRGB in [0, 1])
    that the plane test alone calls object (``sure_object [N, H, W]``, within the hull's silhouettes)
    and background (``sure_table``: outside them, and not called object), each at least
    ``SURE_INSIDE_PIXELS`` / ``SURE_OUTSIDE_PIXELS`` from the other side. The pixels the plane test
    could not check train the object's colours nowhere (the sky behind the object, in the
    silhouettes of a hull that only low views could carve), the background's where the hull carved
    them: the sky beside an object that fills the pictures lies in the box's outline in every view,
    a strip too thin to survive the erosion beyond it, and without its colour the sky seen above a
    bowl's rim in the low views stayed object (the shared bowl on its table: a lid 0.15 above the
    rim, the box's top)."""
    flat = ndimage.generate_binary_structure(2, 1)[None]  # grow and shrink within each view only
    inside = ndimage.binary_erosion(sure_object.numpy(), structure=flat, iterations=SURE_INSIDE_PIXELS)
    outside = ndimage.binary_erosion(sure_table.numpy(), structure=flat, iterations=SURE_OUTSIDE_PIXELS)
    return colour_log_density(images[torch.from_numpy(inside)]) - colour_log_density(images[torch.from_numpy(outside)])


def colour_log_density(colours: torch.Tensor) -> torch.Tensor:
    """``[B, B, B]`` log of the smoothed, normalized histogram of ``colours [P, 3]`` (in [0, 1])."""
    index = (colours.clamp(0, 1 - 1e-6) * COLOUR_BINS).long().numpy()  # [P, 3]
    counts = np.zeros((COLOUR_BINS,) * 3)
    np.add.at(counts, tuple(index.T), 1.0)
    counts = ndimage.gaussian_filter(counts, 1.0) + 1e-3
    return torch.from_numpy(np.log(counts / counts.sum())).float()


def lookup_colours(table: torch.Tensor, colours: torch.Tensor) -> torch.Tensor:
    """``[P]`` entries of a ``[B, B, B]`` colour table for ``colours [P, 3]`` in [0, 1]."""
    index = (colours.clamp(0, 1 - 1e-6) * COLOUR_BINS).long()
    return table[index[:, 0], index[:, 1], index[:, 2]]


def clean(mask: np.ndarray) -> np.ndarray:
    """A boolean mask ``[H, W]`` without specks, with small holes filled and small islands dropped."""
    mask = ndimage.binary_opening(mask, iterations=1)
    mask = ndimage.binary_closing(mask, iterations=2, border_value=0)
    labels, count = ndimage.label(mask)
    if count > 1:
        areas = ndimage.sum(mask, labels, index=np.arange(1, count + 1))
        keep = np.flatnonzero(areas >= MIN_ISLAND_SHARE * areas.max()) + 1
        mask = np.isin(labels, keep)
    holes, count = ndimage.label(ndimage.binary_fill_holes(mask) & ~mask)
    if count:
        areas = ndimage.sum(holes > 0, holes, index=np.arange(1, count + 1))
        small = np.flatnonzero(areas <= MAX_FILLED_HOLE_SHARE * mask.size) + 1
        mask = mask | np.isin(holes, small)
    return mask
