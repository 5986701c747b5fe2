"""Many hull jobs: one ``reconstruct`` process after another, against ``python -m engine batch`` here and
on a local Ray cluster; wall time and the time each job spends outside the engine.

    .venv/bin/python benchmarks/bench_batch.py [--objects spot bunny ...] [--copies 2] [--preset fast]
        [--modes sequential batch batch-1x2 ray] [--max-views N] [--image-scale S] [-o KEY=VALUE ...]

The jobs are each object of ``../shared/datasets`` ``--copies`` times (8 by default: 4 objects x 2).
Modes: ``in-process`` runs every job in one Python process (no start-up per job: the engine's
own cost); ``sequential`` runs ``python -m engine reconstruct`` once per job, one after another (what a
script does without the batch); ``batch`` is ``python -m engine batch`` with its defaults;
``batch-1x2`` the batch with one job at a time and 2 threads; ``ray`` starts a local Ray cluster
(``ray start --head`` with the machine's cores), submits the batch to it (``--ray auto``) and stops
the cluster. Each job's overhead is its process's wall time minus the engine's own time
(``report.json`` ``timings.total``): interpreter start-up, imports, and the batch's bookkeeping;
and, robust to other load on the machine, the CPU seconds per job of the mode's processes (those
this script waits for: not Ray's, whose workers belong to the cluster) less those of ``in-process``.
Prints a markdown table for BENCHMARKS.md; the outputs go to benchmarks/out/batch/.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from engine.batch.resources import default_threads
from engine.cli import parse_options

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
OUT = ROOT / "benchmarks" / "out" / "batch"
OBJECTS = ("spot", "rocker-arm", "fandisk", "bunny")
# Every process runs this checkout's engine (Ray's workers too, through the cluster's environment).
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def engine(*args: str) -> list[str]:
    return [sys.executable, "-m", "engine", *args]


def timed(command: list[str]) -> float:
    """Run ``command`` from the repository root; its wall-clock seconds (it must succeed)."""
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=ENV, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def children_cpu() -> float:
    """CPU seconds (user + system) of every process this one has waited for, their children included."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# ``in-process``: every line of a JSON Lines file of complete jobs, one after another in this process.
IN_PROCESS = ("import json, sys\nfrom engine.jobs import run_job\nfrom engine.protocol import parse_job\n"
              "for line in open(sys.argv[1]):\n"
              "    assert run_job(parse_job(json.loads(line)), lambda event: None) == 0\n")


def engine_seconds(folder: Path) -> float:
    return json.loads((folder / "report.json").read_text())["timings"]["total"]


Timed = tuple[float, list[tuple[float, float]]]  # wall seconds, and each job's (process, engine) seconds


def run_sequential(jobs: list[dict], settings: list[str], out: Path) -> Timed:
    """One ``reconstruct`` process per job; the total wall time and each job's (process, engine) seconds."""
    per_job = []
    start = time.perf_counter()
    for job in jobs:
        folder = out / job["name"]
        wall = timed(engine("reconstruct", job["dataset"], "--out", str(folder), "--name", job["name"], *settings))
        per_job.append((wall, engine_seconds(folder)))
    return time.perf_counter() - start, per_job


def run_in_process(jobs: list[dict], job_fields: dict, out: Path) -> Timed:
    """Every job in one process; its wall time and each job's (engine, engine) seconds."""
    out.mkdir(parents=True)
    complete = out / "jobs.jsonl"
    complete.write_text("".join(json.dumps({**job_fields, **job, "out": str(out / job["name"])}) + "\n"
                                for job in jobs))
    wall = timed([sys.executable, "-c", IN_PROCESS, str(complete)])
    return wall, [(engine_seconds(out / job["name"]),) * 2 for job in jobs]


def run_batch(jobs_file: Path, settings: list[str], out: Path, extra: list[str]) -> Timed:
    """One ``batch`` command; its wall time and each job's (worker, engine) seconds from the summary."""
    wall = timed(engine("batch", str(jobs_file), "--out", str(out), *settings, *extra))
    rows = json.loads((out / "summary.json").read_text())["jobs"]
    assert all(row["status"] == "done" for row in rows), rows
    return wall, [(row["seconds"], engine_seconds(out / row["name"])) for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", nargs="+", default=list(OBJECTS))
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--modes", nargs="+", default=["in-process", "sequential", "batch", "batch-1x2", "ray"])
    parser.add_argument("--max-views", type=int, default=None)
    parser.add_argument("--image-scale", type=float, default=1.0)
    parser.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the jobs' outputs (emptied first)")
    args = parser.parse_args()
    settings = ["--preset", args.preset, "--device", "cpu", "--image-scale", str(args.image_scale),
                *(["--max-views", str(args.max_views)] if args.max_views else []),
                *(item for option in args.option for item in ("-o", option))]
    job_fields = {"preset": args.preset, "device": "cpu", "image_scale": args.image_scale, "max_views": args.max_views,
                  "options": parse_options(args.option)}
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    jobs = [{"dataset": str(DATASETS / name), "name": f"{name}-{copy}"}
            for copy in range(1, args.copies + 1) for name in args.objects]
    jobs_file = args.out / "jobs.jsonl"
    jobs_file.write_text("".join(json.dumps(job) + "\n" for job in jobs))
    cores = len(os.sched_getaffinity(0))
    print(f"{len(jobs)} hull jobs ({' '.join(settings)}), {cores} cores, load {os.getloadavg()[0]:.1f}\n")
    print("| mode | at once x threads | wall s | jobs/min | engine s per job | process s per job "
          "| overhead s per job | CPU s per job | overhead CPU s per job | load after |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    engine_cpu = None
    for mode in args.modes:
        out = args.out / mode
        note = ""
        cpu_before = children_cpu()
        if mode == "in-process":
            shape = f"1 x {cores}"
            wall, per_job = run_in_process(jobs, job_fields, out)
        elif mode == "sequential":
            shape = f"1 x {cores}"
            wall, per_job = run_sequential(jobs, settings, out)
        elif mode == "batch":
            threads = default_threads(cores)
            shape = f"{cores // threads} x {threads}"
            wall, per_job = run_batch(jobs_file, settings, out, [])
        elif mode == "batch-1x2":
            shape = "1 x 2"
            wall, per_job = run_batch(jobs_file, settings, out, ["--jobs", "1", "--threads", "2"])
        elif mode == "ray":
            shape = f"Ray, {cores} CPUs"
            ray = str(Path(sys.executable).parent / "ray")
            started = timed([ray, "start", "--head", f"--num-cpus={cores}", "--include-dashboard=false",
                             "--disable-usage-stats"])
            try:
                wall, per_job = run_batch(jobs_file, settings, out, ["--ray", "auto"])
            finally:
                subprocess.run([ray, "stop"], cwd=ROOT, env=ENV, check=False, stdout=subprocess.DEVNULL)
            note = f" (+{started:.1f} s `ray start`)"
        else:
            raise SystemExit(f"unknown mode {mode}")
        process = statistics.mean(p for p, _ in per_job)
        inside = statistics.mean(e for _, e in per_job)
        cpu = (children_cpu() - cpu_before) / len(jobs)
        if mode == "in-process":
            engine_cpu = cpu
        cpu_cells = ("n/a (the cluster's)", "n/a") if mode == "ray" else (
            f"{cpu:.1f}", "" if engine_cpu is None or mode == "in-process" else f"{cpu - engine_cpu:.1f}")
        print(f"| {mode} | {shape} | {wall:.1f}{note} | {60 * len(jobs) / wall:.1f} | {inside:.1f} | {process:.1f} "
              f"| {process - inside:.1f} | {' | '.join(cpu_cells)} | {os.getloadavg()[0]:.1f} |", flush=True)


if __name__ == "__main__":
    main()
