"""Visual hull: carve a grid with the silhouettes, extract the surface, smooth it lightly.

It is the fastest method, needs masks, cannot see concavities, and is the starting shape of the
learned methods.
"""

from __future__ import annotations

import numpy as np
import torch
import trimesh

from ..carving import mask_occupancy
from ..errors import InputError
from ..geometry.grid_surface import extract_surface
from ..roi import grid_points
from .base import Method, MethodInput, MethodOutput


def carve_volume(data: MethodInput, resolution: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Soft occupancy on a grid over the region of interest, in the unit volume.

    Returns ``occupancy [X, Y, Z]`` (values in [0, 1], surface at 0.5), the unit-volume position of
    the centre of cell ``[0, 0, 0]`` (``[3]``) and the cell size (unit-volume units).
    """
    lo = torch.tensor(data.normalization.box_min, device=data.device)
    hi = torch.tensor(data.normalization.box_max, device=data.device)
    points, shape = grid_points(lo, hi, resolution)
    cell = float((hi - lo).max()) / resolution
    occupancy = mask_occupancy(points, data.split, data.progress.stage("carving"))
    return occupancy.reshape(shape), points[0], cell


def run_hull(data: MethodInput) -> MethodOutput:
    """The ``hull`` method: options ``resolution`` (cells on the longest side) and ``smoothing``
    (Taubin iterations)."""
    resolution = int(data.options["resolution"])
    occupancy, origin, cell = carve_volume(data, resolution)
    data.progress.update("surface", 0, 1)
    volume = occupancy.cpu().numpy()
    if volume.max() <= 0.5:
        raise InputError("The visual hull is empty: the masks do not overlap in space")
    mesh = extract_surface(volume, origin.cpu().numpy(), cell)
    if data.options["smoothing"] > 0:
        trimesh.smoothing.filter_taubin(mesh, lamb=0.5, nu=0.53, iterations=int(data.options["smoothing"]))
    data.progress.update("surface", 1, 1)
    return MethodOutput(
        mesh.vertices.astype(np.float32), mesh.faces.astype(np.int32),
        {"grid": list(occupancy.shape), "cell_size_unit": cell},
    )


HULL = Method(
    name="hull",
    title="Visual Hull",
    description="Carves space with the object masks: seconds, needs masks, misses concavities.",
    needs_masks=True,
    presets={
        "fast": {"resolution": 128, "smoothing": 5, "faces": 10_000, "texture_size": 512},
        "balanced": {"resolution": 192, "smoothing": 5, "faces": 20_000, "texture_size": 1024},
        "quality": {"resolution": 256, "smoothing": 5, "faces": 40_000, "texture_size": 2048},
    },
    run=run_hull,
)
