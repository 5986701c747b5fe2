"""Texturing alone: the ground-truth mesh of a shared object textured from its training views.

    .venv/bin/python benchmarks/bench_bake.py [--objects spot bunny] [--faces 20000] [--texture-size 1024]

For each object: decimate ``gt_mesh.ply`` to ``--faces``, unwrap it (xatlas) and bake the 100
training views into a ``--texture-size`` texture (``engine.texture.texture_mesh``, as every method's
texturing step runs it), then render the textured mesh at the 20 test cameras: the test PSNR is the
ceiling a method's texture can reach with a perfect shape. Prints a markdown row per object (the
seconds of each step, on this machine's torch threads).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import trimesh

from engine.data.transforms import load_split
from engine.evaluate import render_psnr
from engine.texture import texture_mesh

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", nargs="+", default=["spot", "rocker-arm", "fandisk", "bunny"])
    parser.add_argument("--faces", type=int, default=20_000)
    parser.add_argument("--texture-size", type=int, default=1024)
    args = parser.parse_args()
    print(f"{torch.get_num_threads()} torch threads; {args.faces} faces, {args.texture_size}² texture")
    print("| object | views | texturing s | test PSNR dB |\n|---|---|---|---|")
    for name in args.objects:
        gt = trimesh.load(DATASETS / name / "gt_mesh.ply", force="mesh")
        train = load_split(DATASETS / name, "train")
        start = time.perf_counter()
        mesh = texture_mesh(gt.vertices, gt.faces, train, target_faces=args.faces, texture_size=args.texture_size)
        seconds = time.perf_counter() - start
        psnr = render_psnr(mesh, load_split(DATASETS / name, "test"))["psnr"]
        print(f"| {name} | {len(train)} | {seconds:.1f} | {psnr:.2f} |", flush=True)


if __name__ == "__main__":
    main()
