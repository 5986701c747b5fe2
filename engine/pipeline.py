"""The reconstruction job: posed images in, a textured mesh folder out.

Stages: the input stage (:mod:`engine.inputs`: the views, their masks, the object's hints and its
region of interest, whatever the source), then run the method in the unit volume, map the
mesh back to the dataset's world frame, decimate + unwrap + texture it from the images, write
OBJ/MTL/PNG + GLB + ``report.json``, and optionally score it against ground truth.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import trimesh

from .data.dataset import DatasetSplit
from .data.transforms import find_transforms, load_split
from .devices import resolve_device
from .evaluate import geometry_metrics, render_psnr
from .export import write_glb, write_obj
from .inputs import dataset_folder, prepare_inputs
from .methods import MethodInput, get_method, resolve_options
from .output import OutputDir
from .progress import Progress
from .protocol import ReconstructJob, safe_name
from .roi import Normalization
from .shading.evaluation import material_metrics
from .texture import TexturedMesh, bake_from_field, texture_mesh
from .timings import Timings


def output_name(job: ReconstructJob) -> str:
    """A file-system-safe base name for the output files: the job's ``name``, else the dataset's folder."""
    base = job.name or Path(job.dataset).absolute().name
    if base.endswith(".json"):
        base = Path(job.dataset).absolute().parent.name
    return safe_name(base, "mesh")


def reconstruct(job: ReconstructJob, progress: Progress, output: OutputDir | None = None) -> dict[str, Any]:
    """Run ``job``; returns the worker protocol's ``result`` payload (``files`` and ``report``).

    ``output`` lets the caller hold the :class:`OutputDir` (to discard it on cancel); by default
    one is made from ``job.out``.
    """
    started = time.perf_counter()
    output = output or OutputDir(job.out, job.force)
    method = get_method(job.method)
    options = resolve_options(method, job.preset, job.options)
    device = resolve_device(job.device)
    name = output_name(job)
    timings = Timings()
    progress.log(f"{method.title} ({job.preset}) on {device}, output {output.path}")

    inputs = prepare_inputs(job, method.needs_masks, device, progress, timings)
    split, normalization, hints = inputs.split, inputs.normalization, inputs.hints
    with timings("reconstruct"):
        result = method.run(MethodInput(normalization.split_to_unit(split), normalization, options, progress, device,
                                        hints=None if hints is None else hints.to_unit(normalization)))
        vertices = normalization.to_world(torch.from_numpy(result.vertices)).numpy()
    with timings("texture"):
        mesh = texture_mesh(vertices, result.faces, split, target_faces=options.faces,
                            texture_size=options.texture_size, on_step=progress.stage("texturing"))
        texture_scores = None
        if result.material is not None:  # the photos hold the capture's light: the texture is the base colour
            mesh = replace(mesh, texture=bake_field(mesh, result.material.base_colour, normalization),
                           source="learned base colour (pbr)")
        elif result.albedo is not None:
            mesh, texture_scores = best_texture(mesh, result.albedo, normalization, split)

    report: dict[str, Any] = {
        "method": method.name, "preset": job.preset, "options": asdict(options), "device": str(device),
        "views": len(split), "image_size": [split.cameras.width, split.cameras.height],
        "region_of_interest": asdict(normalization),
        "mesh": {"vertices": int(mesh.vertices.shape[0]), "faces": int(mesh.faces.shape[0]),
                 "frame": "dataset world frame (the frame of transforms.json)"},
        "texture": {"size": list(mesh.texture.shape[:2]), "source": mesh.source,
                    "psnr_on_training_views": texture_scores},
        "method_stats": result.stats,
        "material": {"model": "pbr", "light": result.material.light.description} if result.material
        else {"model": "baked"},
    }
    if result.losses:
        report["losses"] = result.losses
    if job.evaluate:
        with timings("evaluate"):
            report["metrics"] = evaluate_against_ground_truth(mesh, job, progress)
            report["metrics"].update(material_metrics(mesh, result.material, normalization, job))

    with output as folder:
        progress.update("writing files", 0, 1)
        written = [*write_obj(mesh, folder, name), write_glb(mesh, folder / f"{name}.glb")]
        if inputs.cameras is not None:
            inputs.cameras.copy_into(folder)
        report["timings"] = {**timings.seconds, "total": round(time.perf_counter() - started, 3)}
        (folder / "report.json").write_text(json.dumps(report, indent=2))
        progress.check()
        final = output.commit()
        progress.update("writing files", 1, 1)
    files = {path.suffix.lstrip("."): str(final / path.name) for path in written}
    files["report"] = str(final / "report.json")
    return {"files": files, "report": report}


def best_texture(mesh: TexturedMesh, albedo: Callable[[np.ndarray], np.ndarray], normalization: Normalization,
                 split: DatasetSplit, views: int = 8) -> tuple[TexturedMesh, dict[str, float]]:
    """The better of ``mesh`` (textured from the images) and the same mesh with ``albedo`` (a
    function of unit-volume points) baked into its atlas, judged by PSNR on ``views`` training views.

    Returns the chosen mesh and the score of each candidate (dB, keyed by texture source).
    """
    candidates = [mesh, replace(mesh, texture=bake_field(mesh, albedo, normalization), source="baked albedo field")]
    check = split[torch.linspace(0, len(split) - 1, min(views, len(split))).round().long().tolist()]
    scores = {c.source: round(render_psnr(c, check)["psnr"], 3) for c in candidates}
    return max(candidates, key=lambda c: scores[c.source]), scores


def bake_field(mesh: TexturedMesh, colour: Callable[[np.ndarray], np.ndarray], normalization: Normalization
               ) -> np.ndarray:
    """``mesh``'s texture with ``colour`` (a function of unit-volume points, sRGB in [0, 1]) baked into its atlas."""
    def world_colour(points: np.ndarray) -> np.ndarray:
        return colour((points - np.asarray(normalization.center)) / normalization.radius)

    return bake_from_field(mesh.vertices, mesh.faces, mesh.uvs, colour=world_colour, texture_size=mesh.texture.shape[0])


def evaluate_against_ground_truth(mesh: TexturedMesh, job: ReconstructJob, progress: Progress) -> dict[str, float]:
    """Metrics of the textured ``mesh`` against the dataset's ``gt_mesh.ply`` and ``test`` views, if any."""
    metrics: dict[str, float] = {}
    dataset = Path(job.dataset)
    folder = dataset_folder(dataset)
    progress.update("evaluating", 0, 2)
    if (folder / "gt_mesh.ply").is_file():
        gt = trimesh.load(folder / "gt_mesh.ply", force="mesh")
        metrics.update(geometry_metrics(trimesh.Trimesh(mesh.vertices, mesh.faces, process=False), gt))
    progress.update("evaluating", 1, 2)
    if find_transforms(dataset, "test") is not None:
        test = load_split(dataset, "test", scale=job.image_scale)
        metrics.update(render_psnr(mesh, test))
    progress.update("evaluating", 2, 2)
    return metrics
