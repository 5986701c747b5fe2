"""The reconstruction job: posed images in, a textured mesh folder out.

Stages: load the views, find the region of interest, run the method in the unit volume, map the
mesh back to the dataset's world frame, decimate + unwrap + texture it from the images, write
OBJ/MTL/PNG + GLB + ``report.json``, and optionally score it against ground truth.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import trimesh

from .data.dataset import DatasetSplit
from .data.transforms import find_transforms, load_split
from .devices import resolve_device
from .errors import InputError
from .evaluate import geometry_metrics, render_psnr
from .export import write_glb, write_obj
from .methods import DEFAULT_PRESET, MethodInput, get_method, resolve_options
from .output import OutputDir
from .progress import Progress
from .roi import Normalization, crop_to_region, find_roi, stored_region, view_roi
from .sfm.object_hints import ObjectHints, find_object_hints, stored_object_hints
from .sfm.photos import photo_dataset
from .texture import TexturedMesh, bake_from_field, texture_mesh


@dataclass
class ReconstructJob:
    """One reconstruction, as given on the command line or in a worker's ``JOB.json``.

    Attributes:
        dataset: a folder with ``transforms_train.json`` / ``transforms.json`` (or the json itself).
        out: the output folder; it must not exist unless ``force``.
        method: a name from ``engine.methods.METHODS``.
        preset: ``fast``, ``balanced`` or ``quality``.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``.
        options: per-option overrides of the preset (e.g. ``{"resolution": 256}``).
        name: base name of the output files; defaults to the dataset folder's name.
        force: replace an existing output folder.
        evaluate: score the result against ``gt_mesh.ply`` and the ``test`` views when present.
        image_scale: resize factor applied to the images when loading, in (0, 1].
        max_views: use at most this many training views (evenly spaced).
        region: ``[xmin, ymin, zmin, xmax, ymax, zmax]`` in the dataset frame: the object's box,
            replacing the automatic region of interest.
    """

    dataset: str
    out: str
    method: str = "hull"
    preset: str = DEFAULT_PRESET
    device: str = "auto"
    options: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    force: bool = False
    evaluate: bool = False
    image_scale: float = 1.0
    max_views: int | None = None
    region: list[float] | None = None

    @staticmethod
    def from_dict(data: dict[str, Any]) -> ReconstructJob:
        """Build a job from JSON data, rejecting unknown or missing keys with a clear message."""
        known = set(ReconstructJob.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"Unknown job field(s): {', '.join(unknown)}. Known: {', '.join(sorted(known))}")
        missing = [key for key in ("dataset", "out") if key not in data]
        if missing:
            raise InputError(f"The job needs the field(s): {', '.join(missing)}")
        for key, value in data.items():
            kinds = JOB_FIELD_TYPES[key]
            if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
                names = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
                raise InputError(f"The job field '{key}' must be {names}, got {value!r}")
        return ReconstructJob(**data)


JOB_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "dataset": (str,), "out": (str,), "method": (str,), "preset": (str,), "device": (str,), "options": (dict,),
    "name": (str, type(None)), "force": (bool,), "evaluate": (bool,), "image_scale": (int, float),
    "max_views": (int, type(None)), "region": (list, type(None)),
}


class Timings:
    """Wall-clock seconds per stage, for the report."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = round(time.perf_counter() - start, 3)


def output_name(job: ReconstructJob) -> str:
    """A file-system-safe base name for the output files."""
    base = job.name or Path(job.dataset).absolute().name
    if base.endswith(".json"):
        base = Path(job.dataset).absolute().parent.name
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", base).strip("._") or "mesh"


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

    # Photos without poses: cameras, masks and the object's box by structure-from-motion first.
    with timings("poses"):
        photos = photo_dataset(job.dataset, progress)
    if photos is not None:
        job = replace(job, dataset=str(photos.dataset))

    with timings("load"):
        progress.update("loading images", 0, 1)
        split = load_split(job.dataset, "train", scale=job.image_scale, max_views=job.max_views,
                           require_masks=method.needs_masks)
        progress.update("loading images", 1, 1)
        split = split.to(device)
    with timings("region"):
        # Without masks (only methods with needs_masks=False get here): the object and its table
        # from SfM points and automatic masks, else the cameras alone frame the object.
        hints = None if split.masks is not None else object_hints_or_none(split, progress)
        stored = None if method.needs_masks else stored_object_hints(job.dataset, split)
        if stored is not None:  # automatic masks from the photos: a start for the method, not a truth
            hints, split = stored, replace(split, masks=None)
            progress.log("The automatic masks only start the method; it fits the photos without them")
        if split.masks is not None:
            normalization = find_roi(split, on_step=progress.stage("finding the object"))
        elif hints is not None:
            normalization = Normalization.from_box(torch.from_numpy(hints.box_min), torch.from_numpy(hints.box_max))
        else:
            normalization = view_roi(split)
        # The hints' box already holds the stored region, grown to take in the table around the foot.
        region = job.region or (None if hints is not None else stored_region(job.dataset))
        normalization = crop_to_region(normalization, region, job.region is not None)
    with timings("reconstruct"):
        result = method.run(MethodInput(normalization.split_to_unit(split), normalization, options, progress, device,
                                        hints=None if hints is None else hints.to_unit(normalization)))
        vertices = normalization.to_world(torch.from_numpy(result.vertices)).numpy()
    with timings("texture"):
        mesh = texture_mesh(vertices, result.faces, split, target_faces=options["faces"],
                            texture_size=options["texture_size"], on_step=progress.stage("texturing"))
        texture_scores = None
        if result.albedo is not None:
            mesh, texture_scores = best_texture(mesh, result.albedo, normalization, split)

    report: dict[str, Any] = {
        "method": method.name, "preset": job.preset, "options": options, "device": str(device),
        "views": len(split), "image_size": [split.cameras.width, split.cameras.height],
        "region_of_interest": asdict(normalization),
        "mesh": {"vertices": int(mesh.vertices.shape[0]), "faces": int(mesh.faces.shape[0]),
                 "frame": "dataset world frame (the frame of transforms.json)"},
        "texture": {"size": list(mesh.texture.shape[:2]), "source": mesh.source,
                    "psnr_on_training_views": texture_scores},
        "method_stats": result.stats,
    }
    if job.evaluate:
        with timings("evaluate"):
            report["metrics"] = evaluate_against_ground_truth(mesh, job, progress)

    with output as folder:
        progress.update("writing files", 0, 1)
        written = [*write_obj(mesh, folder, name), write_glb(mesh, folder / f"{name}.glb")]
        if photos is not None:
            photos.copy_into(folder)
        report["timings"] = {**timings.seconds, "total": round(time.perf_counter() - started, 3)}
        (folder / "report.json").write_text(json.dumps(report, indent=2))
        progress.check()
        final = output.commit()
        progress.update("writing files", 1, 1)
    files = {path.suffix.lstrip("."): str(final / path.name) for path in written}
    files["report"] = str(final / "report.json")
    return {"files": files, "report": report}


def object_hints_or_none(split: DatasetSplit, progress: Progress) -> ObjectHints | None:
    """:func:`engine.sfm.object_hints.find_object_hints` for views without masks, or ``None`` (with
    a warning saying why) when SfM or the table search fails: the method then starts blind."""
    try:
        return find_object_hints(split, progress)
    except InputError as error:
        progress.log(f"Could not locate the object on its table ({error}); starting from the cameras alone",
                     "warning")
        return None


def best_texture(mesh: TexturedMesh, albedo: Callable[[np.ndarray], np.ndarray], normalization: Normalization,
                 split: DatasetSplit, views: int = 8) -> tuple[TexturedMesh, dict[str, float]]:
    """The better of ``mesh`` (textured from the images) and the same mesh with ``albedo`` (a
    function of unit-volume points) baked into its atlas, judged by PSNR on ``views`` training views.

    Returns the chosen mesh and the score of each candidate (dB, keyed by texture source).
    """
    def world_albedo(points: np.ndarray) -> np.ndarray:
        return albedo((points - np.asarray(normalization.center)) / normalization.radius)

    baked = bake_from_field(mesh.vertices, mesh.faces, mesh.uvs, colour=world_albedo,
                            texture_size=mesh.texture.shape[0])
    candidates = [mesh, replace(mesh, texture=baked, source="baked albedo field")]
    check = split[torch.linspace(0, len(split) - 1, min(views, len(split))).round().long().tolist()]
    scores = {c.source: round(render_psnr(c, check)["psnr"], 3) for c in candidates}
    return max(candidates, key=lambda c: scores[c.source]), scores


def evaluate_against_ground_truth(mesh: TexturedMesh, job: ReconstructJob, progress: Progress) -> dict[str, float]:
    """Metrics of the textured ``mesh`` against the dataset's ``gt_mesh.ply`` and ``test`` views, if any."""
    metrics: dict[str, float] = {}
    dataset = Path(job.dataset)
    folder = dataset if dataset.is_dir() else dataset.parent
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
