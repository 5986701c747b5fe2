"""NeuS on the shared datasets through the whole pipeline: geometry, test PSNR, speed and memory.

    .venv/bin/python benchmarks/bench_neus.py [--objects spot spot-tabletop] [--preset balanced] [-o KEY=VALUE]
                                              [--keep DIR]

Each object runs ``engine.pipeline.reconstruct`` (NeuS, then texturing, then ``--evaluate``) in
its own process, so the peak resident memory printed is that object's. ``spot-tabletop`` has no
masks: NeuS runs mask-free (region of interest from the cameras, table cut away) and the mesh is
scored against the object-only ``gt_mesh.ply``. Prints a markdown table; the CPU may be shared
with other jobs, which inflates the times.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def run_one(name: str, preset: str, options: list[str], keep: str | None) -> dict:
    """Reconstruct one object in this process and return the report plus peak memory; the outputs
    go to ``keep/name`` when ``keep`` is given, else to a temporary folder."""
    import torch

    from engine.cli import parse_options
    from engine.pipeline import reconstruct
    from engine.progress import Progress
    from engine.protocol import ReconstructJob

    with tempfile.TemporaryDirectory() as folder:
        out = Path(keep) / name if keep else Path(folder) / "out"
        job = ReconstructJob(dataset=str(DATASETS / name), out=str(out), method="neus",
                             preset=preset, options=parse_options(options), evaluate=True)
        report = reconstruct(job, Progress(lambda _e: None))["report"]
    report["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report["threads"] = torch.get_num_threads()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", nargs="+", default=["spot", "spot-tabletop", "rocker-arm", "fandisk", "bunny"])
    parser.add_argument("--preset", default="balanced")
    parser.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--keep", help="keep each object's outputs (mesh, texture, report) in KEEP/<object>")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one object, print its report
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.preset, args.option, args.keep)))
        return
    print(f"preset {args.preset}, options {args.option}\n")
    print("| object | Chamfer-L1 | NC | F@0.5% | F@0.2% | test PSNR | texture | s/iter | rays/s | method s "
          "| total s | peak MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.objects:
        command = [sys.executable, __file__, "--one", name, "--preset", args.preset]
        command += [f"-o{option}" for option in args.option] + (["--keep", args.keep] if args.keep else [])
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        r = json.loads(done.stdout.strip().splitlines()[-1])
        m, s, t = r["metrics"], r["method_stats"], r["timings"]
        print(f"| {name} | {m['chamfer_l1']:.4f} | {m['normal_consistency']:.3f} | {m['f_score_0.5%']:.3f} "
              f"| {m['f_score_0.2%']:.3f} | {m.get('psnr', float('nan')):.2f} | {r['texture']['source']} "
              f"| {s['seconds_per_iteration']:.2f} | {s['rays_per_second']:.0f} | {t['reconstruct']:.0f} "
              f"| {t['total']:.0f} | {r['peak_rss_mb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
