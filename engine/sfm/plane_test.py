"""The plane-induced colour test: does a pixel show the table point behind it, or something in front?

A pixel's ray through the object's box meets the table plane (z = 0 in the upright frame of
:mod:`engine.sfm.scene`) at a point ``X``. The other views that have ``X`` in their picture with a
clear line of sight to it (in front of the occluder: the box, later the hull of the last masks)
show the table's colour at ``X``; the table is diffuse and its cast shadows stay where they are,
so they agree with each other whatever the light, after each photo's exposure and white balance
are corrected (:mod:`engine.sfm.exposure`). The pixel is the table when it agrees with them too:
the median, over those views, of the absolute colour difference (sRGB, mean of the channels) is
below the tolerance. A pixel of the object shows something else than the table point behind it,
unless the two happen to share a colour (then the tolerance decides: see
:mod:`engine.sfm.foreground`).

Points that fewer than ``MIN_AGREEING_VIEWS`` views see that way (under and right behind the
object), or further than ``GROUND_REACH`` box diagonals from the object (tables end), cannot be
checked; their pixels stay in the mask.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
import trimesh
from scipy import ndimage

from ..cameras import Cameras
from ..data.dataset import DatasetSplit
from ..render import rasterize
from ..utils.math import ray_box

MIN_AGREEING_VIEWS = 3
MAX_OTHER_VIEWS = 24
FAR = float("inf")
# Ground further than this many box diagonals from the box is not checked (tables end).
GROUND_REACH = 1.0
# The colours' own say (natural log of the likelihood ratio of object to background colour
# histograms): beyond this either way a colour overrules the plane test (see table_pixels).
COLOUR_LOG_RATIO = 3.0
# The photos are smoothed this much before they are compared (sub-pixel pose error); more blurs
# the object's colour into the table pixels beside it (a fringe that stays in the masks: on
# spot-tabletop 1 px keeps 33% more of a 2-px ring around the object than 0.5 px).
BLUR_SIGMA_PIXELS = 0.5


@dataclass
class TableTest:
    """What the test says of every pixel of ``N`` views (``[N, h, w]`` bool each): ``table`` (the
    verdict), ``sure_table`` (the ray misses the box, or the other views agree on its table point)
    and ``sure_object`` (they disagree): the plane test alone, without the colours' say."""

    table: torch.Tensor
    sure_table: torch.Tensor
    sure_object: torch.Tensor


def table_pixels(split: DatasetSplit, lo: torch.Tensor, hi: torch.Tensor, ground: bool, *, occluder: trimesh.Trimesh,
                 clear: float, tolerance: float, colour_ratio: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 on_view: Callable[[int, int], None] | None = None) -> TableTest:
    """The pixels of ``split``'s photos (exposure-corrected, cameras in the upright frame) whose ray
    through the box ``[lo, hi]`` ends on a table point that the other views see in the same colour
    (within ``tolerance``), and those whose ray misses the box; ``occluder`` (a closed mesh holding
    the object) says which views have a clear line of sight to a table point (its parts lower than
    the height ``clear`` are not in the way: lines of sight that graze the table, under a belly or
    between legs, count as clear).

    ``colour_ratio`` (colours ``[G, 3]`` -> ``[G]`` log p(colour | object) - log p(colour |
    background), from the last pass) has the last word where a colour is far more typical of one
    side (``COLOUR_LOG_RATIO``): a pixel the other views agree on stays object when its colour is
    the object's (a white leg in front of the white leg that they see), and one whose table point
    could not be checked (out of reach: the sky or the far table behind the object; or hidden from
    the other views: right behind or under the object) is background when its colour is the
    background's. Without a ``ground`` plane only the box test applies."""
    images = blur(split.images)  # [N, h, w, 3]
    cams = split.cameras
    size = torch.tensor([cams.width, cams.height], dtype=torch.float32)
    reach = GROUND_REACH * float((hi - lo).norm())
    fragments = rasterize(torch.tensor(occluder.vertices, dtype=torch.float32),
                          torch.tensor(occluder.faces, dtype=torch.int64), cams)
    occluder_depth = torch.where(fragments.face_id >= 0, fragments.depth, torch.full_like(fragments.depth, FAR))
    views = []
    for i in range(len(split)):
        origin = cams.centers[i].float()  # [3]
        dirs = cams[i].pixel_directions()[0].reshape(-1, 3).float()  # [h*w, 3]
        near, far = ray_box(origin, dirs, lo, hi)
        sure_table = far <= near  # [h*w] the rays that miss the object's box
        t = torch.full_like(dirs[:, 2], FAR)  # [h*w] where each ray meets the table
        if ground:
            down = dirs[:, 2] < -1e-9
            t[down] = -origin[2] / dirs[down, 2]
            hit = origin + t[:, None] * dirs  # [h*w, 3]
            t[(hit - (lo + hi) / 2).norm(dim=-1) > reach] = FAR
        ids = torch.nonzero(~sure_table & (t < FAR))[:, 0]  # only table points near the object can be checked
        points = origin + t[ids, None] * dirs[ids]  # [G, 3]
        colour = images[i].reshape(-1, 3)  # [h*w, 3]
        agreed, checked = agreed_by_others(points, colour[ids], images, cams, views=others(cams, i), size=size,
                                           occluder_depth=occluder_depth, clear=clear, tolerance=tolerance)
        sure_object = torch.zeros_like(sure_table)
        sure_table[ids], sure_object[ids] = agreed, checked & ~agreed
        checked_all = torch.zeros_like(sure_table)
        checked_all[ids] = checked
        table = sure_table.clone()
        if colour_ratio is not None:
            ratio = colour_ratio(colour)  # [h*w]
            table &= ratio < COLOUR_LOG_RATIO
            table |= (far <= near) | (~checked_all & (ratio < -COLOUR_LOG_RATIO))
        views.append(torch.stack([table, sure_table, sure_object]).reshape(3, cams.height, cams.width))
        if on_view is not None:
            on_view(i + 1, len(split))
    return TableTest(*torch.stack(views, 1))


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
                     views: list[int], size: torch.Tensor, occluder_depth: torch.Tensor, clear: float,
                     tolerance: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``[G]`` whether ``views`` see ``points [G, 3]`` in the colour ``colour [G, 3]``: the median
    absolute difference over the views that have the point in the picture with a clear line of
    sight (in front of the occluder, whose depth maps ``occluder_depth [N, h, w]`` give, so the
    object cannot hide it, unless it is lower than the height ``clear``: the line of sight descends
    towards the ground, so a first hit that low means nothing higher is in the way) is below
    ``tolerance``, and at least ``MIN_AGREEING_VIEWS`` views see it; and ``[G]`` whether that many
    views see it (whether it could be checked at all)."""
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
    checked = inside.sum(0) >= MIN_AGREEING_VIEWS
    return checked & (median < tolerance), checked
