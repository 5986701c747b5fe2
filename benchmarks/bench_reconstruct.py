"""Whole reconstruction jobs on the four shared datasets: quality against the reference rows, and wall time.

    .venv/bin/python benchmarks/bench_reconstruct.py [--method hull|dmtet] [--objects spot bunny]
        [--preset balanced] [--device cpu] [-o KEY=VALUE ...]

Runs the pipeline as ``python -m engine reconstruct --evaluate`` does (so the scores are those of the
exported, decimated and textured mesh), prints a markdown table (paste it into BENCHMARKS.md) and
writes the reconstructions, their reports and a picture of each textured result above its test
images into benchmarks/out/.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from engine.cli import parse_options
from engine.data.transforms import load_split
from engine.export import read_textured
from engine.pipeline import reconstruct
from engine.progress import Progress
from engine.protocol import ReconstructJob
from engine.texture import render_textured

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
OUT = ROOT / "benchmarks" / "out"
# The reference visual-hull rows of ../shared/datasets/README.md: Chamfer-L1, NC, F@0.5%, F@0.2%.
REFERENCE = {
    "spot": (0.0042, 0.891, 0.995, 0.657),
    "rocker-arm": (0.0108, 0.864, 0.778, 0.401),
    "fandisk": (0.0090, 0.879, 0.775, 0.450),
    "bunny": (0.0071, 0.869, 0.902, 0.573),
}
KEYS = ("chamfer_l1", "normal_consistency", "f_score_0.5%", "f_score_0.2%")


def save_comparison(obj: Path, dataset: Path, picture: Path, views: int = 4) -> None:
    """Rendered textured mesh (top) above the test images (bottom), over white."""
    test = load_split(dataset, "test", max_views=views)
    rendered = render_textured(read_textured(obj), test.cameras)  # [N, H, W, 3]
    rows = [torch.cat(list(rendered), dim=1), torch.cat(list(test.composited(1.0)), dim=1)]
    image = (torch.cat(rows, dim=0).clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)
    Image.fromarray(image).save(picture)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--method", default="hull")
    parser.add_argument("--objects", nargs="+", default=list(REFERENCE))
    parser.add_argument("--preset", default="balanced")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"device {args.device}, method {args.method}, preset {args.preset}, options {args.option}\n")
    print("| object | Chamfer-L1 (ref) | NC (ref) | F@0.5% (ref) | F@0.2% (ref) | test PSNR dB | lit PSNR dB (pbr) "
          "| faces | texture | reconstruct s | total s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.objects:
        start = time.perf_counter()
        tag = f"{args.method}-{name}"
        job = ReconstructJob(dataset=str(DATASETS / name), out=str(OUT / tag), method=args.method,
                             preset=args.preset, device=args.device, options=parse_options(args.option), force=True,
                             evaluate=True)
        result = reconstruct(job, Progress(lambda _event: None))
        report = result["report"]
        metrics = report["metrics"]
        cells = [f"{metrics[k]:.5f} ({ref})" if k == "chamfer_l1" else f"{metrics[k]:.3f} ({ref})"
                 for k, ref in zip(KEYS, REFERENCE[name], strict=True)]
        seconds = report["timings"]["total"] - report["timings"].get("evaluate", 0.0)
        lit = f"{metrics['psnr_lit']:.2f}" if "psnr_lit" in metrics else "–"
        print(f"| {name} | {' | '.join(cells)} | {metrics['psnr']:.2f} | {lit} | {report['mesh']['faces']} "
              f"| {report['texture']['source']} | {seconds:.1f} | {time.perf_counter() - start:.1f} |", flush=True)
        (OUT / f"{tag}.json").write_text(json.dumps(report, indent=2))
        save_comparison(Path(result["files"]["obj"]), DATASETS / name, OUT / f"{tag}.png")


if __name__ == "__main__":
    main()
