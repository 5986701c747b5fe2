"""Issue 23's numbers: depth fusion, depth-supervised DMTet and NeuS, noisy depth, relief from a normal map.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_depth.py fusion [--objects spot bunny] [--views 100]
    PYTHONPATH=. .venv/bin/python benchmarks/bench_depth.py noise  [--objects ...]   # 1% Gaussian, 5% dropped
    PYTHONPATH=. .venv/bin/python benchmarks/bench_depth.py dmtet  [--objects spot] [--views 20]
    PYTHONPATH=. .venv/bin/python benchmarks/bench_depth.py neus   [--objects spot] [--views 20]
    PYTHONPATH=. .venv/bin/python benchmarks/bench_depth.py relief

Depth and normal maps are rendered from each object's ``gt_mesh.ply`` with the engine's rasterizer
(``tests.support.write_depth_dataset``, into a temporary folder; not timed), then the whole job runs
as ``python -m engine reconstruct --evaluate`` does (``balanced`` preset unless ``--preset``), so the
scores are those of the exported, decimated, textured mesh (200k samples). Each row prints the
sampling floor (the ground truth against itself) and the reference visual-hull row of
``../shared/datasets/README.md``; "job s" is the whole job without the evaluation. ``relief``
integrates the normal map of a known height field with ``engine.relief`` and scores the heights.
Reports go to benchmarks/out/depth/.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import trimesh
from PIL import Image

from engine.cli import parse_options
from engine.evaluate import geometry_metrics
from engine.pipeline import reconstruct
from engine.progress import Progress
from engine.protocol import ReconstructJob, ReliefJob
from engine.relief import relief
from tests.support import write_depth_dataset

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
OUT = ROOT / "benchmarks" / "out" / "depth"
# Chamfer-L1 of the reference visual-hull rows (192³ voxels, 100 masks) of ../shared/datasets/README.md.
HULL = {"spot": 0.0042, "rocker-arm": 0.0108, "fandisk": 0.0090, "bunny": 0.0071}
ROW_METHOD = {"fusion": "depth", "noise": "depth", "dmtet": "dmtet", "neus": "neus"}
NOISE, DROPPED = 0.01, 0.05


def floor(name: str) -> float:
    """The Chamfer-L1 sampling floor of ``name``: its ground truth against itself (200k samples)."""
    gt = trimesh.load(DATASETS / name / "gt_mesh.ply", force="mesh")
    return geometry_metrics(gt, gt)["chamfer_l1"]


def reconstruction_row(row: str, name: str, args: argparse.Namespace, scratch: Path) -> dict:
    """One object's job on depth maps rendered from its ground truth; prints and returns its row."""
    noisy = row == "noise"
    folder = write_depth_dataset(DATASETS / name, scratch / f"{row}-{name}", views=args.views,
                                 normals=not (noisy and not args.noise_normals),
                                 noise=NOISE if noisy else 0.0, dropped=DROPPED if noisy else 0.0)
    method = ROW_METHOD[row]
    tag = "-".join([row, name, f"{args.views}views", *(o.replace("=", "") for o in args.option)])
    job = ReconstructJob(dataset=str(folder), out=str(OUT / tag), method=method, preset=args.preset,
                         device=args.device, options=parse_options(args.option), force=True, evaluate=True)
    started = time.perf_counter()
    report = reconstruct(job, Progress(lambda _event: None))["report"]
    wall = time.perf_counter() - started
    timings = report["timings"]
    metrics = report["metrics"]
    lowest = floor(name)
    result = {"row": row, "object": name, "views": report["views"], "method": method, "preset": args.preset,
              "options": args.option, "normals": bool(report.get("method_stats", {}).get("normals", True)),
              "floor": lowest, "hull": HULL[name], "ratio_to_floor": metrics["chamfer_l1"] / lowest,
              "job_s": timings["total"] - timings.get("evaluate", 0.0), "method_s": timings["reconstruct"],
              "wall_s": wall, "metrics": metrics, "threads": torch.get_num_threads()}
    print(f"| {row} | {name} | {result['views']} | {metrics['chamfer_l1']:.5f} | {lowest:.5f} "
          f"| {result['ratio_to_floor']:.2f} | {HULL[name]} | {metrics['normal_consistency']:.3f} "
          f"| {metrics['f_score_0.5%']:.3f} | {metrics['f_score_0.2%']:.3f} | {metrics.get('psnr', float('nan')):.2f} "
          f"| {result['method_s']:.1f} | {result['job_s']:.1f} |", flush=True)
    (OUT / f"{tag}.json").write_text(json.dumps({**result, "report": report}, indent=2))
    return result


def height_field(x: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A smooth known relief ``h(x, z)`` (scene units, on a 2-wide square) and its slopes ``dh/dx, dh/dz``:
    a bump, a dimple and a ripple."""
    bump = 0.3 * np.exp(-((x - 0.3) ** 2 + (z - 0.2) ** 2) / 0.15)
    dimple = -0.15 * np.exp(-((x + 0.45) ** 2 + (z + 0.4) ** 2) / 0.08)
    ripple = 0.04 * np.sin(4 * x) * np.cos(3 * z)
    h = bump + dimple + ripple
    dx = bump * -2 * (x - 0.3) / 0.15 + dimple * -2 * (x + 0.45) / 0.08 + 0.16 * np.cos(4 * x) * np.cos(3 * z)
    dz = bump * -2 * (z - 0.2) / 0.15 + dimple * -2 * (z + 0.4) / 0.08 - 0.12 * np.sin(4 * x) * np.sin(3 * z)
    return h, dx, dz


def relief_row(scratch: Path, kind: str, size: int = 256, width: float = 2.0) -> dict:
    """Integrate the camera-space normal map of :func:`height_field`, stored as ``kind`` (``npy``:
    float; ``png``: 8 bits per channel, as normal maps usually come), and score the relief's heights."""
    step = width / (size - 1)
    columns, rows = np.meshgrid(np.arange(size), np.arange(size))
    x, z = (columns - (size - 1) / 2) * step, ((size - 1) / 2 - rows) * step  # relief frame: image up = +Z
    h, dx, dz = height_field(x, z)
    normals = np.stack([-dx, -dz, np.ones_like(h)], -1)  # OpenGL camera axes: +X right, +Y up, +Z to the viewer
    normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
    if kind == "npy":
        np.save(scratch / "normals.npy", normals.astype(np.float32))
    else:
        Image.fromarray(np.round((normals + 1) / 2 * 255).astype(np.uint8), "RGB").save(scratch / "normals.png")
    shade = (127 + 127 * normals[..., 2:3] * np.array([1.0, 0.9, 0.8])).astype(np.uint8)
    Image.fromarray(shade, "RGB").save(scratch / "image.png")
    job = ReliefJob(image=str(scratch / "image.png"), out=str(OUT / f"relief-{kind}"),
                    normals=str(scratch / f"normals.{kind}"),
                    options={"width": width, "resolution": size}, force=True)
    started = time.perf_counter()
    files = relief(job, Progress(lambda _event: None))["files"]
    seconds = time.perf_counter() - started
    mesh = trimesh.load(files["obj"], force="mesh", process=False)
    found = -mesh.vertices[:, 1]  # heights face -Y
    truth = height_field(mesh.vertices[:, 0], mesh.vertices[:, 2])[0]
    error = found - truth
    error -= error.mean()  # integration fixes the heights up to a constant
    height_range = float(h.max() - h.min())
    result = {"row": "relief", "normal_map": kind, "grid": size, "height_range": height_range,
              "mean_error": float(np.abs(error).mean()), "max_error": float(np.abs(error).max()),
              "mean_error_share": float(np.abs(error).mean()) / height_range, "seconds": seconds,
              "vertices": len(mesh.vertices)}
    print(f"| {kind} {size}² | {height_range:.4f} | {result['mean_error']:.6f} | "
          f"{100 * result['mean_error_share']:.3f}% | {result['max_error']:.6f} | {seconds:.1f} |", flush=True)
    (OUT / f"relief-{kind}.json").write_text(json.dumps(result, indent=2))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("row", choices=[*ROW_METHOD, "relief"])
    parser.add_argument("--objects", nargs="+", default=list(HULL))
    parser.add_argument("--views", type=int, default=None, help="training views (default: 100; 20 for dmtet, neus)")
    parser.add_argument("--preset", default="balanced")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--noise-normals", action="store_true", help="noise row: keep the (exact) normal maps")
    parser.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    if args.views is None:
        args.views = 20 if args.row in ("dmtet", "neus") else 100
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"{torch.get_num_threads()} torch threads, device {args.device}, preset {args.preset}, "
          f"options {args.option}\n")
    with tempfile.TemporaryDirectory(prefix="meshlift-depth-") as scratch:
        if args.row == "relief":
            print("| normal map | height range | mean error | share of the range | max error | relief s |")
            print("|---|---|---|---|---|---|")
            for kind in ("npy", "png"):
                relief_row(Path(scratch), kind)
            return
        print("| row | object | views | Chamfer-L1 | floor | x floor | hull ref | NC | F@0.5% | F@0.2% | PSNR "
              "| method s | job s |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for name in args.objects:
            reconstruction_row(args.row, name, args, Path(scratch))


if __name__ == "__main__":
    main()
