"""What one live preview costs: in the worker (making the surface and writing it) and in Blender
(reading it and replacing the preview object's mesh, on the interface's thread).

    .venv/bin/python benchmarks/bench_preview.py [--object spot] [--repeats 10]

Surfaces as the methods send them, from spot's visual hull (50 views at half size): DMTet's
marching-tetrahedra surface on its band grid at the ``balanced`` resolutions (64, refined to 96),
and NeuS's cached SDF lattice (``grid`` 64, ``quality`` 96) through marching cubes. Worker side:
``Preview.send`` (DMTet: the surface exists already) or ``cached_surface`` + ``Preview.send``
(NeuS). Blender side (the ``bpy`` module): what ``LivePreview.show`` does, ``read_preview`` +
``clear_geometry`` + ``fill_mesh`` (without ``validate``). Median over ``--repeats``; prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch

from engine.carving import hull_sdf
from engine.data.transforms import load_split
from engine.geometry import marching_tets
from engine.methods.dmtet import band_grid
from engine.methods.neus.extraction import cached_surface
from engine.methods.neus.sampling import SurfaceCache
from engine.preview import Preview
from engine.progress import Progress
from engine.roi import find_roi

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
ROOT = Path(__file__).resolve().parents[1]


def median_seconds(work, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def blender_side(events: list[dict], repeats: int) -> float:
    """Median seconds to show one preview file in Blender (read, clear, fill), with the bpy module."""
    os.environ["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="meshlift-bench-")
    import bpy

    sys.path.insert(0, str(ROOT.parent))
    import types

    package = types.ModuleType("meshlift")
    package.__path__ = [str(ROOT)]
    sys.modules.setdefault("meshlift", package)
    from meshlift.bridge.objfile import read_preview

    mesh = bpy.data.meshes.new("preview")
    from meshlift.operators import result

    def show() -> None:
        data = read_preview(events[-1]["path"], events[-1]["format"])
        mesh.clear_geometry()
        result.fill_mesh(mesh, data, validate=False)

    return median_seconds(show, repeats)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--object", default="spot")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(2)
    split = load_split(DATASETS / args.object, scale=0.5, max_views=50)
    norm = find_roi(split)
    unit = norm.split_to_unit(split)
    lo, hi = torch.tensor(norm.box_min), torch.tensor(norm.box_max)
    events: list[dict] = []
    preview = Preview(tempfile.mkdtemp(prefix="meshlift-preview-"), norm, Progress(events.append), interval=0.0)
    rows = []
    model = SimpleNamespace(has_table=False)  # NeuS's model as cached_surface sees it: no table
    for resolution in (64, 96):
        lattice = hull_sdf(unit, lo, hi, resolution)
        grid, sdf = band_grid(lattice, lo, hi, resolution, 3)
        vertices, faces = marching_tets(grid.vertices, sdf, grid.tets)
        worker = median_seconds(lambda v=vertices, f=faces: preview.send(0, v, f), args.repeats)
        rows.append((f"DMTet, grid {resolution}", len(faces), worker, events[-1]))
        cache = SurfaceCache(lo, hi, resolution)
        cache.values = lattice
        surface = cached_surface(model, cache)
        worker = median_seconds(lambda c=cache: preview.send(0, *cached_surface(model, c)), args.repeats)
        rows.append((f"NeuS, cache grid {resolution}", len(surface[1]), worker, events[-1]))
    print("| surface | faces | worker: surface + file (ms) | Blender: read + mesh (ms) |")
    print("|---|---|---|---|")
    for name, count, worker, event in rows:
        blender = blender_side([event], args.repeats)
        print(f"| {name} | {count} | {worker * 1000:.0f} | {blender * 1000:.0f} |")
    os._exit(0)  # the bpy module can hang at exit


if __name__ == "__main__":
    main()
