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
from .devices import resolve_device
from .evaluate import geometry_metrics, render_psnr, scoring_files, view_metrics
from .export import file_kind, write_glb, write_obj
from .inputs import Inputs, check_dataset, prepare_inputs
from .methods import Method, MethodInput, MethodOutput, get_method, resolve_options
from .output import OutputDir
from .preview import Preview
from .progress import Progress
from .protocol import ReconstructJob, safe_name
from .roi import Normalization
from .shading.evaluation import material_metrics
from .texture import TexturedMesh, bake_from_field, texture_mesh
from .texture.environment import write_hdr
from .texture.pbr import environment_hdr, pbr_mesh
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
    check_dataset(job.dataset)
    if job.evaluate:
        scoring_files(job.dataset)  # nothing to score against is an error before the work, not after it
    progress.log(f"{method.title} ({job.preset}) on {device}, output {output.path}")

    inputs = prepare_inputs(job, method.needs_masks, device, progress, timings)
    split, normalization = inputs.split, inputs.normalization
    preview = Preview(job.preview, normalization, progress) if job.preview else None
    with timings("reconstruct"):
        result, vertices = run_method(method, options, inputs, device, progress, preview=preview)
    environment = None
    with timings("texture"):
        texture_scores = None
        if result.material is not None:
            mesh = pbr_mesh(vertices, result.faces, result.material, unit_points(normalization),
                            target_faces=options.faces, texture_size=options.texture_size,
                            views=split if options.base_colour_from == "photos" else None,
                            on_step=progress.stage("baking the material"))
            environment = environment_hdr(result.material.light)
        else:
            mesh = texture_mesh(vertices, result.faces, split, target_faces=options.faces,
                                texture_size=options.texture_size, on_step=progress.stage("texturing"))
            if result.albedo is not None:
                mesh, texture_scores = best_texture(mesh, result.albedo, normalization, split)

    report = asset_report(job, method, options, device, inputs, mesh=mesh, result=result)
    report["texture"]["psnr_on_training_views"] = texture_scores
    if job.evaluate:
        with timings("evaluate"):
            report["metrics"] = evaluate_against_ground_truth(mesh, job, progress)
            report["metrics"].update(material_metrics(mesh, result.material, normalization, job))
    return write_result(output, name, mesh, report, environment=environment, inputs=inputs, timings=timings,
                        started=started, progress=progress)


def run_method(method: Method, options: Any, inputs: Inputs, device: torch.device, progress: Progress, *,
               preview: Preview | None = None) -> tuple[MethodOutput, np.ndarray]:
    """Run ``method`` on the prepared inputs (sending ``preview`` meshes while it optimizes, when
    given); returns its output and its mesh's vertices in the world frame."""
    normalization, hints = inputs.normalization, inputs.hints
    result = method.run(MethodInput(normalization.split_to_unit(inputs.split), normalization, options, progress,
                                    device, hints=None if hints is None else hints.to_unit(normalization),
                                    preview=preview))
    return result, normalization.to_world(torch.from_numpy(result.vertices)).numpy()


def unit_points(normalization: Normalization) -> Callable[[np.ndarray], np.ndarray]:
    """World points ``[P, 3]`` -> unit-volume points ``[P, 3]`` (numpy), for the methods' fields."""
    return lambda points: normalization.to_unit(torch.from_numpy(np.asarray(points, dtype=np.float32))).numpy()


def asset_report(job: ReconstructJob, method: Method, options: Any, device: torch.device, inputs: Inputs, *,
                 mesh: TexturedMesh, result: MethodOutput | None) -> dict[str, Any]:
    """What ``report.json`` says about the settings, the views, the mesh, its texture and material."""
    split = inputs.split
    material = None if result is None else result.material
    report: dict[str, Any] = {
        "method": method.name, "preset": job.preset, "options": asdict(options), "device": str(device),
        "views": len(split), "image_size": [split.cameras.width, split.cameras.height],
        "region_of_interest": inputs.normalization.describe(),
        "mesh": {"vertices": int(mesh.vertices.shape[0]), "faces": int(mesh.faces.shape[0]),
                 "frame": "dataset world frame (the frame of transforms.json)"},
        "texture": {"size": list(mesh.texture.shape[:2]), "source": mesh.source},
        "material": {"model": "baked"} if material is None else {"model": "pbr", "specular": material.specular,
                                                                 "light": material.light.description},
    }
    if result is not None:
        report["method_stats"] = result.stats
        if result.losses:
            report["losses"] = result.losses
    return report


def write_result(output: OutputDir, name: str, mesh: TexturedMesh, report: dict[str, Any], *,
                 environment: np.ndarray | None, inputs: Inputs, timings: Timings, started: float,
                 progress: Progress) -> dict[str, Any]:
    """Write the asset (OBJ + MTL + maps, GLB, the environment HDR if any, the cameras SfM found) and
    ``report.json`` into ``output`` and commit it; returns the worker protocol's ``result`` payload."""
    with output as folder:
        progress.update("writing files", 0, 1)
        written = [*write_obj(mesh, folder, name), write_glb(mesh, folder / f"{name}.glb")]
        if environment is not None:
            written.append(write_hdr(folder / f"{name}_environment.hdr", environment))
        if inputs.cameras is not None:
            inputs.cameras.copy_into(folder)
        report["timings"] = {**timings.seconds, "total": round(time.perf_counter() - started, 3)}
        (folder / "report.json").write_text(json.dumps(report, indent=2))
        progress.check()
        final = output.commit()
        progress.update("writing files", 1, 1)
    files = {file_kind(path, name): str(final / path.name) for path in written}
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
    to_unit = unit_points(normalization)

    def world_colour(points: np.ndarray) -> np.ndarray:
        return colour(to_unit(points))

    return bake_from_field(mesh.vertices, mesh.faces, mesh.uvs, colour=world_colour, texture_size=mesh.texture.shape[0])


def evaluate_against_ground_truth(mesh: TexturedMesh, job: ReconstructJob, progress: Progress) -> dict[str, float]:
    """Metrics of the textured ``mesh`` against the dataset's ``gt_mesh.ply`` and ``test`` views, if any."""
    metrics: dict[str, float] = {}
    gt_path, test_path = scoring_files(job.dataset)
    progress.update("evaluating", 0, 2)
    if gt_path is not None:
        gt = trimesh.load(gt_path, force="mesh")
        metrics.update(geometry_metrics(trimesh.Trimesh(mesh.vertices, mesh.faces, process=False), gt))
    progress.update("evaluating", 1, 2)
    if test_path is not None:
        metrics.update(view_metrics(mesh, test_path if test_path.is_dir() else test_path.parent, job.image_scale))
    progress.update("evaluating", 2, 2)
    return metrics
