"""The ground under an object that fills the pictures: the table plane from few sparse points, and
the ring of table points the object hides (:mod:`engine.sfm.scene`, :mod:`engine.sfm.exposure`)."""

from __future__ import annotations

import math

import numpy as np
import torch

from engine.cameras import Cameras
from engine.sfm.exposure import hide_behind_box
from engine.sfm.scene import find_ground
from tests.support import orbit_c2w

UP = np.array([0.0, 0.0, 1.0])


def bowl_on_a_table(table_points: int, rim_points: int, seed: int = 0) -> np.ndarray:
    """``[P, 3]`` sparse points of a bowl (a hemispherical shell, radius 1, its rim at z = 1.2 and
    flat, on a foot down to the table at z = 0) on a table that only a few of them are on."""
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=(3000, 3))
    direction[:, 2] = -np.abs(direction[:, 2])
    shell = direction / np.linalg.norm(direction, axis=1, keepdims=True) * rng.uniform(0.9, 1.0, (3000, 1))
    shell[:, 2] += 1.2
    shell = shell[shell[:, 2] > 0.25]  # the foot below keeps the shell off the table
    angle = rng.uniform(0, 2 * math.pi, 600)
    foot = np.c_[0.35 * np.cos(angle), 0.35 * np.sin(angle), rng.uniform(0.0, 0.3, 600)]
    angle = rng.uniform(0, 2 * math.pi, rim_points)
    radius = rng.uniform(0.9, 1.0, rim_points)
    rim = np.c_[radius * np.cos(angle), radius * np.sin(angle), np.full(rim_points, 1.2)]
    angle, radius = rng.uniform(0, 2 * math.pi, table_points), rng.uniform(1.05, 1.6, table_points)
    table = np.c_[radius * np.cos(angle), radius * np.sin(angle), np.zeros(table_points)]
    return np.concatenate([shell, foot, rim, table]) + rng.normal(scale=0.002, size=(1, 3))


def test_the_table_is_found_under_a_bowl_that_leaves_it_few_points():
    """3% of the points on the table (the dominant plane holds too few of them): the table is still
    the ground, not a plane slanting through the foot and the shell."""
    points = bowl_on_a_table(table_points=100, rim_points=200)
    plane = find_ground(points, UP, tolerance=0.03)
    assert plane is not None
    assert math.degrees(math.acos(min(1.0, float(plane.normal @ UP)))) < 1.0
    assert abs(plane.offset) < 0.03, plane.offset  # the tolerance: the foot stands on it


def test_a_crowded_rim_is_not_the_ground():
    """The rim's plane holds more points than the table and a fifth of all: the bowl is under it, so
    the ground is the table."""
    points = bowl_on_a_table(table_points=150, rim_points=1500)
    plane = find_ground(points, UP, tolerance=0.03)
    assert plane is not None and abs(plane.offset) < 0.03, None if plane is None else plane.offset


def test_no_ground_under_a_ball_seen_from_all_sides():
    """Points all over a ball (no table, nothing flat): no plane is the ground."""
    direction = np.random.default_rng(1).normal(size=(3000, 3))
    ball = direction / np.linalg.norm(direction, axis=1, keepdims=True)
    assert find_ground(ball, UP, tolerance=0.02) is None


def test_ring_points_behind_the_box_are_hidden():
    """A table point right behind the box (as a camera sees it) is left out of that view; one in
    front of it is kept."""
    c2w = torch.tensor(orbit_c2w(4, distance=4.0, elevation=0.3))  # [4, 4, 4] looking at the origin
    n = len(c2w)
    full = torch.full((n,), 200.0, dtype=torch.float64)
    cameras = Cameras(c2w, full, full, torch.full((n,), 160.0, dtype=torch.float64),
                      torch.full((n,), 120.0, dtype=torch.float64), 320, 240)
    eye = cameras.centers[0].float()
    flat = torch.nn.functional.normalize(torch.tensor([float(eye[0]), float(eye[1]), 0.0]), dim=0)
    points = torch.stack([-1.5 * flat, 1.5 * flat])  # [2, 3] behind and in front of the box, for view 0
    points[:, 2] = 0.0
    colours = torch.rand(n, 2, 3)
    hidden = hide_behind_box(colours, cameras, points, torch.tensor([-0.5, -0.5, 0.1]), torch.tensor([0.5, 0.5, 1.0]))
    assert bool(hidden[0, 0].isnan().all()) and not bool(hidden[0, 1].isnan().any())
