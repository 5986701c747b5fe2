"""Helpers shared by the test layers (engine, bridge, add-on): paths, small datasets made on the fly,
processes. Fixtures live in the ``conftest.py`` files beside the tests that use them."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
OBJECTS = ("spot", "rocker-arm", "fandisk", "bunny")
# The torch devices the device-parametrized tests run on: always the CPU, CUDA when torch sees it.
DEVICES = ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)


def orbit_c2w(count: int, distance: float = 3.5, elevation: float = 0.4) -> np.ndarray:
    """``[count, 4, 4]`` camera-to-world matrices (OpenGL) of cameras circling the origin, world Z up."""
    matrices = []
    for i in range(count):
        angle = 2 * math.pi * i / count
        eye = distance * np.array([math.cos(angle) * math.cos(elevation), math.sin(angle) * math.cos(elevation),
                                   math.sin(elevation)])
        forward = -eye / np.linalg.norm(eye)
        right = np.cross(forward, [0, 0, 1.0])
        right /= np.linalg.norm(right)
        up = np.cross(right, forward)
        c2w = np.eye(4)
        c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, up, -forward, eye
        matrices.append(c2w)
    return np.stack(matrices)


def write_disc_dataset(folder: Path, count: int = 6, size: int = 32, radius: float = 8.0,
                       meta: dict | None = None) -> Path:
    """A tiny RGBA dataset: a centred disc in every view (a sphere seen by an orbit of cameras)."""
    (folder / "train").mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    alpha = ((xx - size / 2) ** 2 + (yy - size / 2) ** 2 < radius**2).astype(np.uint8) * 255
    rgba = np.dstack([np.full((size, size), 200, np.uint8), np.full((size, size), 80, np.uint8),
                      np.full((size, size), 40, np.uint8), alpha])
    frames = []
    for i, c2w in enumerate(orbit_c2w(count)):
        Image.fromarray(rgba, "RGBA").save(folder / "train" / f"r_{i}.png")
        frames.append({"file_path": f"./train/r_{i}", "transform_matrix": c2w.tolist()})
    content = {"camera_angle_x": 0.69, "frames": frames, **(meta or {})}
    (folder / "transforms_train.json").write_text(json.dumps(content))
    return folder


def alive(pid: int) -> bool:
    """Whether a process with this id still exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def run_engine(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m engine ARGS`` from the repository root, capturing text output."""
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, check=False)


def python_without_torch(folder: Path) -> Path:
    """An executable that behaves like this Python with ``-S`` (no site-packages: no torch)."""
    script = folder / "python-no-torch"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    script.chmod(0o755)
    return script


def python_that_crashes(folder: Path, only: str = "") -> Path:
    """A Python that answers every question (torch, methods) but whose worker dies at once (with
    ``only``: only the workers whose job file's path contains it)."""
    script = folder / "python-crashing-worker"
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = "-m" ] && [ "$3" = "worker" ] && case "$4" in *{only}*) true;; *) false;; esac; then\n'
        '  echo "Fatal Python error: Segmentation fault (simulated)" >&2\n'
        "  kill -SEGV $$\n"
        "fi\n"
        f'exec "{sys.executable}" "$@"\n'
    )
    script.chmod(0o755)
    return script


def fake_base_python(folder: Path, version: str = "3.11.9", env_python: str = "exit 0", on_venv: str = "") -> Path:
    """A stand-in base Python for Set Up Engine: it answers the version check with ``version``, and
    for ``-m venv TARGET`` makes ``TARGET/bin/python`` a shell script whose body is ``env_python``
    (what pip and ``-m engine check`` then do), then runs ``on_venv`` (shell)."""
    inner = folder / "fake-env-python"
    inner.write_text(f"#!/bin/sh\n{env_python}\n")
    inner.chmod(0o755)
    major, minor, micro = version.split(".")
    script = folder / "fake-base-python"
    script.write_text(
        "#!/bin/sh\n"
        f"if [ \"$1\" = \"-c\" ]; then echo '{{\"version\": [{major}, {minor}, {micro}], \"venv\": true, "
        f"\"ensurepip\": true}}'; exit 0; fi\n"
        f'if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then mkdir -p "$3/bin" && cp "{inner}" "$3/bin/python"; {on_venv}\n'
        "  exit 0\nfi\nexit 9\n"
    )
    script.chmod(0o755)
    return script


def write_depth_dataset(source: Path, folder: Path, *, views: int | None = None, kind: str = "npy",
                        normals: bool = True, noise: float = 0.0, dropped: float = 0.0, seed: int = 0) -> Path:
    """A copy of the shared dataset ``source`` (its camera files, with absolute paths to its images,
    and a link to its ``gt_mesh.ply``) whose training frames also name depth and normal maps rendered
    from ``gt_mesh.ply`` with the engine's rasterizer (``engine.render.maps``), written as ``kind``
    files (``npy``, ``exr``, or ``png``: 16-bit millimetres and 8-bit normals).

    ``views`` keeps that many training frames (evenly spaced); ``noise`` adds Gaussian noise of that
    share of each depth, ``dropped`` sets that share of the depth pixels to 0 (no data). Nothing is
    written into ``source``."""
    import trimesh

    from engine.data.transforms import load_split
    from engine.render.maps import render_depth_normals

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "maps").mkdir(exist_ok=True)
    (folder / "gt_mesh.ply").symlink_to(source / "gt_mesh.ply")
    for split in ("train", "test"):
        meta = json.loads((source / f"transforms_{split}.json").read_text())
        for frame in meta["frames"]:
            frame["file_path"] = str((source / frame["file_path"]).resolve())
        if split == "train":
            if views is not None:
                keep = np.linspace(0, len(meta["frames"]) - 1, views).round().astype(int)
                meta["frames"] = [meta["frames"][i] for i in sorted(set(keep.tolist()))]
            (folder / "transforms_train.json").write_text(json.dumps(meta))
            cameras = load_split(folder, "train").cameras
            gt = trimesh.load(source / "gt_mesh.ply", force="mesh")
            depth, normal = render_depth_normals(torch.tensor(gt.vertices, dtype=torch.float32),
                                                 torch.tensor(gt.faces), cameras)
            rng = np.random.default_rng(seed)
            for index, frame in enumerate(meta["frames"]):
                d, n = depth[index].numpy(), normal[index].numpy()
                if noise > 0:
                    d = np.where(d > 0, d * (1 + noise * rng.standard_normal(d.shape)), 0.0).astype(np.float32)
                if dropped > 0:
                    d = np.where(rng.random(d.shape) < dropped, 0.0, d).astype(np.float32)
                frame["depth_file_path"] = write_map(folder / "maps" / f"depth_{index}", d, kind)
                if normals:
                    frame["normal_file_path"] = write_map(folder / "maps" / f"normal_{index}", n, kind)
        (folder / f"transforms_{split}.json").write_text(json.dumps(meta))
    return folder


def write_map(stem: Path, values: np.ndarray, kind: str) -> str:
    """Write ``values`` (``[H, W]`` depths or ``[H, W, 3]`` normals) as ``stem.<kind>``; returns the
    path relative to the dataset folder (``stem``'s grandparent)."""
    if kind == "npy":
        path = stem.with_suffix(".npy")
        np.save(path, values)
    elif kind == "exr":
        import OpenEXR

        path = stem.with_suffix(".exr")
        channels = {"Z": values} if values.ndim == 2 else {c: values[..., i] for i, c in enumerate("XYZ")}
        header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
        with OpenEXR.File(header, {k: np.ascontiguousarray(v, np.float32) for k, v in channels.items()}) as file:
            file.write(str(path))
    else:
        path = stem.with_suffix(".png")
        if values.ndim == 2:
            Image.fromarray(np.round(values * 1000).astype(np.uint16)).save(path)
        else:
            encoded = np.where(np.linalg.norm(values, axis=-1, keepdims=True) > 0, (values + 1) / 2 * 255, 0)
            Image.fromarray(np.round(encoded).astype(np.uint8), "RGB").save(path)
    return path.relative_to(stem.parent.parent).as_posix()
