"""Each photo's exposure and white balance, and how closely the views agree on the table's colour.

Photos of one object are rarely taken with one exposure: the camera meters each frame anew and
may change its white balance. The table around the object is the reference that does not change
with the view (it is diffuse; its cast shadows stay where they are): points of the table plane
(z = 0 in the upright frame of :mod:`engine.sfm.scene`) in a ring around the object's box are seen
by most views, and their colours in those views differ only by each view's exposure and white
balance, plus noise (and the object, where it stands in front of a point).

* **Gains** (:func:`view_gains`): one gain per view and colour channel in linear light (a change of
  exposure or white balance multiplies the light a pixel records), found by alternating medians in
  the log domain: a table point's colour is the median over the views of its gain-corrected
  colours, a view's gain the median over the points of the ratio to it, from the second round on
  over the points already within ``INLIER_LOG_RATIO`` of it. The gains' geometric mean is 1.
  The views a point is hidden from by the object's box (:func:`hide_behind_box`) are left out:
  the object hides a quarter of the ring from a low view, and more than half of the ring's inner
  part from most views when it fills the pictures (the shared bowl on its table, photos all
  exposed alike: with those views, a spread of 0.069, so the loosest colour tolerance, and blue
  gains up to 1.38; without them, gains of 1 and the tightest tolerance).
* **Spread** (:func:`table_spread`): the median, over the table points, of the median absolute
  difference between a view's corrected colour and the point's colour (sRGB, mean of the three
  channels): how far photos of the same table point differ after the correction (noise, JPEG,
  sub-pixel pose error on a textured table). :mod:`engine.sfm.foreground` scales its colour
  tolerance with it, so that it adapts to the photos instead of being fixed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..cameras import Cameras
from ..shading.colour import srgb_decode, srgb_encode
from ..utils.math import ray_box

# The ring of table points: from this share of the box diagonal beyond the box's footprint out to
# ``outer`` (the masks' ground reach), on a square grid of about ``RING_POINTS`` points.
RING_GAP_SHARE = 0.05
RING_POINTS = 20000
# Colours this close to black or white (sRGB) are clipped or drowned in noise: no evidence of a gain.
DARKEST, BRIGHTEST = 0.03, 0.97
ROUNDS = 4
# After the first round, a view's gain is the median over the points within this log ratio of its
# last gain: the object in front of a table point (a white body over a dark cell) is no evidence.
INLIER_LOG_RATIO = 0.15
# A view needs this many table points in the picture to get a gain of its own (else 1).
MIN_POINTS = 50


def table_ring(lo: torch.Tensor, hi: torch.Tensor, outer: float) -> torch.Tensor:
    """``[P, 3]`` points of the table plane (z = 0) around the box ``[lo, hi]``: outside its footprint
    grown by ``RING_GAP_SHARE`` of its diagonal, within ``outer`` of its centre."""
    centre = (lo + hi) / 2
    gap = RING_GAP_SHARE * float((hi - lo).norm())
    step = 2 * outer / math.sqrt(RING_POINTS)
    axis = torch.arange(-outer, outer + 1e-9, step)
    x, y = torch.meshgrid(axis + centre[0], axis + centre[1], indexing="ij")
    points = torch.stack([x.reshape(-1), y.reshape(-1), torch.zeros(x.numel())], -1)  # [G, 3]
    outside = ((points[:, :2] < lo[:2] - gap) | (points[:, :2] > hi[:2] + gap)).any(-1)
    near = (points[:, :2] - centre[:2]).norm(dim=-1) <= outer
    return points[outside & near]


def sample_views(images: torch.Tensor, cameras: Cameras, points: torch.Tensor) -> torch.Tensor:
    """``[N, P, 3]`` colours of ``points [P, 3]`` in ``images [N, H, W, 3]`` (bilinear), NaN where a
    point is behind a camera or outside its picture."""
    pixels, depth = cameras.project(points.to(cameras.c2w))  # [N, P, 2], [N, P]
    pixels = pixels.float()
    size = torch.tensor([cameras.width, cameras.height], dtype=torch.float32)
    inside = (depth > 0) & (pixels >= 0).all(-1) & (pixels <= size).all(-1)  # [N, P]
    grid = (pixels / size * 2.0 - 1.0)[:, None]  # [N, 1, P, 2]
    seen = F.grid_sample(images.permute(0, 3, 1, 2), grid, mode="bilinear", align_corners=False)[:, :, 0]
    seen = seen.permute(0, 2, 1)  # [N, P, 3]
    return torch.where(inside[..., None], seen, torch.full_like(seen, math.nan))


def hide_behind_box(colours: torch.Tensor, cameras: Cameras, points: torch.Tensor, lo: torch.Tensor,
                    hi: torch.Tensor) -> torch.Tensor:
    """``colours [N, P, 3]`` of ``points [P, 3]`` (from :func:`sample_views`) with NaN where the line
    of sight from a camera to a point crosses the box ``[lo, hi]`` (the object, there, stands in
    front of the table point: an object that fills the pictures hides much of the ring from every
    view, and its colours are no evidence of a gain or of the table's spread)."""
    hidden = torch.zeros(colours.shape[:2], dtype=torch.bool)
    for i in range(len(cameras)):
        origin = cameras.centers[i].to(points)  # [3]
        near, far = ray_box(origin, points - origin, lo.to(points), hi.to(points))  # in multiples of the sight line
        hidden[i] = (near < far) & (near < 1.0)
    return torch.where(hidden[..., None], torch.full_like(colours, math.nan), colours)


def view_gains(colours: torch.Tensor) -> torch.Tensor:
    """``[N, 3]`` linear-light gains that bring each view's colours of the table points ``colours
    [N, P, 3]`` (sRGB, NaN where unseen) to the points' common colour (see the module docstring)."""
    usable = (colours > DARKEST) & (colours < BRIGHTEST)  # [N, P, 3]
    log_colour = torch.where(usable, srgb_decode(colours.nan_to_num(0.5)).clamp_min(1e-6).log(),
                             torch.full_like(colours, math.nan))
    log_gain = torch.zeros(colours.shape[0], 3)
    enough = (usable.all(-1).sum(1) >= MIN_POINTS)[:, None]  # [N, 1]
    for round_ in range(ROUNDS):
        log_point = torch.nanmedian(log_colour + log_gain[:, None], dim=0).values  # [P, 3]
        ratio = log_point[None] - log_colour  # [N, P, 3]
        if round_ > 0:  # only the points that already agree: not those the object hides in this view
            ratio = torch.where((ratio - log_gain[:, None]).abs() < INLIER_LOG_RATIO, ratio, math.nan)
        log_gain = torch.nanmedian(ratio, dim=1).values.nan_to_num(0.0)  # [N, 3]
        log_gain = torch.where(enough, log_gain, torch.zeros_like(log_gain))
        log_gain = log_gain - log_gain[enough[:, 0]].mean(0, keepdim=True) if bool(enough.any()) else log_gain
    return log_gain.exp()


def apply_gains(images: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
    """``images [N, ..., 3]`` (sRGB) with each view's linear-light ``gains [N, 3]`` applied."""
    shape = (gains.shape[0],) + (1,) * (images.dim() - 2) + (3,)
    return srgb_encode(srgb_decode(images) * gains.reshape(shape).to(images)).clamp_max(1.0)


def table_spread(colours: torch.Tensor) -> float:
    """The median over the table points of the median absolute difference (sRGB, mean over the
    channels) between a view's colour of a point and the point's median colour; ``colours [N, P, 3]``
    already corrected, NaN where unseen. NaN when no point is seen by two views."""
    common = torch.nanmedian(colours, dim=0).values  # [P, 3]
    spread = torch.nanmedian((colours - common[None]).abs().mean(-1), dim=0).values  # [P]
    seen_twice = (~colours[..., 0].isnan()).sum(0) >= 2
    return float(spread[seen_twice].median()) if bool(seen_twice.any()) else math.nan
