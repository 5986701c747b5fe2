"""Free space from the images (``engine.free_space``): lines of sight open a cup that every
silhouette fills, photo carving removes what the views see in different colours, and the loss terms
pull a surface where the evidence says it is."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import trimesh

from engine.cameras import Cameras
from engine.data.dataset import DatasetSplit
from engine.data.transforms import load_split
from engine.evaluate import geometry_metrics
from engine.free_space import FreeSpace, FreeSpaceOptions, SparsePoints, carved_start, find_free_space
from engine.free_space.losses import free_space_loss
from engine.free_space.photo import photo_carve
from engine.free_space.start import HOLLOW_SHARE, CarvedStart
from engine.geometry.grid_surface import extract_surface
from engine.methods.dmtet import Batch, render_losses
from engine.progress import Progress
from engine.render import rasterize
from engine.roi import find_roi
from engine.utils.math import cell_centres, lattice_nodes, look_at

# A cup standing on z = -0.5: outer radius 0.6, height 1, a cavity of radius 0.42 down to z = -0.25.
OUTER, CAVITY, TOP, BOTTOM, FLOOR = 0.6, 0.42, 0.5, -0.5, -0.25
SIZE, FOCAL, DISTANCE = 64, 80.0, 3.0
LO, HI = torch.tensor([-0.7, -0.7, -0.6]), torch.tensor([0.7, 0.7, 0.6])


def sphere_cameras() -> Cameras:
    """28 cameras around the cup at elevations from -60 to 70 degrees."""
    eyes = []
    for elevation in (-60, -25, 10, 40, 70):
        count = 4 if abs(elevation) > 50 else 6
        for i in range(count):
            azimuth, e = 2 * math.pi * (i + 0.5 * (elevation > 0)) / count, math.radians(elevation)
            eyes.append(DISTANCE * np.array([math.cos(azimuth) * math.cos(e), math.sin(azimuth) * math.cos(e),
                                             math.sin(e)]))
    c2w = look_at(torch.tensor(np.stack(eyes), dtype=torch.float32), torch.zeros(3), torch.tensor([0.0, 0.0, 1.0]))
    n = len(c2w)
    return Cameras(c2w, torch.full((n,), FOCAL), torch.full((n,), FOCAL), torch.full((n,), SIZE / 2),
                   torch.full((n,), SIZE / 2), SIZE, SIZE)


def cup_mesh() -> trimesh.Trimesh:
    """The cup as a surface of revolution: base, outer wall, rim, cavity wall and floor."""
    profile = [(0.0, BOTTOM), (OUTER, BOTTOM), (OUTER, TOP), (CAVITY, TOP), (CAVITY, FLOOR), (0.0, FLOOR)]
    return trimesh.creation.revolve(np.array(profile), sections=48)


def texture(points: torch.Tensor) -> torch.Tensor:
    """``[P, 3]`` a busy procedural colour of surface points ``[P, 3]``."""
    x, y, z = points.unbind(-1)
    waves = torch.stack([torch.sin(9 * x + 5 * z), torch.sin(11 * y - 7 * z), torch.sin(8 * (x + y))], -1)
    return 0.5 + 0.4 * torch.sign(waves) * waves.abs() ** 0.3


@pytest.fixture(scope="module")
def cup_views() -> DatasetSplit:
    return render_cup()


def render_cup() -> DatasetSplit:
    """The textured cup rendered by the engine's rasterizer (masks from its coverage)."""
    mesh = cup_mesh()
    cameras = sphere_cameras()
    vertices = torch.tensor(mesh.vertices, dtype=torch.float32)
    faces = torch.tensor(mesh.faces, dtype=torch.long)
    frags = rasterize(vertices, faces, cameras)
    covered = frags.face_id >= 0
    hit = (frags.bary[..., None] * vertices[faces[frags.face_id.clamp_min(0)]]).sum(-2)  # [N, H, W, 3]
    images = torch.where(covered[..., None], texture(hit.reshape(-1, 3)).reshape(hit.shape), torch.ones_like(hit))
    return DatasetSplit(images, covered.float(), cameras, [f"r_{i}" for i in range(len(cameras))])


def inner_wall_points(cameras: Cameras) -> SparsePoints:
    """Points on the cavity's wall and floor, each observed (exactly) by the cameras that see it
    through the cup's opening."""
    angles = torch.linspace(0, 2 * math.pi, 25)[:-1]
    heights = torch.linspace(FLOOR + 0.05, TOP - 0.05, 8)
    wall = torch.stack([CAVITY * torch.cos(angles)[:, None].expand(-1, 8), CAVITY * torch.sin(angles)[:, None].expand(
        -1, 8), heights[None].expand(24, -1)], -1).reshape(-1, 3)
    rings = [r * torch.stack([torch.cos(angles), torch.sin(angles), torch.zeros_like(angles)], -1) for r in (0.15, 0.3)]
    floor = torch.cat([torch.zeros(1, 3), *rings]) + torch.tensor([0.0, 0.0, FLOOR])
    points = torch.cat([wall, floor])
    centres = cameras.centers.float()
    # The line from a camera above the rim to a point of the (convex) cavity sees it iff it crosses the opening.
    t = (TOP - points[None, :, 2]) / (centres[:, None, 2] - points[None, :, 2])  # [N, P]
    crossing = points[None] + t[..., None] * (centres[:, None] - points[None])
    seen = (centres[:, None, 2] > TOP) & (crossing[..., :2].norm(dim=-1) < CAVITY - 0.01)
    views, index = seen.nonzero(as_tuple=True)
    pixels = cameras.project(points)[0][views, index]  # [O, 2]
    return SparsePoints(points, views, index, pixels)


def start_at(sdf: torch.Tensor, point: tuple[float, float, float], resolution: int) -> float:
    """The lattice value nearest to ``point``."""
    cell = float((HI - LO).max()) / resolution
    index = ((torch.tensor(point) - LO) / cell).round().long()
    return float(sdf[index[0], index[1], index[2]])


def test_lines_of_sight_open_the_cup_that_the_hull_fills(cup_views):
    sparse = inner_wall_points(cup_views.cameras)
    assert len(sparse) > 100 and len(sparse.views) > 500
    free = FreeSpace(sparse, None, LO, HI)
    start = carved_start(free, cup_views, lo=LO, hi=HI, resolution=48, opts=FreeSpaceOptions(),
                         progress=Progress(lambda _e: None))
    for point in [(0.0, 0.0, 0.2), (0.2, 0.0, 0.0), (0.0, -0.25, -0.1)]:  # inside the cavity
        assert start_at(start.hull_sdf, point, 48) < 0  # the silhouettes fill it
        assert start_at(start.sdf, point, 48) > 0  # the lines of sight open it
    # The wall and the base stay solid: the carve reaches at most about a cell into them (the splat's edge). The
    # rim's top is left out: these points lie on the inner wall only, so a splat that spills over the rim's edge
    # finds no nearer point there and opens nodes within a cell below the top (8 of 16 831 solid nodes).
    nodes = lattice_nodes(LO, HI, 48)
    radius, z = nodes[..., :2].norm(dim=-1), nodes[..., 2]
    cell = float((HI - LO).max()) / 48
    solid = (((radius > CAVITY + 2 * cell) & (z < TOP - 2 * cell)) | (z < FLOOR - 2 * cell)) & (start.hull_sdf < -cell)
    assert bool(solid.any()) and bool((start.sdf[solid] < 0).all())
    # Without the carve the start is the hull.
    plain = carved_start(free, cup_views, lo=LO, hi=HI, resolution=48,
                         opts=FreeSpaceOptions(sight_carve=False), progress=Progress(lambda _e: None))
    assert torch.equal(plain.sdf, plain.hull_sdf)


def test_points_on_the_lines_of_sight_lie_in_empty_space(cup_views):
    """The free-space loss's samples: in the box, short of their points, never inside the cup's wall."""
    lines = inner_wall_points(cup_views.cameras).sight_lines(cup_views.cameras)
    points = lines.sample(4000, LO, HI, 0.025, torch.Generator().manual_seed(0))
    assert len(points) > 3000 and bool(((points >= LO) & (points <= HI)).all())
    radius, z = points[:, :2].norm(dim=-1), points[:, 2]
    in_wall = (radius > CAVITY + 1e-3) & (radius < OUTER - 1e-3) & (z > BOTTOM) & (z < TOP - 1e-3)
    in_base = (radius < OUTER) & (z > BOTTOM) & (z < FLOOR - 1e-3)
    assert not bool((in_wall | in_base).any())
    assert bool(((radius < CAVITY) & (z < TOP)).any())  # and some inside the cavity


def test_photo_carving_opens_the_cup_and_keeps_its_wall(cup_views):
    """From the hull of the silhouettes (the cavity filled to the rim), the views see the lid in the
    colours of different parts of the cavity: carving removes it; the outer wall, seen in agreeing
    colours, stays."""
    resolution = 32
    centres, shape = cell_centres(LO, HI, resolution)
    cell = float((HI - LO).max()) / resolution
    inside = (centres[:, :2].norm(dim=-1) < OUTER) & (centres[:, 2] > BOTTOM) & (centres[:, 2] < TOP)
    occupancy = inside.float().reshape(shape).numpy()
    carved = photo_carve(occupancy, centres[0].numpy(), cell, cup_views, threshold=0.06, min_views=3, rounds=25)
    flat = torch.from_numpy(carved.reshape(-1))
    radius, z = centres[:, :2].norm(dim=-1), centres[:, 2]
    cavity = (radius < CAVITY - 2 * cell) & (z > FLOOR + 2 * cell) & (z < TOP - cell)
    wall = (radius > CAVITY + 1.5 * cell) & (radius < OUTER - cell) & (z > BOTTOM + cell) & (z < TOP - cell)
    assert float((flat[cavity] < 0.5).float().mean()) > 0.5  # more than half of the cavity is opened
    assert float((flat[wall] > 0.5).float().mean()) > 0.95  # the wall is kept


def test_free_space_loss_pushes_the_sdf_positive():
    sdf = torch.nn.Parameter(torch.tensor([-0.05, -0.01, 0.02]))
    optimizer = torch.optim.Adam([sdf], lr=0.01)
    for _ in range(30):
        optimizer.zero_grad()
        free_space_loss(sdf, cell=0.01).backward()
        optimizer.step()
    assert bool((sdf > -1e-3).all()) and float(sdf[2]) == pytest.approx(0.02)  # a positive value is left alone
    assert float(free_space_loss(torch.zeros(0), 0.01)) == 0.0


def test_sparse_depth_pulls_the_rendered_surface_to_the_point():
    """A sphere seen by one camera; a point observed at the image centre lies 0.1 behind its front:
    DMTet's ``sparse_depth`` term moves the surface there."""
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    vertices = torch.tensor(sphere.vertices, dtype=torch.float32)
    faces = torch.tensor(sphere.faces, dtype=torch.long)
    cameras = Cameras(look_at(torch.tensor([[0.0, -3.0, 0.0]]), torch.zeros(3), torch.tensor([0.0, 0.0, 1.0])),
                      torch.tensor([FOCAL]), torch.tensor([FOCAL]), torch.tensor([SIZE / 2]), torch.tensor([SIZE / 2]),
                      SIZE, SIZE)
    target = 3.0 - 0.5 + 0.1
    sparse = SparsePoints(torch.tensor([[0.0, target - 3.0, 0.0]]), torch.tensor([0]), torch.tensor([0]),
                          torch.tensor([[SIZE / 2, SIZE / 2]]))
    batch = Batch(cameras, torch.ones(1, SIZE, SIZE, 3), torch.ones(1, SIZE, SIZE), torch.ones(1, 1, 1, 3), views=[0])

    def albedo(points: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(points)

    offset = torch.nn.Parameter(torch.zeros_like(vertices))
    optimizer = torch.optim.Adam([offset], lr=0.01)
    first = None
    for _ in range(40):
        losses = render_losses(vertices + offset, faces, albedo, batch, 0.01, sparse=sparse, cell=0.02)
        first = float(losses["sparse_depth"]) if first is None else first
        optimizer.zero_grad()
        losses["sparse_depth"].backward()
        optimizer.step()
    depth = rasterize(vertices + offset.detach(), faces, cameras).depth[0, SIZE // 2, SIZE // 2]
    assert first == pytest.approx(0.1 / 0.02, rel=0.05)
    assert abs(float(depth) - target) < 0.02


def test_the_bowl_start_is_open(datasets):
    """The shared bowl, 100 views at 128 px: features triangulated with the given cameras open the
    hollow that every silhouette covers; the carved start is far closer to the truth than the hull."""
    split = load_split(datasets / "bowl", "train", scale=0.5)
    norm = find_roi(split)
    unit = norm.split_to_unit(split)
    lo, hi = torch.tensor(norm.box_min), torch.tensor(norm.box_max)
    progress = Progress(lambda _e: None)
    free = find_free_space(unit, unit, lo=lo, hi=hi, opts=FreeSpaceOptions(), progress=progress)
    assert len(free.sparse) > 300
    start = carved_start(free, unit, lo=lo, hi=hi, resolution=48, opts=FreeSpaceOptions(), progress=progress)
    gt = trimesh.load(datasets / "bowl" / "gt_mesh.ply", force="mesh")
    cell = float((hi - lo).max()) / 48

    def chamfer(sdf: torch.Tensor) -> float:
        mesh = extract_surface((0.5 - sdf / (2 * cell)).numpy(), lo.numpy(), cell)
        mesh.vertices = norm.to_world(torch.tensor(mesh.vertices)).numpy()
        return geometry_metrics(mesh, gt, samples=30_000)["chamfer_l1"]

    hull, carved = chamfer(start.hull_sdf), chamfer(start.sdf)
    # Measured (2-core CPU): hull 0.048, carved 0.040 (0.018 before the splats were brought nearer with their
    # distance, SPLAT_SLOPE 0, which dug into convex objects; at 256 px the carve opens 79% of the hollow's nodes).
    # The bound sits between: the test fails if the lines of sight stop opening the hollow.
    assert hull > 0.035 and carved < 0.9 * hull, (hull, carved)
    assert start.opened_share > 2 * HOLLOW_SHARE and start.opened_hollow  # DMTet's and NeuS's hollow modes start


def test_sparse_points_on_a_ball_carve_nothing_inside_it(monkeypatch):
    """A ball seen by the cup's cameras, with a few points on its surface: each view sees only two or
    three of them, so each splat disc spreads one depth over several pixels of a curved surface. The
    splatted depths are brought nearer with the distance from the observation (``SPLAT_SLOPE``), so
    no lattice node more than a cell inside the ball is carved; without that (slope 0) the discs dig
    into its flanks, as they dug into spot and fandisk."""
    cameras = sphere_cameras()
    radius = 0.5
    ball = trimesh.creation.icosphere(subdivisions=4, radius=radius)
    frags = rasterize(torch.tensor(ball.vertices, dtype=torch.float32), torch.tensor(ball.faces), cameras)
    covered = (frags.face_id >= 0).float()
    views = DatasetSplit(torch.ones(*covered.shape, 3), covered, cameras, [f"r_{i}" for i in range(len(cameras))])
    points = torch.nn.functional.normalize(torch.randn(10, 3, generator=torch.Generator().manual_seed(3)), dim=-1)
    points = points * radius
    toward = torch.nn.functional.normalize(cameras.centers.float()[:, None] - points[None], dim=-1)  # [N, P, 3]
    seen = (toward * points[None] / radius).sum(-1) > 0.2
    view, index = seen.nonzero(as_tuple=True)
    sparse = SparsePoints(points, view, index, cameras.project(points)[0][view, index])
    free = FreeSpace(sparse, None, LO, HI)
    nodes = lattice_nodes(LO, HI, 48)
    cell = float((HI - LO).max()) / 48
    deep = nodes.norm(dim=-1) < radius - cell

    def carve(slope: float) -> CarvedStart:
        monkeypatch.setattr("engine.free_space.carve.SPLAT_SLOPE", slope)
        return carved_start(free, views, lo=LO, hi=HI, resolution=48, opts=FreeSpaceOptions(),
                            progress=Progress(lambda _e: None))

    def carved_inside(start: CarvedStart) -> int:
        return int((deep & (start.hull_sdf < 0) & (start.sdf > 0)).sum())

    # measured: 614 nodes without the slope, none with it
    assert carved_inside(carve(0.0)) > 100
    start = carve(3.0)
    assert carved_inside(start) == 0
    assert not start.opened_hollow  # DMTet and NeuS take the ball as it is (no hollow mode)
