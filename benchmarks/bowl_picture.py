"""A picture of meshes of the bowl seen from above, side by side with its ground truth (BENCHMARKS.md, issue 18).

    .venv/bin/python benchmarks/bowl_picture.py OUT.png LABEL=MESH [LABEL=MESH ...] [--size 256]

Each mesh (OBJ/PLY, the bowl's world frame) is rendered with the engine's rasterizer from a camera 60
degrees above the horizon, shaded by its face normals (a grey Lambert light from the camera), the
ground truth ``../shared/datasets/bowl/gt_mesh.ply`` last; each panel is labelled.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
import trimesh
from PIL import Image, ImageDraw

from engine.cameras import Cameras
from engine.render import rasterize

TRUTH = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "bowl" / "gt_mesh.ply"


def camera_above(size: int, elevation: float = 60.0, distance: float = 3.2) -> Cameras:
    """One camera looking at the origin from ``elevation`` degrees, world Z up."""
    e = math.radians(elevation)
    eye = distance * np.array([0.0, -math.cos(e), math.sin(e)])
    forward = -eye / np.linalg.norm(eye)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, np.cross(right, forward), -forward, eye
    focal = size / 2 / math.tan(0.69 / 2)
    one = torch.ones(1)
    return Cameras(torch.tensor(c2w, dtype=torch.float32)[None], focal * one, focal * one, size / 2 * one,
                   size / 2 * one, size, size)


def shaded(mesh: trimesh.Trimesh, camera: Cameras) -> np.ndarray:
    """``[H, W, 3]`` uint8: the mesh's face normals lit from the camera, over white."""
    vertices = torch.tensor(mesh.vertices, dtype=torch.float32)
    faces = torch.tensor(mesh.faces, dtype=torch.long)
    frags = rasterize(vertices, faces, camera)
    face_id = frags.face_id[0]
    normals = torch.tensor(mesh.face_normals, dtype=torch.float32)[face_id.clamp_min(0)]  # [H, W, 3]
    towards = -camera.pixel_directions()[0]
    light = (normals * towards).sum(-1).abs()
    grey = 0.15 + 0.8 * light
    image = torch.where(face_id >= 0, grey, torch.ones_like(grey))
    return (image[..., None].expand(-1, -1, 3).numpy() * 255 + 0.5).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out")
    parser.add_argument("meshes", nargs="+", metavar="LABEL=MESH")
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    camera = camera_above(args.size)
    panels = [pair.split("=", 1) for pair in args.meshes] + [["truth", str(TRUTH)]]
    images = []
    for label, path in panels:
        image = Image.fromarray(shaded(trimesh.load(path, force="mesh"), camera))
        ImageDraw.Draw(image).text((8, 6), label, fill=(0, 0, 0))
        images.append(image)
    sheet = Image.new("RGB", (args.size * len(images), args.size), (255, 255, 255))
    for i, image in enumerate(images):
        sheet.paste(image, (i * args.size, 0))
    sheet.convert("L").save(args.out, optimize=True)  # grey shading: one channel keeps the file small


if __name__ == "__main__":
    main()
