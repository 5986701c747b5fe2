"""A built-in demo dataset, rendered on the spot with the engine's own rasterizer (no downloads).

The object is a torus (a hole that the visual hull recovers from the views that look through it)
painted with a procedural pattern in object space, seen by cameras spread evenly over the sphere.
The layout is the NeRF-synthetic one that ``load_split`` reads, with ``gt_mesh.ply`` beside it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import trimesh
from PIL import Image

from .cameras import Cameras
from .render import antialias, interpolate, rasterize
from .utils.math import look_at

CAMERA_DISTANCE = 3.5
FIELD_OF_VIEW = 0.6911  # radians, the same as the shared datasets
SUPERSAMPLE = 2


def sphere_cameras(count: int, size: int, seed_offset: float = 0.0) -> Cameras:
    """``count`` cameras on a Fibonacci sphere at ``CAMERA_DISTANCE`` looking at the origin (world Z up)."""
    i = torch.arange(count, dtype=torch.float32) + 0.5
    z = 1.0 - 2.0 * i / count * 0.96 - 0.02  # stay clear of the poles, where "up" is undefined
    phi = math.pi * (3.0 - math.sqrt(5.0)) * i + seed_offset
    ring = torch.sqrt(1.0 - z**2)
    eye = CAMERA_DISTANCE * torch.stack([ring * torch.cos(phi), ring * torch.sin(phi), z], dim=-1)
    c2w = look_at(eye, torch.zeros(3), torch.tensor([0.0, 0.0, 1.0]))
    focal = torch.full((count,), 0.5 * size / math.tan(0.5 * FIELD_OF_VIEW))
    centre = torch.full((count,), size / 2.0)
    return Cameras(c2w, focal, focal, centre, centre, size, size)


def demo_mesh() -> trimesh.Trimesh:
    """The demo object: a torus tilted out of the ground plane, fitting the unit sphere."""
    mesh = trimesh.creation.torus(major_radius=0.62, minor_radius=0.28, major_sections=96, minor_sections=48)
    mesh.apply_transform(trimesh.transformations.rotation_matrix(math.radians(35), [1, 0, 0]))
    return mesh


def albedo(points: torch.Tensor) -> torch.Tensor:
    """Procedural colour ``[..., 3]`` in [0, 1] of object-space points ``[..., 3]``: stripes times checks."""
    checks = ((torch.floor(points * 6.0).sum(-1) % 2) * 0.35 + 0.65)[..., None]
    hue = torch.stack([0.55 + 0.4 * torch.sin(4 * points[..., 0]), 0.5 + 0.4 * torch.sin(5 * points[..., 1] + 1),
                       0.5 + 0.4 * torch.sin(3 * points[..., 2] + 2)], dim=-1)
    return (hue * checks).clamp(0.0, 1.0)


def render_rgba(mesh: trimesh.Trimesh, cameras: Cameras) -> torch.Tensor:
    """``[N, H, W, 4]`` straight-alpha RGBA renders of the albedo, supersampled for smooth edges."""
    verts = torch.tensor(mesh.vertices, dtype=torch.float32)
    faces = torch.tensor(mesh.faces, dtype=torch.int64)
    big = cameras.scaled(SUPERSAMPLE)
    frags = rasterize(verts, faces, big)
    position = interpolate(verts, faces, frags)  # [N, h, w, 3]
    covered = (frags.face_id >= 0)[..., None].float()
    rgba = torch.cat([albedo(position) * covered, covered], dim=-1)  # premultiplied
    rgba = antialias(rgba, frags, verts, faces, big)
    rgba = F.avg_pool2d(rgba.permute(0, 3, 1, 2), SUPERSAMPLE).permute(0, 2, 3, 1)  # [N, H, W, 4]
    alpha = rgba[..., 3:].clamp(0.0, 1.0)
    rgb = torch.where(alpha > 1e-4, rgba[..., :3] / alpha.clamp_min(1e-4), torch.zeros_like(rgba[..., :3]))
    return torch.cat([rgb.clamp(0.0, 1.0), alpha], dim=-1)


def write_split(folder: Path, split: str, mesh: trimesh.Trimesh, cameras: Cameras) -> None:
    (folder / split).mkdir(parents=True, exist_ok=True)
    images = (render_rgba(mesh, cameras).numpy() * 255.0 + 0.5).astype(np.uint8)
    frames = []
    for i, image in enumerate(images):
        Image.fromarray(image, "RGBA").save(folder / split / f"r_{i}.png")
        frames.append({"file_path": f"./{split}/r_{i}", "transform_matrix": cameras.c2w[i].tolist()})
    (folder / f"transforms_{split}.json").write_text(
        json.dumps({"camera_angle_x": FIELD_OF_VIEW, "frames": frames}, indent=1))


def make_demo_dataset(folder: str | Path, train_views: int = 32, test_views: int = 8, size: int = 128) -> Path:
    """Render the demo object into ``folder`` (created); returns ``folder``.

    Writes ``transforms_train.json``, ``transforms_test.json``, ``train/r_N.png``,
    ``test/r_N.png`` (RGBA, ``size``² pixels) and ``gt_mesh.ply``, all in one Z-up world frame.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    mesh = demo_mesh()
    write_split(folder, "train", mesh, sphere_cameras(train_views, size))
    write_split(folder, "test", mesh, sphere_cameras(test_views, size, seed_offset=0.7))
    mesh.export(folder / "gt_mesh.ply")
    return folder
