"""Automatic object masks for opaque photos of an object standing on a table or floor.

A pixel is background when its ray

* misses the object's box (see :mod:`engine.sfm.scene`), or
* hits the ground plane (z = 0 in the upright frame) within ``GROUND_REACH`` box diagonals of
  the object at a point whose colour the other views agree on: the point is projected into the
  other views (up to ``MAX_OTHER_VIEWS``, evenly spread) that have it in the picture and see it
  in front of the occluder (the box, later the hull: the object cannot hide it from them), and
  the median (over those views) of the absolute colour difference to this pixel is below
  ``COLOUR_TOLERANCE``. Ground points that
  fewer than ``MIN_AGREEING_VIEWS`` views see that way (under and right behind the object) stay
  in the mask.

Rays through the box that go on to the sky or to far ground cannot be checked this way (few
views see that far point, and those few are close to this one, so an object in front agrees
with them too): they stay in the mask. For the visual hull that is harmless, as the views that
look down on the same region carve it away.

A pixel on the object sees a point of the object, whose colour the other views (looking at the
ground point behind it) do not share. Where they do share it (a white leg seen in front of the
ground point that the others see through another white leg) the colour decides: from the second
pass on, a pixel whose colour is far more typical of the previous pass's object than of its
background stays in the mask.

The rest is the object, cleaned with morphology (small specks removed, small holes filled: large
ones are the ground seen between the legs, small islands dropped). This runs ``PASSES`` times: the
first pass takes the object's box as what may hide a ground point from a view, later passes the
visual hull of the previous masks (tighter, so more ground points can be checked). The occluder's
bottom ``CLEAR_HEIGHT_SHARE`` of the box height is ignored: lines of sight that graze the ground
(under a belly, between legs, through a thin skirt that earlier masks left at the object's foot)
count as clear, so the ground under the object can be checked by the low views that see it; a leg
that does stand in the way only adds one disagreeing view to the median. The final masks are the
silhouettes of the last hull. Everything runs at ``WORK_SIZE`` pixels on the longest side and the
masks are scaled back up.
Without a ground plane only the box test applies (a coarse mask).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
import trimesh
from scipy import ndimage

from ..cameras import Cameras
from ..carving import hull_mesh
from ..data.dataset import DatasetSplit
from ..data.transforms import resize_split
from ..render import rasterize
from ..utils.math import ray_box

COLOUR_TOLERANCE = 0.08
WORK_SIZE = 400
MIN_AGREEING_VIEWS = 3
MAX_OTHER_VIEWS = 24
FAR = float("inf")
# Ground further than this many box diagonals from the box is not checked (tables end).
GROUND_REACH = 1.0
BLUR_SIGMA_PIXELS = 1.0
# Islands smaller than this share of the largest one are dropped.
MIN_ISLAND_SHARE = 0.1
# A ground pixel the other views agree on stays object when its colour is this much (natural log
# of the likelihood ratio, from colour histograms of the previous pass's object and background)
# more typical of the object: a white leg in front of a white leg seen by the others.
OBJECT_COLOUR_LOG_RATIO = 3.0
COLOUR_BINS = 32
# Pixels this far inside / outside the previous pass's silhouettes train the colour histograms.
SURE_INSIDE_PIXELS = 3
SURE_OUTSIDE_PIXELS = 6
# Holes in a view's mask up to this share of the image are filled (object pixels whose colour the
# ground behind happens to share); bigger holes are the ground seen through the object (between
# the legs, under a belly) and stay open. Filling them kept a block under spot's belly
# (spot-tabletop, given cameras, 128-cell hull of the masks: Chamfer-L1 0.0178 with every hole
# filled, 0.0147 with this; without the colour test above it would open real holes: 0.047).
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
    lo, hi = box_min.float(), box_max.float()
    occluder = trimesh.creation.box(bounds=np.stack([lo.numpy(), hi.numpy()]))
    object_colours = None
    for n_pass in range(PASSES):
        report = None if on_view is None else (lambda i, n, p=n_pass: on_view(p * n + i, PASSES * n))
        masks = masks_one_pass(small, lo, hi, ground, occluder=occluder, object_colours=object_colours,
                               on_view=report)
        occluder = visual_hull(DatasetSplit(small.images, masks, small.cameras, small.names), lo, hi)
        # The hull's own silhouettes: what a view could not rule out (the sky behind the object in
        # a low view) but the others carved away is dropped, and the masks agree with each other.
        silhouettes = rasterize(torch.tensor(occluder.vertices, dtype=torch.float32),
                                torch.tensor(occluder.faces, dtype=torch.int64), small.cameras).face_id >= 0
        if n_pass + 1 < PASSES:
            object_colours = colour_log_ratio(small.images, silhouettes)
    result = silhouettes.float()[:, None]  # [N, 1, h, w]
    if factor != 1.0:
        result = F.interpolate(result, size=(split.cameras.height, split.cameras.width), mode="bilinear",
                               align_corners=False)
    return (result[:, 0] > 0.5).float()


def masks_one_pass(split: DatasetSplit, lo: torch.Tensor, hi: torch.Tensor, ground: bool, *, occluder: trimesh.Trimesh,
                   object_colours: torch.Tensor | None, on_view: Callable[[int, int], None] | None) -> torch.Tensor:
    """``[N, h, w]`` masks of one pass; ``occluder`` (a closed mesh holding the object) says which
    views have a clear line of sight to a ground point; ``object_colours`` (a table of
    :func:`colour_log_ratio`, from the previous pass) keeps pixels of object colours."""
    images = blur(split.images)  # [N, h, w, 3]
    cams = split.cameras
    height, width = cams.height, cams.width
    size = torch.tensor([width, height], dtype=torch.float32)
    reach = GROUND_REACH * float((hi - lo).norm())
    clear = float(lo[2] + CLEAR_HEIGHT_SHARE * (hi[2] - lo[2]))
    fragments = rasterize(torch.tensor(occluder.vertices, dtype=torch.float32),
                          torch.tensor(occluder.faces, dtype=torch.int64), cams)
    occluder_depth = torch.where(fragments.face_id >= 0, fragments.depth, torch.full_like(fragments.depth, FAR))
    masks = []
    for i in range(len(split)):
        origin = cams.centers[i].float()  # [3]
        dirs = cams[i].pixel_directions()[0].reshape(-1, 3).float()  # [h*w, 3]
        near, far = ray_box(origin, dirs, lo, hi)
        foreground = far > near  # [h*w] the rays through the object's box
        t = torch.full_like(dirs[:, 2], FAR)  # [h*w] where each ray's background point is
        if ground:
            down = dirs[:, 2] < -1e-9
            t[down] = -origin[2] / dirs[down, 2]
            hit = origin + t[:, None] * dirs  # [h*w, 3]
            t[(hit - (lo + hi) / 2).norm(dim=-1) > reach] = FAR
        ids = torch.nonzero(foreground & (t < FAR))[:, 0]  # only background points near the object can be checked
        points = origin + t[ids, None] * dirs[ids]  # [G, 3]
        colour = images[i].reshape(-1, 3)[ids]  # [G, 3]
        background = agreed_by_others(points, colour, images, cams, views=others(cams, i), size=size,
                                      occluder_depth=occluder_depth, clear=clear)
        if object_colours is not None:
            background &= lookup_colours(object_colours, colour) < OBJECT_COLOUR_LOG_RATIO
        foreground[ids] = ~background
        masks.append(clean(foreground.reshape(height, width).numpy()))
        if on_view is not None:
            on_view(i + 1, len(split))
    return torch.from_numpy(np.stack(masks)).float()


def visual_hull(split: DatasetSplit, lo: torch.Tensor, hi: torch.Tensor) -> trimesh.Trimesh:
    """The visual hull of ``split``'s masks in the box ``[lo, hi]`` at ``HULL_RESOLUTION``, closed
    at the box's sides (the ground)."""
    carved = hull_mesh(split, lo, hi, HULL_RESOLUTION)
    if carved is None:  # nothing left: keep the whole box as the occluder
        return trimesh.creation.box(bounds=np.stack([lo.numpy(), hi.numpy()]))
    return carved[0]


def blur(images: torch.Tensor) -> torch.Tensor:
    """``[N, H, W, 3]`` images smoothed by a Gaussian of ``BLUR_SIGMA_PIXELS`` (hides sub-pixel pose error)."""
    array = ndimage.gaussian_filter(images.numpy(), sigma=(0, BLUR_SIGMA_PIXELS, BLUR_SIGMA_PIXELS, 0))
    return torch.from_numpy(array)


def others(cams: Cameras, view: int) -> list[int]:
    """Up to ``MAX_OTHER_VIEWS`` views other than ``view``, evenly spread through the list."""
    rest = [j for j in range(len(cams)) if j != view]
    keep = np.linspace(0, len(rest) - 1, min(MAX_OTHER_VIEWS, len(rest))).round().astype(int)
    return [rest[k] for k in sorted(set(keep.tolist()))]


def agreed_by_others(points: torch.Tensor, colour: torch.Tensor, images: torch.Tensor, cams: Cameras, *,
                     views: list[int], size: torch.Tensor, occluder_depth: torch.Tensor, clear: float
                     ) -> torch.Tensor:
    """``[G]`` whether ``views`` see ``points [G, 3]`` in the colour ``colour [G, 3]``: the median
    absolute difference over the views that have the point in the picture with a clear line of
    sight (in front of the occluder, whose depth maps ``occluder_depth [N, h, w]`` give, so the
    object cannot hide it, unless it is lower than the height ``clear``: the line of sight descends
    towards the ground, so a first hit that low means nothing higher is in the way), at least
    ``MIN_AGREEING_VIEWS`` of them."""
    pixels, depth = cams[views].project(points.to(cams.c2w))  # [V, G, 2], [V, G]
    pixels = pixels.float()
    inside = (depth > 0) & (pixels >= 0).all(-1) & (pixels <= size).all(-1)  # [V, G]
    column = pixels[..., 0].long().clamp(0, cams.width - 1)  # [V, G]
    row = pixels[..., 1].long().clamp(0, cams.height - 1)
    blocker = occluder_depth[torch.tensor(views)[:, None], row, column]  # [V, G]
    heights = cams.centers[views, 2].float()[:, None]  # [V, 1]
    blocker_height = heights + (points[None, :, 2] - heights) * blocker.clamp_max(1e6) / depth.float()  # [V, G]
    inside &= (depth.float() < blocker) | (blocker_height < clear)
    grid = (pixels / size * 2.0 - 1.0)[:, None]  # [V, 1, G, 2]
    seen = F.grid_sample(images[views].permute(0, 3, 1, 2), grid, mode="bilinear", align_corners=False)  # [V, 3, 1, G]
    diff = (seen[:, :, 0].permute(0, 2, 1) - colour[None]).abs().mean(-1)  # [V, G]
    diff = torch.where(inside, diff, torch.full_like(diff, float("nan")))
    median = torch.nanmedian(diff, dim=0).values  # [G]
    return (inside.sum(0) >= MIN_AGREEING_VIEWS) & (median < COLOUR_TOLERANCE)


def colour_log_ratio(images: torch.Tensor, silhouettes: torch.Tensor) -> torch.Tensor:
    """``[B, B, B]`` (``B = COLOUR_BINS``) log p(colour | object) - log p(colour | background):
    Gaussian-smoothed colour histograms of the pixels of ``images [N, H, W, 3]`` (sRGB in [0, 1])
    well inside the ``silhouettes [N, H, W]`` (bool) and of those well outside them."""
    flat = ndimage.generate_binary_structure(2, 1)[None]  # grow and shrink within each view only
    inside = ndimage.binary_erosion(silhouettes.numpy(), structure=flat, iterations=SURE_INSIDE_PIXELS)
    outside = ~ndimage.binary_dilation(silhouettes.numpy(), structure=flat, iterations=SURE_OUTSIDE_PIXELS)
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
