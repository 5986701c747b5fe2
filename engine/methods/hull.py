"""Visual hull: carve a grid with the silhouettes, extract the surface, smooth it lightly.

It is the fastest method, needs masks, cannot see concavities, and is the starting shape of the
learned methods.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..carving import hull_mesh
from ..errors import InputError
from ..geometry.cleanup import taubin_smooth
from ..options import MeshOptions, check_presets, option
from .base import Method, MethodInput, MethodOutput


@dataclass(frozen=True)
class HullOptions(MeshOptions):
    """Options of the ``hull`` method."""

    resolution: int = option(192, "Carving grid cells on the longest side of the region of interest.",
                             unit="cells", min=8, max=1024)
    smoothing: int = option(5, "Taubin smoothing iterations of the carved surface (volume-preserving).",
                            unit="iterations", min=0, max=100)


def run_hull(data: MethodInput) -> MethodOutput:
    """The ``hull`` method (options: :class:`HullOptions`)."""
    opts: HullOptions = data.options
    lo = torch.tensor(data.normalization.box_min, device=data.device)
    hi = torch.tensor(data.normalization.box_max, device=data.device)
    carved = hull_mesh(data.split, lo, hi, opts.resolution, data.progress.stage("carving"))
    data.progress.update("surface", 0, 1)
    if carved is None:
        raise InputError("The visual hull is empty: the masks do not overlap in space")
    mesh, grid, cell = carved
    taubin_smooth(mesh, opts.smoothing)
    data.progress.update("surface", 1, 1)
    return MethodOutput(mesh.vertices.astype(np.float32), mesh.faces.astype(np.int32),
                        {"grid": grid, "cell_size_unit": cell})


HULL = Method(
    name="hull",
    title="Visual Hull",
    description="Carves space with the object masks: seconds, needs masks, misses concavities.",
    needs_masks=True,
    options=HullOptions,
    presets=check_presets({
        "fast": HullOptions(resolution=128, faces=10_000, texture_size=512),
        "balanced": HullOptions(),
        "quality": HullOptions(resolution=256, faces=40_000, texture_size=2048),
    }, "hull"),
    run=run_hull,
)
