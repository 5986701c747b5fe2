"""How DMTet's time per iteration and peak memory grow with grid resolution and image count.

    .venv/bin/python benchmarks/bench_dmtet_scaling.py [--object spot] [--device cpu|cuda] [--steps 20]

Each (resolution, views) cell runs in a fresh process (so peak memory is its own): the ``balanced``
options without refinement, ``--steps`` optimization steps of the first pass on the tetrahedral grid.
Time per iteration is measured between the first and the last step (setup and carving excluded);
peak memory is the process's peak resident set on the CPU, ``torch.cuda.max_memory_allocated`` on a
GPU. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from engine.data.transforms import load_split
from engine.methods import MethodInput, resolve_options
from engine.methods.dmtet import DMTET, OPTIMIZE_STAGE
from engine.progress import Progress
from engine.roi import find_roi

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
RESOLUTIONS = (64, 128, 192)
VIEWS = (25, 50, 100)


def measure(name: str, resolution: int, views: int, steps: int, device: torch.device) -> dict[str, float]:
    """Seconds per first-pass iteration and peak memory (MiB) of one DMTet run."""
    split = load_split(DATASETS / name, max_views=views)
    norm = find_roi(split)
    options = resolve_options(DMTET, "balanced", {"resolution": resolution, "iterations": steps,
                                                  "refine_factor": 1.0, "refine_iterations": 0})
    stamps: list[float] = []

    def on_event(event: dict) -> None:
        if event.get("stage") == OPTIMIZE_STAGE:
            if device.type == "cuda":
                torch.cuda.synchronize()  # the step's kernels finish before the clock is read
            stamps.append(time.perf_counter())

    DMTET.run(MethodInput(norm.split_to_unit(split).to(device), norm, options, Progress(on_event, min_interval=0.0),
                          device))
    per_step = (stamps[-1] - stamps[1]) / (len(stamps) - 2)  # skip the first step (warm-up)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"seconds_per_step": per_step, "peak_mib": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--object", default="spot")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--one", nargs=2, type=int, metavar=("RESOLUTION", "VIEWS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.one:
        print(json.dumps(measure(args.object, *args.one, args.steps, device)))
        return
    print(f"{args.object}, {args.device}, {torch.get_num_threads()} torch threads, {args.steps} steps, "
          "2 views per step at 256²\n")
    print("| grid | views | s / iteration | peak memory MiB |")
    print("|---|---|---|---|")
    for resolution in RESOLUTIONS:
        for views in VIEWS:
            result = subprocess.run([sys.executable, __file__, "--object", args.object, "--device", args.device,
                                     "--steps", str(args.steps), "--one", str(resolution), str(views)],
                                    capture_output=True, text=True, check=True)
            cell = json.loads(result.stdout.strip().splitlines()[-1])
            print(f"| {resolution} | {views} | {cell['seconds_per_step']:.3f} | {cell['peak_mib']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
