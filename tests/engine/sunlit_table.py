"""A small synthetic photo set for the automatic masks: a glossy object on a textured table under a sun.

The object is a ball with a thin upright rod on top (an ear), painted with a blue and yellow
pattern, lit by a sun with a specular highlight that moves with the view, standing on a table of
random Voronoi cells; the sun casts the object's hard shadow on the table (the table there is the
same cell colours, darker, in every view). Views circle the object at two heights. Everything is
in the upright frame of :mod:`engine.sfm.scene` (table at z = 0, +Z up).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import trimesh

from engine.cameras import Cameras
from engine.data.dataset import DatasetSplit
from engine.render import RayCaster
from engine.sfm.exposure import apply_gains
from tests.support import orbit_c2w

SUN = torch.nn.functional.normalize(torch.tensor([0.6, 0.35, 0.75]), dim=0)  # towards the sun
TABLE_HALF_SIZE = 3.0
SKY = (0.55, 0.57, 0.6)
SHADOW = 0.3  # the share of the light a table point in the object's shadow still gets


@dataclass
class SunlitTable:
    """The photos (``split``, no masks), the object's mesh and box, and per view which pixels show the
    object (``silhouettes [N, H, W]``), its ear (``ears``) and the table in its shadow (``shadows``)."""

    split: DatasetSplit
    mesh: trimesh.Trimesh
    box_min: torch.Tensor
    box_max: torch.Tensor
    silhouettes: torch.Tensor
    ears: torch.Tensor
    shadows: torch.Tensor


def sunlit_table(views: int = 24, size: int = 96, seed: int = 0) -> SunlitTable:
    """Render the scene (see the module docstring) from ``views`` cameras of ``size`` pixels."""
    ball = trimesh.creation.icosphere(subdivisions=3, radius=0.45)
    ball.apply_translation([0.0, 0.0, 0.45])
    ear = trimesh.creation.cylinder(radius=0.05, height=0.6, sections=16)
    ear.apply_translation([0.15, 0.0, 1.05])
    mesh = trimesh.util.concatenate([ball, ear])
    c2w = np.concatenate([orbit_c2w(views // 2, 3.2, 0.35), orbit_c2w(views - views // 2, 3.2, 0.95)])
    c2w[:, :3, 3] += [0.0, 0.0, 0.5]  # look at the ball's centre
    focal = torch.full((views,), size * 1.1, dtype=torch.float32)
    centre = torch.full((views,), size / 2, dtype=torch.float32)
    cameras = Cameras(torch.tensor(c2w, dtype=torch.float32), focal, focal, centre, centre, size, size)
    caster = RayCaster(torch.tensor(mesh.vertices, dtype=torch.float32), torch.tensor(mesh.faces))
    normals = torch.tensor(mesh.face_normals, dtype=torch.float32)
    rng = np.random.default_rng(seed)
    cells = torch.tensor(rng.uniform(-TABLE_HALF_SIZE, TABLE_HALF_SIZE, (400, 2)), dtype=torch.float32)
    cell_colours = torch.tensor(rng.uniform(0.15, 0.85, (400, 3)), dtype=torch.float32)

    directions = cameras.pixel_directions().float().reshape(views, -1, 3)  # [N, H*W, 3]
    origins = cameras.centers.float()[:, None].expand_as(directions)
    face, t = caster.cast(origins.reshape(-1, 3), directions.reshape(-1, 3))
    face, t = face.reshape(views, -1), t.reshape(views, -1)
    on_object = face >= 0
    t_table = -origins[..., 2] / directions[..., 2].clamp_max(-1e-6)  # [N, H*W]
    table_point = origins + directions * t_table[..., None]
    on_table = ~on_object & (directions[..., 2] < 0) & (table_point[..., :2].abs() < TABLE_HALF_SIZE).all(-1)
    # The table: the nearest cell's colour, darker where the object stands between it and the sun.
    flat = table_point.reshape(-1, 3)
    nearest = torch.cdist(flat[:, :2], cells).argmin(-1)
    blocked = caster.cast(flat + 1e-3 * SUN, SUN.expand_as(flat))[0] >= 0
    shadowed = (blocked & on_table.reshape(-1)).reshape(views, -1)
    table = cell_colours[nearest].reshape(views, -1, 3) * torch.where(shadowed, SHADOW, 1.0)[..., None]
    # The object: a blue / yellow pattern, diffuse sun and sky light, and a sharp highlight.
    point = origins + directions * t.clamp_max(1e3)[..., None]
    normal = normals[face.clamp_min(0)]
    pattern = (torch.sin(7 * point).prod(-1) > 0)[..., None]
    paint = torch.where(pattern, torch.tensor([0.85, 0.75, 0.3]), torch.tensor([0.2, 0.3, 0.8]))
    lit = (normal @ SUN).clamp_min(0)[..., None]
    mirrored = SUN - 2 * (SUN @ normal.transpose(-1, -2))[..., None] * normal  # the sun reflected
    highlight = ((mirrored * directions).sum(-1).clamp_min(0) ** 60)[..., None]
    shade = paint * (0.3 + 0.7 * lit) + 0.8 * highlight * (lit > 0)
    colours = torch.where(on_object[..., None], shade, torch.where(on_table[..., None], table, torch.tensor(SKY)))
    images = colours.clamp(0, 1).reshape(views, size, size, 3)
    lo = torch.tensor(mesh.bounds[0], dtype=torch.float32) - 0.1
    hi = torch.tensor(mesh.bounds[1], dtype=torch.float32) + 0.1
    lo[2] = 0.0
    shape = (views, size, size)
    return SunlitTable(DatasetSplit(images, None, cameras, [f"view_{i}" for i in range(views)]), mesh, lo, hi,
                       on_object.reshape(shape), (face >= len(ball.faces)).reshape(shape), shadowed.reshape(shape))


def with_exposures(split: DatasetSplit, log_gain_spread: float, seed: int = 1) -> DatasetSplit:
    """The same photos, each with an exposure and white balance of its own: a gain per colour channel
    in linear light, log-normal with ``log_gain_spread``."""
    generator = torch.Generator().manual_seed(seed)
    gains = torch.exp(log_gain_spread * torch.randn(len(split), 3, generator=generator))
    return DatasetSplit(apply_gains(split.images, gains), None, split.cameras, split.names)


def iou(masks: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """``[N]`` intersection over union of boolean ``masks`` and ``truth`` ``[N, H, W]``."""
    return (masks & truth).sum((1, 2)) / (masks | truth).sum((1, 2)).clamp_min(1)
