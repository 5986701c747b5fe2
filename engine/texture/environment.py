"""The estimated light as an equirectangular HDR image: Blender's world mapping and a Radiance writer.

Mapping (Blender's *Environment Texture* node with its default vector, the world direction, checked
with Cycles): image column ``u`` in [0, 1] from the left, row ``v`` in [0, 1] from the *top*;

* azimuth ``phi = (0.5 - u) * 2 pi`` around +Z, from +X towards +Y (so the image centre faces +X,
  ``u = 0.25`` faces +Y);
* elevation ``(0.5 - v) * pi`` above the XY plane (the top row is +Z).

Directions are in the dataset's world frame (Blender's Z-up world for the shared datasets), so the
image lights the result where it stands when set as the world in Blender.

The file format is Radiance RGBE (``.hdr``): a text header, then the pixels as flat (not
run-length encoded) RGBE quadruples, top row first. Readers (Blender, OpenImageIO, imageio) accept
flat scanlines.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

HEADER = b"#?RADIANCE\n# Meshlift estimated environment\nFORMAT=32-bit_rle_rgbe\n\n"


def equirect_directions(width: int, height: int) -> np.ndarray:
    """Unit world directions ``[height, width, 3]`` of the pixel centres of an equirectangular image
    (row 0 at the top), in Blender's mapping (see the module docstring)."""
    u = (np.arange(width) + 0.5) / width
    v = (np.arange(height) + 0.5) / height
    azimuth = (0.5 - u)[None, :] * 2.0 * np.pi  # [1, W]
    elevation = (0.5 - v)[:, None] * np.pi  # [H, 1]
    return np.stack(np.broadcast_arrays(np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth),
                                        np.sin(elevation)), axis=-1).astype(np.float32)


def direction_to_equirect(directions: np.ndarray) -> np.ndarray:
    """``[..., 2]`` image coordinates ``(u, v)`` in [0, 1] (``v`` from the top) of world directions
    ``[..., 3]`` (need not be unit): the inverse of :func:`equirect_directions`."""
    d = np.asarray(directions, dtype=np.float64)
    azimuth = np.arctan2(d[..., 1], d[..., 0])
    elevation = np.arctan2(d[..., 2], np.hypot(d[..., 0], d[..., 1]))
    return np.stack([(0.5 - azimuth / (2.0 * np.pi)) % 1.0, 0.5 - elevation / np.pi], axis=-1)


def environment_image(radiance: Callable[[np.ndarray], np.ndarray], width: int = 512) -> np.ndarray:
    """The light ``radiance`` (world directions ``[P, 3]`` -> linear RGB radiance ``[P, 3]``, the
    light arriving from each direction) sampled at the pixel centres of a ``width x width / 2``
    equirectangular image; ``[width / 2, width, 3]`` float32, row 0 at the top."""
    height = max(1, width // 2)
    directions = equirect_directions(width, height).reshape(-1, 3)
    values = np.asarray(radiance(directions), dtype=np.float32).reshape(height, width, 3)
    return np.clip(np.nan_to_num(values, nan=0.0, posinf=0.0), 0.0, None)


def write_hdr(path: str | Path, image: np.ndarray) -> Path:
    """Write a linear RGB image ``[H, W, 3]`` (row 0 at the top, values >= 0) as a Radiance ``.hdr``."""
    image = np.clip(np.asarray(image, dtype=np.float64), 0.0, None)
    height, width = image.shape[:2]
    peak = image.max(axis=-1)  # [H, W]
    mantissa, exponent = np.frexp(peak)  # peak = mantissa * 2 ** exponent, mantissa in [0.5, 1)
    scale = np.where(peak > 1e-32, mantissa * 256.0 / np.where(peak > 1e-32, peak, 1.0), 0.0)
    rgbe = np.zeros((height, width, 4), dtype=np.uint8)
    rgbe[..., :3] = np.clip(image * scale[..., None], 0, 255).astype(np.uint8)
    rgbe[..., 3] = np.where(peak > 1e-32, np.clip(exponent + 128, 0, 255), 0).astype(np.uint8)
    path = Path(path)
    path.write_bytes(HEADER + f"-Y {height} +X {width}\n".encode() + rgbe.tobytes())
    return path


def read_hdr(path: str | Path) -> np.ndarray:
    """Read a Radiance ``.hdr`` written by :func:`write_hdr` (flat scanlines, ``-Y H +X W``); returns
    linear RGB ``[H, W, 3]`` float32, row 0 at the top."""
    data = Path(path).read_bytes()
    end = data.index(b"\n\n") + 2
    line_end = data.index(b"\n", end)
    axes = data[end:line_end].split()
    if not data.startswith(b"#?") or len(axes) != 4 or axes[0] != b"-Y" or axes[2] != b"+X":
        raise ValueError(f"{path} is not a flat -Y H +X W Radiance HDR file")
    height, width = int(axes[1]), int(axes[3])
    rgbe = np.frombuffer(data, dtype=np.uint8, offset=line_end + 1).reshape(height, width, 4)
    scale = np.where(rgbe[..., 3] > 0, np.ldexp(1.0, rgbe[..., 3].astype(np.int64) - 136), 0.0)
    return (rgbe[..., :3] * scale[..., None]).astype(np.float32)


def add_sun(image: np.ndarray, direction: np.ndarray, irradiance: np.ndarray, angle_deg: float, *,
            samples: int = 4096, seed: int = 0) -> np.ndarray:
    """``image`` (an equirectangular ``[H, W, 3]`` radiance map, row 0 at the top) plus a sun: a
    uniform disc of angular diameter ``angle_deg`` around the unit ``direction`` (towards the sun)
    whose integral over the sphere is ``irradiance`` (linear RGB ``[3]``, W/m^2 facing it).

    The disc's energy is spread over the pixels it covers by ``samples`` directions drawn uniformly
    in it, each pixel's share divided by its solid angle, so the total irradiance is kept however
    small the disc is against a pixel.
    """
    height, width = image.shape[:2]
    direction = np.asarray(direction, dtype=np.float64)
    direction = direction / np.linalg.norm(direction)
    rng = np.random.default_rng(seed)
    cos_max = np.cos(np.radians(max(angle_deg, 1e-3)) / 2.0)
    cos_theta = 1.0 - rng.random(samples) * (1.0 - cos_max)  # uniform in the cone's solid angle
    phi = rng.random(samples) * 2.0 * np.pi
    sin_theta = np.sqrt(1.0 - cos_theta**2)
    helper = np.array([1.0, 0.0, 0.0]) if abs(direction[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    tangent = np.cross(direction, helper)
    tangent /= np.linalg.norm(tangent)
    bitangent = np.cross(direction, tangent)
    dirs = (sin_theta * np.cos(phi))[:, None] * tangent + (sin_theta * np.sin(phi))[:, None] * bitangent \
        + cos_theta[:, None] * direction
    uv = direction_to_equirect(dirs)
    column = np.minimum((uv[:, 0] * width).astype(np.int64), width - 1)
    row = np.minimum((uv[:, 1] * height).astype(np.int64), height - 1)
    counts = np.zeros((height, width))
    np.add.at(counts, (row, column), 1.0)
    elevation = (0.5 - (np.arange(height) + 0.5) / height) * np.pi  # [H] pixel-centre elevation
    solid_angle = (2.0 * np.pi / width) * (np.pi / height) * np.cos(elevation)  # [H] steradians per pixel
    share = counts / samples / solid_angle[:, None]  # [H, W] 1/sr
    return image + share[..., None].astype(np.float32) * np.asarray(irradiance, dtype=np.float32)
