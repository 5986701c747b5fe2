"""DMTet (work in progress, not registered yet) on the shared datasets: geometry of the method's mesh.

    .venv/bin/python benchmarks/bench_dmtet.py [--objects spot rocker-arm] [--preset balanced] [-o KEY=VALUE]

Runs ``engine.methods.dmtet.DMTET`` directly (the region of interest and unit volume as the pipeline
sets them up), scores the mesh it returns against ``gt_mesh.ply`` before any texturing, and prints a
markdown table with the wall time of the method.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import trimesh

from engine.cli import parse_options
from engine.data.transforms import load_split
from engine.evaluate import geometry_metrics
from engine.methods import MethodInput, resolve_options
from engine.methods.dmtet import DMTET
from engine.progress import Progress
from engine.roi import find_roi

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", nargs="+", default=["spot", "rocker-arm", "fandisk", "bunny"])
    parser.add_argument("--preset", default="balanced")
    parser.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    options = resolve_options(DMTET, args.preset, parse_options(args.option))
    print(f"preset {args.preset}, {torch.get_num_threads()} torch threads, options {options}\n")
    print("| object | Chamfer-L1 | NC | F@0.5% | F@0.2% | faces | method s |")
    print("|---|---|---|---|---|---|---|")
    for name in args.objects:
        split = load_split(DATASETS / name)
        norm = find_roi(split)
        start = time.perf_counter()
        out = DMTET.run(MethodInput(norm.split_to_unit(split), norm, options, Progress(lambda _e: None),
                                    torch.device("cpu")))
        seconds = time.perf_counter() - start
        mesh = trimesh.Trimesh(norm.to_world(torch.from_numpy(out.vertices)).numpy(), out.faces)
        m = geometry_metrics(mesh, trimesh.load(DATASETS / name / "gt_mesh.ply"))
        print(f"| {name} | {m['chamfer_l1']:.4f} | {m['normal_consistency']:.3f} | {m['f_score_0.5%']:.3f} "
              f"| {m['f_score_0.2%']:.3f} | {len(out.faces)} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
