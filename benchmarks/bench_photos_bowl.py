"""A bowl on a table from bare photos: does the reconstruction come out open?

    .venv/bin/python benchmarks/bench_photos_bowl.py [--methods hull neus] [--preset balanced]
        [--work /tmp/meshlift-bowl-photos] [--views 60] [--samples 32] [-o KEY=VALUE ...]

Renders the shared bowl standing on a textured table as opaque photos (Cycles through ``bpy``,
``benchmarks/render_bowl_on_table.py``) into ``--work`` (a temporary folder, never the repository),
then runs ``reconstruct`` on the bare photo folder for each method, as a user would: cameras by
structure-from-motion, automatic masks, the method. The recovered cameras are aligned to the ones
the photos were rendered with by the similarity of their centres (``engine.sfm.align``); the same
similarity takes the mesh into the frame of the bowl's ground truth for the scores.

"Hollow depth" is how deep rays cast straight down inside the rim (radius up to half the cavity's)
first meet the surface, below the rim, as a share of the true bowl's (median over the rays): 1 is
open as deep as the truth, 0 a lid at the rim.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import trimesh

from engine.cli import parse_options
from engine.data.transforms import load_split
from engine.evaluate import geometry_metrics
from engine.jobs import run_job
from engine.protocol import ReconstructJob
from engine.render import RayCaster
from engine.sfm.align import pose_errors

HERE = Path(__file__).resolve().parent


def hollow_depth(mesh: trimesh.Trimesh, truth: trimesh.Trimesh) -> float:
    """The median depth below the rim at which vertical rays inside the rim first meet ``mesh``, as a
    share of the same for ``truth`` (both in the truth's frame, the bowl upright about the Z axis)."""
    top = float(truth.bounds[1, 2])
    radius = 0.35 * float(truth.extents[:2].max()) / 2
    grid = np.stack(np.meshgrid(np.linspace(-radius, radius, 15), np.linspace(-radius, radius, 15)), -1).reshape(-1, 2)
    grid = grid[np.linalg.norm(grid, axis=1) <= radius]
    origins = torch.tensor(np.c_[grid, np.full(len(grid), top + 0.5)], dtype=torch.float32)
    down = torch.tensor([[0.0, 0.0, -1.0]]).expand_as(origins)

    def depth(surface: trimesh.Trimesh) -> float:
        caster = RayCaster(torch.tensor(surface.vertices, dtype=torch.float32), torch.tensor(surface.faces))
        _, t = caster.cast(origins, down)
        return float(np.median(np.minimum(t.numpy(), 10.0))) - 0.5

    return depth(mesh) / depth(truth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="+", default=["hull", "neus"])
    parser.add_argument("--preset", default="balanced")
    parser.add_argument("--work", default="/tmp/meshlift-bowl-photos")
    parser.add_argument("--views", type=int, default=60)
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    work = Path(args.work)
    if not (work / "photos").is_dir():
        start = time.perf_counter()
        subprocess.run([sys.executable, str(HERE / "render_bowl_on_table.py"), str(work), "--views", str(args.views),
                        "--samples", str(args.samples)], check=True, capture_output=True, timeout=3600)
        print(f"rendered {args.views} photos in {time.perf_counter() - start:.0f} s into {work / 'photos'}")
    truth = trimesh.load(work / "truth" / "gt_mesh.ply", force="mesh")
    given = load_split(work / "truth")
    print("| method | options | Chamfer-L1 | NC | F@0.5% | F@0.2% | hollow depth | registered | seconds |")
    print("|---|---|---|---|---|---|---|---|---|")
    for method in args.methods:
        events: list[dict] = []
        start = time.perf_counter()
        out = work / f"out-{method}"
        code = run_job(ReconstructJob(dataset=str(work / "photos"), out=str(out), method=method, preset=args.preset,
                                      device="cpu", options=parse_options(args.option) if method != "hull" else {},
                                      force=True), events.append)
        seconds = time.perf_counter() - start
        if code != 0:
            print(f"| {method} | failed: {events[-1]} |")
            continue
        recovered = load_split(out / "cameras")
        by_stem = {Path(name).stem: i for i, name in enumerate(given.names)}
        index = [by_stem[Path(name).stem] for name in recovered.names]
        _, similarity = pose_errors(recovered.cameras, given.cameras[index])
        mesh = trimesh.load(events[-1]["files"]["obj"], force="mesh")
        aligned = trimesh.Trimesh(similarity.points(mesh.vertices), mesh.faces, process=False)
        metrics = geometry_metrics(aligned, truth)
        options = " ".join(args.option) if method != "hull" else ""
        print(f"| {method} | {options} | {metrics['chamfer_l1']:.4f} | {metrics['normal_consistency']:.3f} | "
              f"{metrics['f_score_0.5%']:.3f} | {metrics['f_score_0.2%']:.3f} | {hollow_depth(aligned, truth):.2f} | "
              f"{len(recovered)}/{len(given)} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
