"""Checks of the PBR outputs in Blender's Cycles (issue 21): what the normal map is worth, and the
relighting score's floor.

    .venv/bin/python benchmarks/bench_pbr_outputs.py

1. **Normal map.** A bumpy sphere (80k faces) decimated to 1 000 faces and baked (diffuse grey, its
   normal map from the dense surface), rendered by Cycles under a raking sun at three of
   bunny-studio's test cameras (128², 32 samples), against the dense sphere rendered the same way:
   PSNR over the pixels both cover, with the normal map and with a flat one.
2. **Relit floor.** bunny-studio's true mesh (decimated to 60 000 faces) wearing the true albedo
   (``test_albedo/`` projected onto it), roughness 0.3, scored like any asset (``relit_psnr``): what
   the renderer and the glTF material model can reach at best.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import trimesh
from PIL import Image

from engine.data.transforms import load_split
from engine.evaluate import relit_psnr
from engine.export import write_glb
from engine.methods.base import LearnedLight, Material
from engine.relight import relight_command
from engine.texture import TexturedMesh, texture_mesh
from engine.texture.pbr import pbr_mesh

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT.parent / "shared" / "datasets" / "bunny-studio"
RAKING_SUN = {"sun": {"rotation_euler_deg": [70, 0, 30], "energy": 3.0, "color": [1, 1, 1], "angle_deg": 1.0},
              "world": {"color": [1, 1, 1], "strength": 0.05}}
VIEWS = (0, 4, 9)


def bumpy_sphere() -> tuple[np.ndarray, np.ndarray]:
    dense = trimesh.creation.icosphere(6)
    d = dense.vertices
    radius = 1 + 0.04 * np.sin(6 * np.arctan2(d[:, 1], d[:, 0])) * np.cos(3 * np.arcsin(np.clip(d[:, 2], -1, 1)))
    return d * radius[:, None], np.asarray(dense.faces)


def render(asset: Path, light: Path, folder: Path) -> np.ndarray:
    """``[3, H, W, 4]`` Cycles renders of ``asset`` (RGBA in [0, 1]) at :data:`VIEWS`."""
    subprocess.run(relight_command(asset, DATASET, folder, light=light, samples=32, image_scale=0.5),
                   check=True, capture_output=True, cwd=ROOT)
    return np.stack([np.asarray(Image.open(folder / f"r_{i}.png"), np.float64) / 255 for i in VIEWS])


def covered_psnr(a: np.ndarray, b: np.ndarray) -> float:
    both = (a[..., 3] > 0.99) & (b[..., 3] > 0.99)
    return float(-10 * np.log10(((a[..., :3] - b[..., :3]) ** 2)[both].mean()))


def normal_map_check(folder: Path) -> None:
    vertices, faces = bumpy_sphere()
    grey = Material(base_colour=lambda p: np.full((len(p), 3), 0.7), roughness=lambda p: np.ones(len(p)),
                    metallic=lambda p: np.zeros(len(p)),
                    light=LearnedLight({}, environment=lambda d: 0 * d, radiance=lambda d: 0 * d))
    low = pbr_mesh(vertices, faces, grey, lambda p: p, target_faces=1000, texture_size=512)
    flat = np.full_like(low.normal_map, (128, 128, 255))
    dense_normals = np.asarray(trimesh.Trimesh(vertices, faces).vertex_normals, np.float32)
    dense = TexturedMesh(vertices.astype(np.float32), faces.astype(np.int32), np.zeros((len(vertices), 2), np.float32),
                         dense_normals, np.full((4, 4, 3), round(0.7 * 255), np.uint8), "dense",
                         orm=np.full((4, 4, 3), (255, 255, 0), np.uint8), normal_map=flat[:4, :4])
    light = folder / "raking.json"
    light.write_text(json.dumps(RAKING_SUN))
    images = {}
    for tag, mesh in (("dense", dense), ("normal map", low), ("flat", replace(low, normal_map=flat))):
        asset = write_glb(mesh, folder / f"{tag.replace(' ', '_')}.glb")
        images[tag] = render(asset, light, folder / tag.replace(" ", "_"))
    print(f"normal map: {covered_psnr(images['dense'], images['normal map']):.2f} dB against the dense sphere, "
          f"flat normal map {covered_psnr(images['dense'], images['flat']):.2f} dB ({len(low.faces)} faces)")


def relit_floor(folder: Path) -> None:
    gt = trimesh.load(DATASET / "gt_mesh.ply", force="mesh")
    mesh = texture_mesh(gt.vertices, gt.faces, load_split(DATASET, "test_albedo"), target_faces=60_000,
                        texture_size=1024)
    orm = np.full((4, 4, 3), (255, round(0.3 * 255), 0), np.uint8)
    asset = write_glb(replace(mesh, orm=orm, normal_map=np.full((4, 4, 3), (128, 128, 255), np.uint8)),
                      folder / "truth.glb")
    scores = relit_psnr(asset, DATASET)
    print(f"relit floor: the true mesh and albedo score {scores['relit_psnr']:.2f} dB relit "
          f"({scores['relight_seconds']:.0f} s in Cycles)")


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        normal_map_check(Path(folder))
        relit_floor(Path(folder))


if __name__ == "__main__":
    main()
