"""The texture job: a mesh the user already has, textured from posed images (``python -m engine texture``).

The mesh keeps its shape: its vertices and faces are written back as they were read (vertices are
only duplicated where UV seams cut them), in the same frame, and its own UVs are used when it has
them; otherwise xatlas unwraps it (:func:`engine.texture.unwrap`). Then the same bake as
``reconstruct``:

* ``material=baked`` (and methods without a ``material`` option): the training images are projected
  onto the mesh's texels (:func:`engine.texture.bake_from_images`);
* ``material=pbr``: the method runs on the images to learn the material and the light, and its
  fields are baked onto the mesh's texels, read on the method's own surface under each texel, with
  its normals as a normal map (:func:`engine.texture.pbr.pbr_textures`); the environment HDR comes
  with it.

Output, progress, cancellation and errors follow ``reconstruct`` (:mod:`engine.pipeline`).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from .devices import resolve_device
from .errors import InputError
from .export import read_mesh
from .inputs import prepare_inputs
from .methods import get_method, resolve_options
from .output import OutputDir
from .pipeline import asset_report, evaluate_against_ground_truth, run_method, unit_points, write_result
from .progress import Progress
from .protocol import TextureJob, safe_name
from .texture import TexturedMesh, bake_from_images, unwrap
from .texture.pbr import environment_hdr, pbr_textures
from .timings import Timings

MESH_SUFFIXES = (".obj", ".glb", ".gltf", ".ply", ".stl", ".off")


def read_target_mesh(path: str | Path, texture_size: int) -> tuple[TexturedMesh, bool]:
    """The mesh to texture, with UVs: its own, or an xatlas unwrap packed for ``texture_size``.

    Returns:
        The mesh (empty texture) and whether its UVs are its own. Raises :class:`InputError` for a
        missing or unreadable file, or one without triangles.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"The mesh {path} does not exist")
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise InputError(f"The mesh {path.name} is not a mesh file Meshlift reads ({', '.join(MESH_SUFFIXES)})")
    try:
        mesh, has_uvs = read_mesh(path)
    except Exception as error:  # trimesh raises many kinds on a broken file
        raise InputError(f"Cannot read the mesh {path.name}: {error}") from error
    if len(mesh.faces) == 0:
        raise InputError(f"The mesh {path.name} has no faces")
    if not has_uvs:
        vertices, faces, uvs, normals = unwrap(mesh.vertices, mesh.faces, texture_size)
        mesh = replace(mesh, vertices=vertices, faces=faces, uvs=uvs, normals=normals)
    return mesh, has_uvs


def texture_existing(job: TextureJob, progress: Progress, output: OutputDir | None = None) -> dict[str, Any]:
    """Run ``job``; returns the worker protocol's ``result`` payload (``files`` and ``report``)."""
    started = time.perf_counter()
    output = output or OutputDir(job.out, job.force)
    method = get_method(job.method)
    options = resolve_options(method, job.preset, job.options)
    device = resolve_device(job.device)
    name = safe_name(job.name or Path(job.mesh).stem, "mesh")
    pbr = getattr(options, "material", "baked") == "pbr"
    timings = Timings()
    progress.log(f"Texturing {Path(job.mesh).name} ({'PBR material by ' + method.title if pbr else 'baked'}) "
                 f"on {device}, output {output.path}")
    with timings("read mesh"):
        mesh, own_uvs = read_target_mesh(job.mesh, options.texture_size)
    inputs = prepare_inputs(job, method.needs_masks and pbr, device, progress, timings)
    environment, result = None, None
    if pbr:
        with timings("reconstruct"):
            result, dense_vertices = run_method(method, options, inputs, device, progress)
        if result.material is None:
            raise InputError(f"{method.title} learned no PBR material; choose a method with material=pbr")
        with timings("texture"):
            mesh = pbr_textures(mesh, dense_vertices, result.faces, result.material, unit_points(inputs.normalization),
                                texture_size=options.texture_size,
                                views=inputs.split if options.base_colour_from == "photos" else None,
                                on_step=progress.stage("baking the material"))
            environment = environment_hdr(result.material.light)
    else:
        with timings("texture"):
            texture = bake_from_images(mesh.vertices, mesh.faces, mesh.uvs, mesh.normals, split=inputs.split,
                                       texture_size=options.texture_size, on_step=progress.stage("texturing"))
            mesh = replace(mesh, texture=texture, source="projected training images")
    report = asset_report(job, method, options, device, inputs, mesh=mesh, result=result)
    report["input_mesh"] = {"path": str(Path(job.mesh).absolute()), "uvs": "its own" if own_uvs else "xatlas unwrap"}
    if job.evaluate:
        with timings("evaluate"):
            report["metrics"] = evaluate_against_ground_truth(mesh, job, progress)
    return write_result(output, name, mesh, report, environment=environment, inputs=inputs, timings=timings,
                        started=started, progress=progress)
