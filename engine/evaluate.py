"""Scores of a reconstruction: geometry against a ground-truth mesh, appearance against test views.

Definitions (``/work/shared/datasets/README.md``): both surfaces are sampled uniformly by area
(``samples`` points each, with their face normals).

* Chamfer-L1 = (mean distance pred → GT + mean distance GT → pred) / 2, in world units.
* Normal consistency = mean ``|cos|`` between each sample's normal and its nearest neighbour's on
  the other surface, both ways.
* F-score at ``τ`` = harmonic mean of precision (fraction of pred samples within ``τ`` of GT) and
  recall (fraction of GT samples within ``τ`` of pred), ``τ`` = 0.5 % and 0.2 % of the GT
  bounding-box diagonal.
* PSNR = mean over test views of ``10 log10(1 / MSE)``, colours in [0, 1], both the render and the
  photo composited over white.
* Albedo PSNR (datasets with ``test_albedo/``, the true base colour alone): the same, with the
  asset's colour texture rendered unlit (its base colour with a PBR material, the baked colours
  otherwise) against those images.
* Relit PSNR (datasets with ``relit_light.json`` and ``test_relit/``): the same, with the asset
  imported into Blender, lit by ``relit_light.json`` and rendered by Cycles at the test cameras
  (``scripts/relight_in_cycles.py``, see :mod:`engine.relight`, in a process of its own, only when
  the ``bpy`` module is installed)
  against ``test_relit/``: what an artist sees after importing it under a light it never saw.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import trimesh
from PIL import Image
from scipy.spatial import cKDTree

from .cameras import Cameras
from .data.dataset import DatasetSplit
from .data.transforms import find_transforms, load_split
from .errors import InputError
from .export import read_textured
from .relight import DEFAULT_SAMPLES, DEFAULT_SPLIT, LIGHT_FILE, relight_command
from .texture import TexturedMesh, render_textured

GT_MESH = "gt_mesh.ply"
F_SCORE_THRESHOLDS = {"f_score_0.5%": 0.005, "f_score_0.2%": 0.002}


def geometry_metrics(
    pred: trimesh.Trimesh, gt: trimesh.Trimesh, samples: int = 200_000, seed: int = 0
) -> dict[str, float]:
    """Chamfer-L1, normal consistency and F-scores of ``pred`` against ``gt`` (same frame and units).

    ``pred`` is sampled with ``seed`` and ``gt`` with ``seed + 1``, so a mesh against itself gives
    the metric's sampling floor, not a perfect score.

    Returns:
        ``{"chamfer_l1", "normal_consistency", "f_score_0.5%", "f_score_0.2%"}`` (Chamfer in world
        units, the others in [0, 1]).
    """
    pred_points, pred_normals = _sample(pred, samples, seed)  # [S, 3], [S, 3]
    gt_points, gt_normals = _sample(gt, samples, seed + 1)
    pred_to_gt, pred_match = cKDTree(gt_points).query(pred_points, workers=-1)  # [S], [S]
    gt_to_pred, gt_match = cKDTree(pred_points).query(gt_points, workers=-1)
    cos_pred = np.abs((pred_normals * gt_normals[pred_match]).sum(-1))
    cos_gt = np.abs((gt_normals * pred_normals[gt_match]).sum(-1))
    metrics = {
        "chamfer_l1": float((pred_to_gt.mean() + gt_to_pred.mean()) / 2.0),
        "normal_consistency": float((cos_pred.mean() + cos_gt.mean()) / 2.0),
    }
    diagonal = float(np.linalg.norm(gt.bounds[1] - gt.bounds[0]))
    for key, fraction in F_SCORE_THRESHOLDS.items():
        precision = float((pred_to_gt < fraction * diagonal).mean())
        recall = float((gt_to_pred < fraction * diagonal).mean())
        metrics[key] = 0.0 if precision + recall == 0 else 2.0 * precision * recall / (precision + recall)
    return metrics


def _sample(mesh: trimesh.Trimesh, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` area-uniform surface points ``[S, 3]`` and their unit face normals ``[S, 3]``."""
    points, face_index = trimesh.sample.sample_surface(mesh, count, seed=seed)
    return np.asarray(points), np.asarray(mesh.face_normals[face_index])


def render_psnr(mesh: TexturedMesh, split: DatasetSplit, chunk: int = 8) -> dict[str, float]:
    """Mean PSNR (dB) of the textured mesh rendered at ``split``'s cameras against its images.

    Both sides are over a white background (``split.composited(1.0)``); rendering is done
    ``chunk`` views at a time on the split's device. To get the rendered images themselves, use
    :func:`engine.texture.render_textured`.

    Returns:
        ``{"psnr": mean over views of the per-view PSNR}``.
    """
    return {"psnr": views_psnr(lambda cameras: render_textured(mesh, cameras, chunk=chunk), split, chunk)}


def views_psnr(render: Callable[[Cameras], torch.Tensor], split: DatasetSplit, chunk: int = 8) -> float:
    """Mean over ``split``'s views of the PSNR (dB) of ``render(cameras)`` (``[n, H, W, 3]`` sRGB over
    white) against the images over white, ``chunk`` views at a time."""
    psnrs = []
    for start in range(0, len(split), chunk):
        stop = min(start + chunk, len(split))
        psnrs.append(view_psnrs(render(split.cameras[start:stop]), split[start:stop]))  # over white
    return float(torch.cat(psnrs).mean())


def view_psnrs(rendered: torch.Tensor, split: DatasetSplit) -> torch.Tensor:
    """``[N]`` PSNR (dB) of each image of ``rendered [N, H, W, 3]`` (over white, in [0, 1]) against the
    images of ``split`` composited over white."""
    target = split.composited(1.0).to(rendered)  # [N, H, W, 3]
    mse = ((rendered - target) ** 2).flatten(1).mean(1).clamp_min(1e-10)  # [N]
    return -10.0 * torch.log10(mse)


def view_metrics(mesh: TexturedMesh, dataset: str | Path, scale: float = 1.0) -> dict[str, float]:
    """The PSNRs of the textured ``mesh`` that need no renderer but the engine's: ``psnr`` against the
    ``test`` views and ``albedo_psnr`` against ``test_albedo`` (its texture unlit), when the dataset
    has them and the mesh a texture. ``scale`` resizes the images."""
    metrics: dict[str, float] = {}
    if mesh.texture.shape[0] <= 1:
        return metrics
    for split, key in (("test", "psnr"), ("test_albedo", "albedo_psnr")):
        if find_transforms(Path(dataset), split) is not None:
            metrics[key] = render_psnr(mesh, load_split(dataset, split, scale=scale))["psnr"]
    return metrics


def can_relight(dataset: str | Path) -> bool:
    """Whether the dataset has a relighting test (``relit_light.json`` and ``test_relit``)."""
    return (Path(dataset) / LIGHT_FILE).is_file() and find_transforms(Path(dataset), DEFAULT_SPLIT) is not None


def relit_psnr(asset: str | Path, dataset: str | Path, samples: int = DEFAULT_SAMPLES) -> dict[str, float]:
    """The relighting score of an asset file (GLB or OBJ) on a dataset with a relighting test.

    Runs ``scripts/relight_in_cycles.py`` (Blender's Cycles through ``bpy``) in a child process with
    this interpreter, then compares its renders with ``test_relit`` over white.

    Returns:
        ``{"relit_psnr": dB, "relight_seconds": s}``.
    Raises:
        InputError: ``bpy`` is not installed, or the renderer failed (its message says why).
    """
    if importlib.util.find_spec("bpy") is None:
        raise InputError("The relit PSNR needs Blender's bpy module (pip install bpy==4.5.15); "
                         "pass --no-relight to skip it")
    truth = load_split(dataset, DEFAULT_SPLIT)
    with tempfile.TemporaryDirectory(prefix="meshlift-relight-") as folder:
        done = subprocess.run(relight_command(asset, dataset, folder, samples=samples),
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise InputError(f"Relighting {Path(asset).name} in Blender failed: {last}")
        report = json.loads(done.stdout.strip().splitlines()[-1])
        rendered = torch.stack([_over_white(Path(path)) for path in report["renders"]])  # [N, H, W, 3]
    return {"relit_psnr": float(view_psnrs(rendered, truth).mean()), "relight_seconds": float(report["seconds"])}


def _over_white(path: Path) -> torch.Tensor:
    """An RGBA render ``[H, W, 3]`` in [0, 1], composited over white."""
    rgba = torch.from_numpy(np.asarray(Image.open(path).convert("RGBA"), dtype=np.float32) / 255.0)
    return rgba[..., :3] * rgba[..., 3:] + (1.0 - rgba[..., 3:])


def scoring_files(dataset: str | Path) -> tuple[Path | None, Path | None]:
    """``(gt_mesh.ply, the test split's camera file)`` of ``dataset`` (a folder, or a camera file
    in one), each ``None`` when absent.

    Raises:
        InputError: the dataset does not exist, or it has neither ("nothing to score against").
    """
    dataset = Path(dataset)
    if not dataset.exists():
        raise InputError(f"Dataset not found: {dataset}")
    folder = dataset if dataset.is_dir() else dataset.parent
    gt = folder / GT_MESH
    found = (gt if gt.is_file() else None), find_transforms(dataset, "test")
    if found == (None, None):
        raise InputError(f"Nothing to score against in {folder}: it has no {GT_MESH} and no test views "
                         "(transforms_test.json)")
    return found


def evaluate_mesh_file(
    mesh_path: str | Path, dataset: str | Path, samples: int = 200_000, relight: bool = True,
    warn: Callable[[str], None] = lambda _message: None,
) -> dict[str, float]:
    """Score a mesh file (OBJ or GLB, see :func:`engine.export.read_textured` for frames) on a dataset.

    Geometry metrics when the dataset folder has ``gt_mesh.ply``; PSNR when it has ``test`` views
    and the mesh has a texture (else ``warn`` says why there is none), the albedo PSNR with
    ``test_albedo`` views, and with ``relight`` the relit PSNR (Cycles) when the dataset has a
    relighting test.

    Returns:
        The metrics of :func:`geometry_metrics`, :func:`view_metrics` and :func:`relit_psnr` that apply.
    Raises:
        InputError: an unreadable mesh, or nothing in the dataset to score this mesh against.
    """
    mesh = read_textured(mesh_path)
    gt_path, test_path = scoring_files(dataset)
    textured = mesh.texture.shape[0] > 1
    if gt_path is None and not textured:
        raise InputError(f"Nothing to score {Path(mesh_path).name} against: {Path(dataset)} has no {GT_MESH}, "
                         "and the mesh has no texture to compare with its test views")
    metrics: dict[str, float] = {}
    if gt_path is not None:
        gt = trimesh.load(gt_path, force="mesh")
        pred = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
        metrics.update(geometry_metrics(pred, gt, samples))
    folder = Path(dataset) if Path(dataset).is_dir() else Path(dataset).parent
    if test_path is not None and not textured:
        warn(f"No PSNR: {Path(mesh_path).name} has no texture to compare with the test views")
    metrics.update(view_metrics(mesh, folder))
    if relight and can_relight(folder) and textured:
        metrics.update(relit_psnr(mesh_path, folder))
    return metrics
