"""Blender camera settings -> the engine's pinhole intrinsics, and the ``transforms.json`` writer.

Blender's view plane (``BKE_camera_params_compute_viewplane``): the sensor size applies along the
*fit* axis (AUTO picks the longer side of the image, counted in pixel-aspect-corrected units;
AUTO and HORIZONTAL use the sensor width, VERTICAL the sensor height); ``viewfac`` is the image
extent along that axis in x-pixel units, so a pixel spans ``sensor / (lens * viewfac)`` of the
plane at unit depth horizontally, and ``ycor = aspect_y / aspect_x`` times that vertically. Lens
shift moves the plane by ``shift * viewfac`` pixels. In the engine's convention (pixel centres at
+0.5, ``py`` down, ``px = cx + fx * x / d``, ``py = cy - fy * y / d``, ``d = -z``) this gives::

    fx = lens * viewfac / sensor        fy = fx / ycor
    cx = w / 2 - shift_x * viewfac      cy = h / 2 + shift_y * viewfac / ycor
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..engine.protocol import safe_name


@dataclass(frozen=True)
class Intrinsics:
    fl_x: float
    fl_y: float
    cx: float
    cy: float
    w: int
    h: int

    def as_dict(self) -> dict[str, float | int]:
        return {"fl_x": self.fl_x, "fl_y": self.fl_y, "cx": self.cx, "cy": self.cy, "w": self.w, "h": self.h}

    def project(self, point_camera: Sequence[float]) -> tuple[float, float]:
        """Pixel ``(px, py)`` of a camera-space point (OpenGL: -Z forward, +Y up)."""
        x, y, z = point_camera
        depth = -z
        return self.cx + self.fl_x * x / depth, self.cy - self.fl_y * y / depth


def render_size(resolution_x: int, resolution_y: int, percentage: int) -> tuple[int, int]:
    """The rendered image size in pixels (Blender truncates, as here)."""
    return resolution_x * percentage // 100, resolution_y * percentage // 100


def camera_intrinsics(
    *, lens: float, sensor_width: float, sensor_height: float, sensor_fit: str, shift_x: float, shift_y: float,
    width: int, height: int, pixel_aspect_x: float = 1.0, pixel_aspect_y: float = 1.0,
) -> Intrinsics:
    """Intrinsics of a perspective Blender camera rendering a ``width`` x ``height`` image.

    ``sensor_fit`` is ``AUTO``, ``HORIZONTAL`` or ``VERTICAL``; ``lens`` and the sensor sizes are
    in millimetres; ``shift_*`` in units of the image extent along the fit axis, as in Blender.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if lens <= 0:
        raise ValueError(f"focal length must be positive, got {lens}")
    ycor = pixel_aspect_y / pixel_aspect_x
    if sensor_fit == "AUTO":
        fit = "HORIZONTAL" if pixel_aspect_x * width >= pixel_aspect_y * height else "VERTICAL"
        sensor = sensor_width
    elif sensor_fit in ("HORIZONTAL", "VERTICAL"):
        fit = sensor_fit
        sensor = sensor_width if sensor_fit == "HORIZONTAL" else sensor_height
    else:
        raise ValueError(f"unknown sensor fit {sensor_fit!r}")
    viewfac = float(width) if fit == "HORIZONTAL" else ycor * height
    fl_x = lens * viewfac / sensor
    fl_y = fl_x / ycor
    cx = width / 2.0 - shift_x * viewfac
    cy = height / 2.0 + shift_y * viewfac / ycor
    return Intrinsics(fl_x, fl_y, cx, cy, int(width), int(height))


def rigid(matrix: Sequence[Sequence[float]]) -> list[list[float]]:
    """A 4x4 camera-to-world matrix without scale: each rotation column normalised (a scaled
    camera object renders as an unscaled one)."""
    rows = [list(map(float, row)) for row in matrix]
    if len(rows) != 4 or any(len(row) != 4 for row in rows):
        raise ValueError("expected a 4x4 matrix")
    for column in range(3):
        norm = math.sqrt(sum(rows[r][column] ** 2 for r in range(3)))
        if norm <= 0 or not math.isfinite(norm):
            raise ValueError("the camera matrix has a zero or non-finite axis")
        for r in range(3):
            rows[r][column] /= norm
    rows[3] = [0.0, 0.0, 0.0, 1.0]
    return rows


def unique_name(name: str, taken: set[str] | None = None) -> str:
    """A file-system-safe (:func:`engine.protocol.safe_name`), unique (within ``taken``, which it
    updates; case-insensitive) version of ``name``."""
    base = safe_name(name, "camera")
    candidate, number = base, 1
    while taken is not None and candidate.lower() in taken:
        number += 1
        candidate = f"{base}_{number}"
    if taken is not None:
        taken.add(candidate.lower())
    return candidate


def write_transforms(folder: str | Path, frames: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> Path:
    """Write ``folder/transforms.json`` with per-frame intrinsics; returns its path.

    Each frame needs ``file_path`` (relative to ``folder``), ``transform_matrix`` (4x4
    camera-to-world, OpenGL) and the :class:`Intrinsics` fields.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    content = {"camera_model": "OPENGL", **(extra or {}), "frames": frames}
    path = folder / "transforms.json"
    path.write_text(json.dumps(content, indent=2))
    return path


def blender_camera_settings(intrinsics: Intrinsics, sensor_width: float = 36.0) -> dict[str, float | str]:
    """The inverse of :func:`camera_intrinsics` for square pixels: Blender camera data settings
    (``lens``, ``sensor_width``, ``sensor_fit``, ``shift_x``, ``shift_y``) that render
    ``intrinsics`` (``fl_y`` is taken equal to ``fl_x``)."""
    fit = "HORIZONTAL" if intrinsics.w >= intrinsics.h else "VERTICAL"
    viewfac = float(intrinsics.w if fit == "HORIZONTAL" else intrinsics.h)
    return {
        "lens": intrinsics.fl_x * sensor_width / viewfac, "sensor_width": sensor_width,
        "sensor_height": sensor_width, "sensor_fit": fit,
        "shift_x": (intrinsics.w / 2.0 - intrinsics.cx) / viewfac,
        "shift_y": (intrinsics.cy - intrinsics.h / 2.0) / viewfac,
    }
