"""Issue 18's rows: a method with and without each part of the free-space evidence, on the bowl or a shared object.

    .venv/bin/python benchmarks/bench_concavities.py [--object bowl] [--method dmtet] [--preset balanced]
        [-o KEY=VALUE ...] [--splat-slope S] [--keep DIR] [--header]

Runs the whole pipeline as ``python -m engine reconstruct --evaluate`` does (the scores are those of
the exported, decimated and textured mesh) and prints one markdown row: the options, Chamfer-L1, normal
consistency, F-scores, test PSNR, the points triangulated (and the voxels photo carving removed), the
seconds of the free-space stages, of the method and of the whole job; on stderr, the seconds of every
progress stage. ``--keep DIR`` keeps the output folder as ``DIR/<object>-<method>``; ``--header``
prints the table's header first. ``--splat-slope`` replaces the module constant
``engine.free_space.carve.SPLAT_SLOPE`` for the run (an ablation; the row's options then say so).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from engine.cli import parse_options
from engine.free_space import carve
from engine.pipeline import reconstruct
from engine.progress import Progress
from engine.protocol import ReconstructJob

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
FREE_SPACE_STAGES = ("finding free space", "photo carving")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--object", default="bowl")
    parser.add_argument("--method", default="dmtet")
    parser.add_argument("--preset", default="balanced")
    parser.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--splat-slope", type=float)
    parser.add_argument("--keep")
    parser.add_argument("--header", action="store_true")
    args = parser.parse_args()
    if args.header:
        print("| object | method | options | Chamfer-L1 | NC | F@0.5% | F@0.2% | test PSNR | points | free-space s "
              "| method s | total s |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    label = list(args.option)
    if args.splat_slope is not None:
        carve.SPLAT_SLOPE = args.splat_slope
        label.append(f"SPLAT_SLOPE={args.splat_slope:g}")
    stage_seconds: dict[str, float] = {}
    last = [None, time.perf_counter()]

    def on_event(event: dict) -> None:
        if event.get("type") != "progress":
            return
        now = time.perf_counter()
        if last[0] is not None:
            stage_seconds[last[0]] = stage_seconds.get(last[0], 0.0) + now - last[1]
        last[0], last[1] = event["stage"], now

    with tempfile.TemporaryDirectory() as folder:
        out = Path(args.keep) / f"{args.object}-{args.method}" if args.keep else Path(folder) / "out"
        job = ReconstructJob(dataset=str(DATASETS / args.object), out=str(out), method=args.method, preset=args.preset,
                             device="cpu", options=parse_options(args.option), force=True, evaluate=True)
        report = reconstruct(job, Progress(on_event, min_interval=0.0))["report"]
    metrics, stats, timings = report["metrics"], report["method_stats"], report["timings"]
    free_space = sum(s for stage, s in stage_seconds.items() if stage.startswith(FREE_SPACE_STAGES))
    points = str(stats.get("triangulated_points", "-"))
    if "photo_carved_voxels" in stats:
        points += f" ({stats['photo_carved_voxels']} voxels photo-carved)"
    total = timings["total"] - timings.get("evaluate", 0.0)
    print(f"| {args.object} | {args.method} | {' '.join(label) or 'defaults'} | {metrics['chamfer_l1']:.4f} "
          f"| {metrics['normal_consistency']:.3f} | {metrics['f_score_0.5%']:.3f} | {metrics['f_score_0.2%']:.3f} "
          f"| {metrics['psnr']:.2f} | {points} | {free_space:.0f} | {timings['reconstruct']:.0f} | {total:.0f} |",
          flush=True)
    print("seconds by stage: " + ", ".join(f"{stage} {s:.0f}" for stage, s in stage_seconds.items()), file=sys.stderr)


if __name__ == "__main__":
    main()
