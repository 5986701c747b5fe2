"""NeuS's start: the SDF the field begins from, and the fit of the field to it."""

from __future__ import annotations

import torch

from ...data.dataset import DatasetSplit
from ...errors import InputError
from ...free_space import CarvedStart, FreeSpace, carved_start, find_free_space
from ..base import MethodInput
from .model import NeuSModel
from .sampling import SurfaceCache


def initial_sdf(data: MethodInput, cache: SurfaceCache, resolution: int
                ) -> tuple[torch.Tensor, FreeSpace | None, CarvedStart | None]:
    """The SDF the field starts from, at the cache's nodes, the free-space evidence and the carved
    start it came from (``None`` for the sphere).

    With masks: the visual hull's signed distance; without masks, the hull of the automatic masks of
    ``data.hints`` (the table is a surface of its own then, see :class:`NeuSModel`); either opened
    where the images show empty space (:func:`engine.free_space.carved_start`). Without masks nor
    hints: a sphere of radius ``sphere_radius`` around the centre of the region of interest, no
    evidence.
    """
    lo, hi = cache.lo, cache.hi
    split, hints, opts = data.split, data.hints, data.options
    if split.masks is None and hints is None:
        centre = (torch.tensor(data.normalization.box_min) + torch.tensor(data.normalization.box_max)) / 2
        sphere = (cache.nodes - centre.to(cache.nodes.device)).norm(dim=-1) - opts.sphere_radius
        return sphere, None, None
    masked = split if split.masks is not None else DatasetSplit(split.images, hints.masks, split.cameras, split.names)
    free = find_free_space(split, masked, lo=lo, hi=hi, opts=opts, progress=data.progress)
    start = carved_start(free, masked, lo=lo, hi=hi, resolution=resolution, opts=opts, progress=data.progress)
    if float(start.hull_sdf.min()) >= 0:
        raise InputError("The visual hull is empty: the masks do not overlap in space")
    return start.sdf, free, start


def fit_to_cache(model: NeuSModel, cache: SurfaceCache, data: MethodInput, generator: torch.Generator) -> None:
    """Fit the SDF field to ``cache``: ``init_iterations`` Adam steps (``init_lr``) of the L1 on
    ``init_points`` random points per step, half of them within 3 cache cells of the surface."""
    steps, size = data.options.init_iterations, data.options.init_points
    optimizer = torch.optim.Adam(model.sdf.parameters(), lr=data.options.init_lr)
    lo, extent = cache.lo, cache.extent
    nodes = cache.nodes.reshape(-1, 3)
    near_surface = nodes[cache.values.reshape(-1).abs() < 3 * cache.cell]
    for step in range(steps):
        data.progress.update("initializing the SDF", step, steps)
        uniform = lo + torch.rand(size // 2, 3, generator=generator).to(lo.device) * extent
        pick = torch.randint(len(near_surface), (size - size // 2,), generator=generator).to(lo.device)
        jitter = (torch.rand(len(pick), 3, generator=generator).to(lo.device) - 0.5) * 2 * cache.cell
        points = torch.cat([uniform, near_surface[pick] + jitter])
        loss = (model.sdf(points)[0] - cache.lookup(points)).abs().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    data.progress.update("initializing the SDF", steps, steps)
