"""The counts behind ``engine.free_space.carve.SPLAT_SLOPE``: what sight carving opens, right and wrong.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_sight_carve.py [--objects bowl spot fandisk rocker-arm]
        [--slopes 0 2 3] [--resolution 64]

For each object this prepares the inputs as ``reconstruct`` does (100 training views, masks, the
region of interest), triangulates the points once (:func:`engine.free_space.find_free_space`, DMTet's
``balanced`` options), then builds DMTet's carved start (:func:`engine.free_space.carved_start`) on
its padded ``--resolution`` grid once per slope. Each carved lattice node is judged against
``gt_mesh.ply``: "inside" when it lies in the truth's filled voxelization (pitch a quarter of a
cell; the bowl's hollow is open at the top, so filling does not close it), with its depth (distance
to the nearest of 200k points on the truth's surface, unit volume). "hollow opened" is the share of
the hull's nodes outside the truth that were carved (what the carving is for); "disc px": the views'
median splat radius.
Needs a watertight ``gt_mesh.ply`` (not bunny's).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import trimesh
from scipy.spatial import cKDTree

from engine.free_space import carve, carved_start, find_free_space
from engine.free_space.start import splat_radius
from engine.inputs import prepare_inputs
from engine.methods import get_method, resolve_options
from engine.methods.dmtet import grid_box
from engine.progress import Progress
from engine.protocol import ReconstructJob
from engine.timings import Timings
from engine.utils.math import lattice_nodes

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
SURFACE_SAMPLES = 200_000  # points on the truth for the depth of a wrongly carved node (to within their spacing)


def inside_truth(truth: trimesh.Trimesh, nodes: np.ndarray, pitch: float) -> np.ndarray:
    """``[P]`` bool: which ``nodes [P, 3]`` lie in ``truth``'s filled voxelization of ``pitch``."""
    grid = truth.voxelized(pitch).fill()
    index = np.round((nodes - grid.translation) / pitch).astype(int)  # voxel centres at translation + i * pitch
    shape = np.array(grid.matrix.shape)
    valid = np.all((index >= 0) & (index < shape), axis=1)
    inside = np.zeros(len(nodes), dtype=bool)
    inside[valid] = grid.matrix[tuple(index[valid].T)]
    return inside


def object_rows(name: str, slopes: list[float], resolution: int) -> list[str]:
    """One markdown row per slope for ``name``."""
    progress = Progress(lambda event: None)
    job = ReconstructJob(dataset=str(DATASETS / name), out="", method="dmtet", device="cpu")
    inputs = prepare_inputs(job, True, torch.device("cpu"), progress, Timings())
    normalization = inputs.normalization
    split = normalization.split_to_unit(inputs.split)
    opts = replace(resolve_options(get_method("dmtet"), "balanced", {}), resolution=resolution)
    lo, hi = grid_box(normalization, opts)
    free = find_free_space(split, split, lo=lo, hi=hi, opts=opts, progress=progress)
    truth = trimesh.load(DATASETS / name / "gt_mesh.ply", force="mesh")
    truth.vertices = normalization.to_unit(torch.from_numpy(truth.vertices.astype(np.float32))).numpy()
    cell = float((hi - lo).max()) / resolution
    nodes = lattice_nodes(lo, hi, resolution).reshape(-1, 3).numpy()
    inside = inside_truth(truth, nodes, cell / 4)
    surface = cKDTree(truth.sample(SURFACE_SAMPLES))
    disc = int(splat_radius(free.sparse, split).median())
    rows = []
    for slope in slopes:
        carve.SPLAT_SLOPE = slope
        start = carved_start(free, split, lo=lo, hi=hi, resolution=resolution, opts=opts, progress=progress)
        hull = (start.hull_sdf < 0).reshape(-1).numpy()
        carved = hull & (start.sdf >= 0).reshape(-1).numpy()
        wrong = carved & inside
        depth = surface.query(nodes[wrong])[0].max() if wrong.any() else 0.0
        hollow = hull & ~inside
        rows.append(f"| {name} | {slope:g} | {len(free.sparse)} | {disc} | {int(carved.sum())} | {int(wrong.sum())} "
                    f"| {depth:.3f} | {carved[hollow].mean():.0%} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", nargs="+", default=["bowl", "spot", "fandisk", "rocker-arm"])
    parser.add_argument("--slopes", nargs="+", type=float, default=[0.0, 2.0, 3.0])
    parser.add_argument("--resolution", type=int, default=64)
    args = parser.parse_args()
    torch.manual_seed(0)
    print("| object | slope | points | disc px | nodes carved | inside the truth | deepest inside | hollow opened |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.objects:
        for row in object_rows(name, args.slopes, args.resolution):
            print(row, flush=True)


if __name__ == "__main__":
    main()
