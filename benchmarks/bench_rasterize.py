"""Time the renderer per 256x256 frame: rasterize, interpolate (vertex normals) and antialias.

Meshes: the spot GT mesh (5.8k faces) and spot subdivided until it has at least 200k faces. Cameras: the
first views of the spot training set. Prints a markdown table of the median time per frame.

    .venv/bin/python benchmarks/bench_rasterize.py [--device cpu|cuda] [--views 8] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch
import trimesh

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.cameras import Cameras  # noqa: E402
from engine.render import antialias, interpolate, rasterize  # noqa: E402

SPOT = ROOT.parent / "shared" / "datasets" / "spot"


def spot_cameras(views: int, size: int) -> Cameras:
    meta = json.loads((SPOT / "transforms_train.json").read_text())
    frames = meta["frames"][:views]
    c2w = torch.tensor([frame["transform_matrix"] for frame in frames], dtype=torch.float32)
    focal = torch.full((len(frames),), 0.5 * size / math.tan(0.5 * meta["camera_angle_x"]))
    centre = torch.full((len(frames),), size / 2)
    return Cameras(c2w, focal, focal, centre, centre, size, size)


def meshes() -> dict[str, trimesh.Trimesh]:
    spot = trimesh.load(SPOT / "gt_mesh.ply", process=False)
    dense = spot
    while len(dense.faces) < 200_000:
        dense = dense.subdivide()
    return {
        f"spot ({len(spot.faces) / 1e3:.1f}k faces)": spot,
        f"spot subdivided ({len(dense.faces) / 1e3:.0f}k faces)": dense,
    }


def median_ms(step, device: torch.device, repeats: int) -> float:
    """Median wall time of ``step()`` in milliseconds, after one warm-up call."""
    step()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--views", type=int, default=8, help="views per batch")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = torch.device(args.device)
    cameras = spot_cameras(args.views, args.size).to(device)
    frames = len(cameras)

    print(f"device {device}, batches of {frames} views of {args.size}x{args.size}, "
          f"{torch.get_num_threads()} torch threads; median ms per frame\n")
    print("| mesh | rasterize | interpolate normals | antialias | all three, forward + backward |")
    print("|---|---|---|---|---|")
    for name, mesh in meshes().items():
        verts = torch.tensor(mesh.vertices, dtype=torch.float32, device=device).requires_grad_(True)
        faces = torch.tensor(mesh.faces, dtype=torch.long, device=device)
        normals = torch.tensor(mesh.vertex_normals, dtype=torch.float32, device=device)
        frags = rasterize(verts, faces, cameras)
        shaded = interpolate(normals, faces, frags)

        def forward_backward(verts=verts, faces=faces, normals=normals):
            frags = rasterize(verts, faces, cameras)
            image = antialias(interpolate(normals, faces, frags), frags, verts, faces, cameras)
            image.sum().backward()

        times = [
            median_ms(lambda verts=verts, faces=faces: rasterize(verts, faces, cameras),
                      device, args.repeats),
            median_ms(lambda normals=normals, faces=faces, frags=frags: interpolate(normals, faces, frags),
                      device, args.repeats),
            median_ms(lambda shaded=shaded, frags=frags, verts=verts, faces=faces:
                      antialias(shaded, frags, verts, faces, cameras), device, args.repeats),
            median_ms(forward_backward, device, args.repeats),
        ]
        print(f"| {name} | " + " | ".join(f"{t / frames:.2f}" for t in times) + " |")


if __name__ == "__main__":
    main()
