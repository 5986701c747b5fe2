"""Relief from one image: a textured height-field mesh from an image and its depth or normal map.

The single-view case of 2.5D input (``python -m engine relief IMAGE (--depth D | --normals N)``,
the add-on's *Relief from Image*). The relief is a grid over the image, ``width`` scene units on
its longer side, its heights from:

* **a depth map** (read as in ``engine.data.depth_maps``, along the optical axis): nearer is
  higher. Without intrinsics the image is taken as seen by a camera of ``field_of_view``, so a
  depth difference ``dD`` at the median depth ``D`` rises ``dD * width / (2 D tan(fov / 2))``.
* **a normal map** (camera space: +X right, +Y up with ``normal_y = "up"`` (OpenGL; ``"down"`` for
  DirectX maps), +Z towards the viewer; ``n = 2 * value / max - 1`` for PNGs) by normal
  integration: the slopes ``dh/dx = -nx / nz`` and ``dh/dy = -ny / nz`` are integrated in the
  least-squares sense (the Poisson equation with free boundaries, on the pixels that have a normal,
  as a sparse linear system), so the heights are those of an orthographic view, up to a constant.

``scale`` multiplies the heights. Pixels without depth, without a normal, or transparent in the
image are left out. Frame: the image's right is +X, its up is +Z, the relief faces -Y (Blender's
front view), its back at y = 0. The texture is the image itself.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse
import scipy.sparse.linalg
import trimesh
from PIL import Image, UnidentifiedImageError

from .data.depth_maps import read_depth, read_normals
from .errors import InputError
from .export import write_glb, write_obj
from .options import option, resolve_options
from .output import OutputDir
from .progress import Progress
from .protocol import ReliefJob, safe_name
from .texture import TexturedMesh

# Normals flatter than this (|nz|) carry no usable slope: their pixels are left out.
MIN_NZ = 0.05


@dataclass(frozen=True)
class ReliefOptions:
    """Options of ``relief``."""

    width: float = option(2.0, "Size of the relief's longer side.", unit="scene units", min=1e-6)
    scale: float = option(1.0, "Factor on the heights (1: as the depth or the normals say).", min=0.0)
    resolution: int = option(256, "Grid vertices on the longer side of the image.", unit="vertices", min=8,
                             max=4096)
    field_of_view: float = option(50.0, "With a depth map: horizontal field of view of the camera that took it.",
                                  unit="degrees", min=1.0, max=170.0)
    normal_y: str = option("up", "Which way a normal map's green channel points: up (OpenGL) or down (DirectX).",
                           choices=("up", "down"))
    texture_size: int = option(2048, "Largest side of the texture (the image, shrunk when larger).",
                               unit="texels", min=16, max=16384)


def integrate_normals(normals: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Heights ``[H, W]`` (in pixels; 0 where not ``valid``) whose slopes best match camera-space
    ``normals [H, W, 3]`` (OpenGL: +Y up, +Z towards the viewer) on the ``valid [H, W]`` pixels.

    Least squares over every pair of valid neighbours (rows and columns): ``h[b] - h[a]`` should be
    the mean of the two pixels' slopes. Each connected region gets mean height 0 (a tiny pull to 0
    fixes the free constant)."""
    _height, _width = valid.shape
    nz = np.clip(normals[..., 2], MIN_NZ, None)
    slope_right = -normals[..., 0] / nz  # dh per pixel to the right
    slope_down = normals[..., 1] / nz  # dh per pixel downwards (image rows go down, +Y goes up)
    index = np.full(valid.shape, -1, np.int64)
    index[valid] = np.arange(int(valid.sum()))
    rows, columns, targets = [], [], []
    for a, b, slope in (
        (index[:, :-1], index[:, 1:], (slope_right[:, :-1] + slope_right[:, 1:]) / 2),
        (index[:-1], index[1:], (slope_down[:-1] + slope_down[1:]) / 2),
    ):
        both = (a >= 0) & (b >= 0)
        rows.append(a[both])
        columns.append(b[both])
        targets.append(slope[both])
    first, second, target = (np.concatenate(x) for x in (rows, columns, targets))
    count, unknowns = len(first), int(valid.sum())
    equations = np.arange(count)
    system = scipy.sparse.csr_matrix(
        (np.concatenate([-np.ones(count), np.ones(count)]),
         (np.concatenate([equations, equations]), np.concatenate([first, second]))), shape=(count, unknowns))
    normal_matrix = (system.T @ system + 1e-8 * scipy.sparse.identity(unknowns)).tocsc()
    solved = scipy.sparse.linalg.spsolve(normal_matrix, system.T @ target)
    heights = np.zeros(valid.shape)
    heights[valid] = solved
    return heights


def relief_mesh(image: np.ndarray, heights: np.ndarray, valid: np.ndarray, width: float, texture_size: int
                ) -> TexturedMesh:
    """The textured height field: one vertex per ``valid`` grid point of ``heights [h, w]`` (scene
    units), two triangles per square of four valid points, ``image [H, W, 3]`` uint8 the texture.
    Frame as in the module docstring."""
    rows, columns = valid.shape
    step = width / (max(rows, columns) - 1)
    index = np.full(valid.shape, -1, np.int64)
    index[valid] = np.arange(int(valid.sum()))
    r, c = np.nonzero(valid)
    vertices = np.stack([(c - (columns - 1) / 2) * step, -heights[r, c], ((rows - 1) / 2 - r) * step], -1)
    uvs = np.stack([(c + 0.5) / columns, 1.0 - (r + 0.5) / rows], -1)
    a, b, d, e = index[:-1, :-1], index[:-1, 1:], index[1:, :-1], index[1:, 1:]  # top-left, top-right, ...
    square = (a >= 0) & (b >= 0) & (d >= 0) & (e >= 0)
    # counter-clockwise seen from -Y (the front): top-left, bottom-left, bottom-right; top-left, bottom-right, top-right
    faces = np.concatenate([np.stack([a[square], d[square], e[square]], -1),
                            np.stack([a[square], e[square], b[square]], -1)])
    if len(faces) == 0:
        raise InputError("The relief has no surface: too few pixels have a depth or a normal")
    scale = min(1.0, texture_size / max(image.shape[:2]))
    texture = image if scale >= 1.0 else np.asarray(Image.fromarray(image).resize(
        (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))), Image.LANCZOS))
    normals = trimesh.Trimesh(vertices, faces, process=False).vertex_normals
    return TexturedMesh(vertices.astype(np.float32), faces.astype(np.int32), uvs.astype(np.float32),
                        normals.astype(np.float32), np.ascontiguousarray(texture[..., :3]), "the image")


def relief(job: ReliefJob, progress: Progress, output: OutputDir | None = None) -> dict[str, Any]:
    """Run a relief ``job``; returns the worker protocol's ``result`` payload (``files``, ``report``)."""
    started = time.perf_counter()
    output = output or OutputDir(job.out, job.force)
    options = resolve_options(ReliefOptions(), job.options, "relief")
    if (job.depth is None) == (job.normals is None):
        raise InputError("A relief needs either a depth map or a normal map (not both)")
    progress.update("reading the image", 0, 1)
    rgb, alpha = read_image(Path(job.image))
    shape = rgb.shape[:2]
    if job.depth is not None:
        depth = read_depth(Path(job.depth), shape, scale=1.0, along="axis", ray_cosines=np.ones(shape))
        has_value = depth > 0
    else:
        camera_normals = read_normals(Path(job.normals), shape, space="camera", c2w=np.eye(4),
                                      directions=np.broadcast_to([0.0, 0.0, -1.0], (*shape, 3)))
        if options.normal_y == "down":
            camera_normals = camera_normals * np.array([1.0, -1.0, 1.0], np.float32)
        has_value = np.abs(camera_normals).sum(-1) > 0
    valid = has_value & (alpha > 0.5)
    grid = grid_shape(shape, options.resolution)
    progress.update("integrating the heights" if job.normals is not None else "reading the heights", 0, 1)
    mask = resample(valid.astype(np.float32), grid) > 0.5
    if job.depth is not None:
        sampled = resample(np.where(valid, depth, 0.0), grid, weights=valid.astype(np.float32))
        reference = float(np.median(sampled[mask])) if mask.any() else 1.0
        rise = options.width / (2.0 * reference * math.tan(math.radians(options.field_of_view) / 2))
        heights = np.where(mask, (sampled[mask].max() if mask.any() else 0.0) - sampled, 0.0) * rise
    else:
        sampled = resample(np.where(valid[..., None], camera_normals, 0.0), grid)
        length = np.linalg.norm(sampled, axis=-1, keepdims=True)
        mask &= length[..., 0] > 0.5
        pixel = options.width / (max(grid) - 1)  # scene units per grid step
        heights = integrate_normals(sampled / np.maximum(length, 1e-9), mask) * pixel
        heights = np.where(mask, heights - (heights[mask].min() if mask.any() else 0.0), 0.0)
    heights = heights * options.scale
    progress.update("building the mesh", 0, 1)
    mesh = relief_mesh(rgb, heights, mask, options.width, options.texture_size)
    name = safe_name(job.name or Path(job.image).stem, "relief")
    report: dict[str, Any] = {
        "method": "relief", "preset": "-", "device": "cpu", "options": asdict(options), "views": 1,
        "source": "depth map" if job.depth is not None else "normal map", "image_size": [shape[1], shape[0]],
        "mesh": {"vertices": len(mesh.vertices), "faces": len(mesh.faces),
                 "frame": "image right = +X, image up = +Z, facing -Y"},
        "texture": {"size": list(mesh.texture.shape[:2]), "source": mesh.source},
        "height_range": round(float(heights[mask].max() - heights[mask].min()) if mask.any() else 0.0, 6),
    }
    with output as folder:
        written = [*write_obj(mesh, folder, name), write_glb(mesh, folder / f"{name}.glb")]
        report["timings"] = {"total": round(time.perf_counter() - started, 3)}
        (folder / "report.json").write_text(json.dumps(report, indent=2))
        progress.check()
        final = output.commit()
    progress.update("building the mesh", 1, 1)
    files = {path.suffix.lstrip("."): str(final / path.name) for path in written}
    files["report"] = str(final / "report.json")
    return {"files": files, "report": report}


def read_image(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(rgb [H, W, 3] uint8, alpha [H, W] float in [0, 1])`` of an image file (alpha 1 without one)."""
    try:
        image = Image.open(path)
        image.load()
    except (OSError, UnidentifiedImageError) as error:
        raise InputError(f"Cannot read image {path}: it is missing, truncated or not an image") from error
    rgba = np.asarray(image.convert("RGBA"))
    return np.ascontiguousarray(rgba[..., :3]), rgba[..., 3].astype(np.float32) / 255.0


def grid_shape(shape: tuple[int, int], resolution: int) -> tuple[int, int]:
    """``(rows, columns)`` of the grid: ``resolution`` on the image's longer side, at most its pixels."""
    longer = max(shape)
    count = min(resolution, longer)
    return max(2, round(shape[0] * count / longer)), max(2, round(shape[1] * count / longer))


def resample(values: np.ndarray, grid: tuple[int, int], weights: np.ndarray | None = None) -> np.ndarray:
    """``values [H, W, ...]`` averaged over the cells of ``grid`` (area average; with ``weights
    [H, W]`` the weighted mean, 0 where a cell has no weight)."""
    height, width = values.shape[:2]
    row_edges = np.linspace(0, height, grid[0] + 1).round().astype(int)
    column_edges = np.linspace(0, width, grid[1] + 1).round().astype(int)
    w = np.ones((height, width), np.float64) if weights is None else weights.astype(np.float64)
    weighted = values * (w if values.ndim == 2 else w[..., None])
    sums = np.add.reduceat(np.add.reduceat(weighted, row_edges[:-1], axis=0), column_edges[:-1], axis=1)
    totals = np.add.reduceat(np.add.reduceat(w, row_edges[:-1], axis=0), column_edges[:-1], axis=1)
    if values.ndim == 3:
        totals = totals[..., None]
    return np.where(totals > 0, sums / np.maximum(totals, 1e-12), 0.0)
