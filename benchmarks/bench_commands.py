"""What a user sees from ``poses`` and ``reconstruct`` (issue 22): lines on the terminal that the
engine did not write (library log lines), the log that keeps them, and how fast a signal stops
``poses``.

Runs ``python -m engine`` of the checkout ``--root`` (default: this one) as a user would, on
spot-tabletop's 60 photos (their poses ignored) and on spot (a fast visual hull), and prints one
line per measurement. Compare two checkouts by running it twice with different ``--root``.

    .venv/bin/python benchmarks/bench_commands.py [--root /path/to/checkout]
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
# A line the engine writes on the terminal: a progress bar, its notes and warnings, its one-line error.
ENGINE_LINE = re.compile(r"^(\s*|.*: +\d+%\|.*\| \d+/\d+ \[[^\]]*\]|\[(info|warning)\] .*|meshlift: .*)$")
GLOG_LINE = re.compile(r"^[IWEF]\d{8} ")


def library_lines(stderr: str) -> list[str]:
    """The lines of ``stderr`` (bars redraw with carriage returns) that the engine did not write."""
    return [line for line in re.split(r"[\r\n]", stderr) if not ENGINE_LINE.match(line)]


def run(root: Path, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "engine", *args], cwd=root, capture_output=True, text=True,
                          check=False)
    return done, time.perf_counter() - start


def describe(name: str, done: subprocess.CompletedProcess, seconds: float, out: Path) -> None:
    lines = library_lines(done.stderr)
    glog = sum(bool(GLOG_LINE.match(line)) for line in lines)
    warp = sum("Could not find or load the NVIDIA CUDA driver" in line for line in lines)
    log = out / "log.txt"
    kept = len(log.read_text().splitlines()) if log.is_file() else None
    print(f"{name}: exit {done.returncode} in {seconds:.1f} s; terminal: {len(lines)} library lines "
          f"({glog} COLMAP/glog, {warp} Warp driver warning); log.txt: {kept} lines; output: "
          f"{sorted(p.name for p in out.iterdir()) if out.is_dir() else None}")


def cancel(root: Path, photos: Path, work: Path, signum: signal.Signals, stage: str, *, delay: float) -> None:
    """Send ``signum`` ``delay`` seconds after ``poses`` reports ``stage``; print how it ended."""
    out = work / f"cancel-{signum.name}"
    process = subprocess.Popen([sys.executable, "-m", "engine", "poses", str(photos), "--out", str(out)], cwd=root,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = ""
    while stage not in seen and process.poll() is None:
        seen += process.stderr.read(1)
    time.sleep(delay)
    sent = time.monotonic()
    process.send_signal(signum)
    _, stderr = process.communicate()
    seconds = time.monotonic() - sent
    left = sorted(p.name for p in work.iterdir() if p.name.startswith((out.name, f".{out.name}")))
    print(f"{signum.name} {delay:.0f} s into '{stage}': exit {process.returncode} after {seconds:.2f} s; "
          f"traceback: {'Traceback' in stderr}; glog stack dump: {'received' in stderr}; left behind: {left}; "
          f"last line: {stderr.strip().splitlines()[-1][-80:]!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=str(Path(__file__).resolve().parents[1]), help="the checkout to run")
    args = parser.parse_args()
    root = Path(args.root).resolve()
    work = Path(tempfile.mkdtemp(prefix="meshlift-bench-commands-"))
    try:
        photos = work / "photos"
        photos.mkdir()
        for image in sorted((DATASETS / "spot-tabletop" / "train").glob("r_*.jpg")):
            (photos / image.name).symlink_to(image)
        print(f"checkout {root}")
        out = work / "cameras"
        describe("poses, 60 photos", *run(root, "poses", str(photos), "--out", str(out)), out)
        again, seconds = run(root, "poses", str(photos), "--out", str(out))
        print(f"poses again into the same --out: exit {again.returncode} in {seconds:.1f} s: "
              f"{again.stderr.strip().splitlines()[-1][-100:]!r}")
        out = work / "hull"
        describe("reconstruct spot, hull fast", *run(root, "reconstruct", str(DATASETS / "spot"), "--out", str(out),
                                                     "--preset", "fast", "--device", "cpu"), out)
        for signum in (signal.SIGINT, signal.SIGTERM):
            cancel(root, photos, work, signum, "finding cameras: features", delay=1.0)
            cancel(root, photos, work, signum, "finding cameras: registering views", delay=1.0)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
