"""An upright, object-sized world frame and the object's box, from SfM cameras and sparse points.

SfM returns a scene in an arbitrary frame: any orientation, any scale. For photos of an object
standing on a table or floor, this module finds

* **up**: the normal of the ground plane of the sparse points, turned towards the cameras. The
  ground is a plane within ``MAX_PLANE_TILT_DEG`` of the cameras' mean up vector with (almost)
  nothing under it: fewer points more than ``BELOW_TOLERANCES`` tolerances below it than
  ``MAX_BELOW_PER_INLIER`` times the points on it (a bowl's rim or a flat top has the object under
  it; a plane slanting through an object's foot has half the table under it). It is the dominant
  plane of all the points (RANSAC) when that holds ``MIN_PLANE_SHARE`` of them, else the dominant
  such plane among the lowest ``LOW_SHARE`` of the points along the cameras' up vector, if it holds
  ``MIN_GROUND_SHARE`` of all the points: an object that fills the pictures (a bowl seen from close
  by) leaves the table few points, 3.5% of them for the shared bowl on the table. Without a ground
  the mean camera up vector;
* **the object**: the sparse points above the ground that nearly every camera has in its picture
  (``MIN_VISIBLE_SHARE``; the object is what the photographer keeps in frame, the table around
  it leaves the picture in some views);
* **the upright frame**: +Z up (Blender's convention), origin on the ground below the object's
  centre, the first camera looking along +Y, and a scale that makes the object's box
  ``OBJECT_SIZE`` units across. SfM has no absolute scale; this one gives a Blender-sized object.

The object's box in the upright frame starts exactly at the ground (z = 0) when there is a
ground plane, so that a reconstruction cropped by it is cut where the object stands.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from skimage.measure import ransac

from ..cameras import Cameras
from ..roi import look_at_point
from ..utils.math import Plane, fit_plane
from .align import Similarity

MIN_PLANE_SHARE = 0.2
MAX_PLANE_TILT_DEG = 40.0
# The ground among the lowest points (see the module docstring): what share of the points is
# searched, the share of all the points it must hold, and how few may lie under it.
LOW_SHARE = 0.15
MIN_GROUND_SHARE = 0.02
MIN_GROUND_POINTS = 20
BELOW_TOLERANCES = 2.0
MAX_BELOW_PER_INLIER = 0.2
RANSAC_TRIALS = 500
REFITS = 3
MIN_VISIBLE_SHARE = 0.9
OBJECT_SIZE = 2.0
# Points count as "on the ground" within this share of the median camera distance.
GROUND_TOLERANCE = 0.01
BOX_PADDING = 0.1
MIN_OBJECT_POINTS = 10


@dataclass(frozen=True)
class UprightScene:
    """Where the SfM scene goes: ``to_upright`` maps SfM world points into the upright frame;
    ``box_min``/``box_max`` bound the object there; ``ground`` says whether z = 0 is a real
    ground plane found in the points (else it is only the bottom of the object's points)."""

    to_upright: Similarity
    box_min: tuple[float, float, float]
    box_max: tuple[float, float, float]
    ground: bool


def find_ground(points: np.ndarray, up_hint: np.ndarray, tolerance: float, seed: int = 0) -> Plane | None:
    """The ground plane of ``points [P, 3]`` with its normal turned to ``up_hint [3]``, or ``None``
    when no plane is big enough, level enough and under the points (see module docstring)."""
    found = fit_plane(points, tolerance, seed, RANSAC_TRIALS)
    if found is not None and found[1].sum() >= MIN_PLANE_SHARE * len(points):
        plane = as_ground(found[0], points, up_hint, tolerance)
        if plane is not None:
            return plane
    return lowest_ground(points, up_hint, tolerance, seed)


def as_ground(plane: Plane, points: np.ndarray, up_hint: np.ndarray, tolerance: float) -> Plane | None:
    """``plane`` with its normal turned to ``up_hint``, or ``None`` when it is tilted more than
    ``MAX_PLANE_TILT_DEG`` from it or too many of ``points [P, 3]`` lie under it."""
    normal, offset = plane.normal, plane.offset
    if normal @ up_hint < 0:
        normal, offset = -normal, -offset
    if math.degrees(math.acos(float(np.clip(normal @ up_hint, -1.0, 1.0)))) > MAX_PLANE_TILT_DEG:
        return None
    heights = points @ normal - offset  # [P]
    if (heights < -BELOW_TOLERANCES * tolerance).sum() > MAX_BELOW_PER_INLIER * (np.abs(heights) <= tolerance).sum():
        return None
    return Plane(normal, offset)


def lowest_ground(points: np.ndarray, up_hint: np.ndarray, tolerance: float, seed: int = 0) -> Plane | None:
    """The dominant ground plane (:func:`as_ground`) among the lowest ``LOW_SHARE`` of ``points
    [P, 3]`` along ``up_hint``, refit ``REFITS`` times to all the points on it, or ``None`` when it holds fewer than
    ``MIN_GROUND_SHARE`` of them."""
    heights = points @ up_hint
    low = points[heights <= np.percentile(heights, 100 * LOW_SHARE)] if len(points) else points
    if len(low) < 3:
        return None
    with warnings.catch_warnings():  # skimage warns when no trial gives a valid model
        warnings.simplefilter("ignore")
        plane, _ = ransac(low, Plane, min_samples=3, residual_threshold=tolerance, max_trials=RANSAC_TRIALS,
                          is_model_valid=lambda model, *_: as_ground(model, points, up_hint, tolerance) is not None,
                          rng=np.random.default_rng(seed))
    if plane is None:
        return None
    for _ in range(REFITS):  # refit to all the points on it, which the trial of a few low ones may tilt from
        inliers = plane.residuals(points) <= tolerance
        if inliers.sum() < max(MIN_GROUND_POINTS, MIN_GROUND_SHARE * len(points)):
            return None
        plane = Plane.from_estimate(points[inliers])
    return as_ground(plane, points, up_hint, tolerance)


def rotation_to_z_up(up: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """``[3, 3]`` rotation taking ``up`` to +Z and the horizontal part of ``forward`` to +Y."""
    forward = forward - (forward @ up) * up
    if np.linalg.norm(forward) < 1e-9:  # looking straight down: any horizontal direction will do
        forward = np.cross(up, [1.0, 0.0, 0.0] if abs(up[0]) < 0.9 else [0.0, 1.0, 0.0])
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, up)
    return np.stack([right, forward, up])  # rows: the new x, y, z axes in the old frame


def upright_scene(cameras: Cameras, points: np.ndarray) -> UprightScene:
    """The upright frame and the object's box for SfM ``cameras`` and sparse ``points [P, 3]``
    (both in the SfM world frame)."""
    centre = look_at_point(cameras).double().cpu().numpy()
    centres = cameras.centers.double().cpu().numpy()  # [N, 3]
    distance = float(np.median(np.linalg.norm(centres - centre, axis=1)))
    camera_up = cameras.c2w[:, :3, 1].double().cpu().numpy().mean(0)
    camera_up /= max(np.linalg.norm(camera_up), 1e-12)
    plane = find_ground(points, camera_up, GROUND_TOLERANCE * distance)
    up = camera_up if plane is None else plane.normal
    rotation = rotation_to_z_up(up, centre - centres[0])
    # Rotated, not yet shifted or scaled: heights are z, the ground (if any) is at z = offset.
    turned = Similarity(1.0, rotation, np.zeros(3))
    pts = turned.points(points)
    heights = pts[:, 2] - (plane.offset if plane is not None else 0.0)
    visible = visible_share(cameras, points)
    candidates = visible >= MIN_VISIBLE_SHARE
    if plane is not None:
        candidates &= heights > GROUND_TOLERANCE * distance
    obj = pts[candidates]
    if len(obj) >= MIN_OBJECT_POINTS:
        lo, hi = np.percentile(obj, 1, axis=0), np.percentile(obj, 99, axis=0)
    else:  # no object points: a box around where the cameras look, a third of their distance across
        c = turned.points(centre[None])[0]
        lo, hi = c - distance / 6, c + distance / 6
    pad = BOX_PADDING * float((hi - lo).max())
    lo, hi = lo - pad, hi + pad
    ground = plane.offset if plane is not None else lo[2]
    lo[2] = ground
    origin = np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, ground])
    scale = OBJECT_SIZE / float((hi - lo).max())
    to_upright = Similarity(scale, rotation, -scale * origin)
    return UprightScene(to_upright, tuple(((lo - origin) * scale).tolist()), tuple(((hi - origin) * scale).tolist()),
                        plane is not None)


def visible_share(cameras: Cameras, points: np.ndarray) -> np.ndarray:
    """``[P]`` the share of cameras with each of ``points [P, 3]`` in front of them and inside the image."""
    pixels, depth = cameras.project(torch.from_numpy(points).to(cameras.c2w))  # [N, P, 2], [N, P]
    inside = (depth > 0) & (pixels[..., 0] >= 0) & (pixels[..., 0] <= cameras.width) \
        & (pixels[..., 1] >= 0) & (pixels[..., 1] <= cameras.height)
    return inside.double().mean(0).cpu().numpy()
