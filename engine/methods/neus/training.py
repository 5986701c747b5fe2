"""NeuS's optimization: the step, its named losses and schedules."""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn.functional as F

from ...fields import HashGrid
from ...losses import LossLog, descend, weighted_sum
from ..base import MethodInput
from .model import NeuSModel
from .options import NeuSOptions
from .rendering import render_rays
from .sampling import SurfaceCache, sample_pixels

STAGE = "optimizing the SDF"


def loss_weights(opts: NeuSOptions) -> dict[str, float]:
    """The weight of each named loss term of a step (see :func:`train`)."""
    return {"colour": 1.0, "albedo": opts.albedo_weight, "eikonal": opts.eikonal_weight, "mask": opts.mask_weight,
            "appearance": opts.appearance_weight}


def train(model: NeuSModel, cache: SurfaceCache, data: MethodInput, generator: torch.Generator
          ) -> tuple[dict[str, Any], dict[str, float]]:
    """The main optimization; returns statistics and the named losses (mean of the last steps) for
    the report.

    Each step draws ``rays`` random pixels, renders them and sums the named terms:

    * ``colour``: L1 of the rendered colour (over the background) against the image;
    * ``albedo``: the same with the albedo alone (no view-dependent residual), so that the albedo
      explains the images by itself and can be baked into the texture;
    * ``eikonal``: ``(|grad SDF| - 1)^2`` on the samples and on as many uniform points of the box
      (not during a mask-free colours-only warm-up);
    * ``mask``: BCE of the opacity against the mask (with masks only);
    * ``appearance``: without masks, the penalty on each image's own affine colour (:mod:`.appearance`),
      through which the rendering is compared with that image.

    Learning rates ramp up over ``lr_warmup`` steps and decay exponentially to ``lr_final_factor``;
    encoding levels switch on coarse to fine; the cached SDF is refreshed every ``update_every``.
    """
    opts, split, progress = data.options, data.split, data.progress
    lo, hi = cache.lo, cache.hi
    iterations = opts.iterations
    weights = loss_weights(opts)
    log = LossLog(iterations)
    grids = [module.tables for module in model.modules() if isinstance(module, HashGrid)]
    networks = [p for p in model.parameters() if all(p is not q for q in [*grids, model.log_inv_s])]
    groups = [{"params": grids, "lr": opts.lr}, {"params": networks, "lr": opts.lr_mlp},
              {"params": [model.log_inv_s], "lr": opts.lr_inv_s}]
    optimizer = torch.optim.Adam(groups, eps=1e-15, fused=True)  # mask-free step 0.166 -> 0.154 s (2 threads)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    levels = model.sdf.levels
    start_levels = opts.start_levels
    per_level = max(1, int(iterations * opts.coarse_to_fine) // max(1, levels - start_levels))
    anneal_steps = max(1, int(iterations * opts.anneal))
    # Only a mask-free fit from the located object's hull waits for the colours; the blind sphere has far to go.
    frozen_steps = int(iterations * opts.geometry_warmup) if split.masks is None and data.hints is not None else 0
    rays_seen, started = 0, time.perf_counter()
    for step in range(iterations):
        frozen = step < frozen_steps  # the colours learn first; the surface and its sharpness wait
        progress.update(STAGE, step, iterations, log.latest() if progress.wants_update() else None)
        model.sdf.set_active_levels(start_levels + step // per_level)
        decay = opts.lr_final_factor ** (step / iterations) * min(1.0, (step + 1) / opts.lr_warmup)
        for group, base in zip(optimizer.param_groups, base_lrs, strict=True):
            group["lr"] = base * decay
        origins, directions, target, mask, view = sample_pixels(split, opts.rays, generator)
        out = render_rays(model, cache, origins, directions, lo=lo, hi=hi, opts=opts,
                          anneal=min(1.0, step / anneal_steps), training=True, frozen_geometry=frozen)
        if mask is None:
            background = model.background(directions)
        else:
            background = torch.rand(len(origins), 3, generator=generator).to(origins.device)
            target = target * mask[:, None] + background * (1 - mask[:, None])
        if model.appearance is not None:  # as each photo's own exposure and white balance show it
            out, background = model.appearance(view, out, background)
        clear = 1.0 - out["opacity"][:, None]
        losses = {"colour": (out["colour"] + clear * background - target).abs().mean(),
                  "albedo": (out["albedo"] + clear.detach() * background.detach() - target).abs().mean()}
        if not frozen:
            free = lo + torch.rand(len(origins), 3, generator=generator).to(lo.device) * (hi - lo)  # [R, 3]
            free_gradient = model.sdf.with_gradient(free)[2]
            losses["eikonal"] = out["eikonal"] + ((free_gradient.norm(dim=-1) - 1.0) ** 2).mean()
        if model.appearance is not None:
            losses["appearance"] = model.appearance.penalty()
        if mask is not None:
            losses["mask"] = F.binary_cross_entropy(out["opacity"].clamp(1e-4, 1 - 1e-4), mask)
        log.add(step, losses)
        descend(weighted_sum(losses, weights), optimizer)  # Adam leaves the parameters without a gradient as they are
        rays_seen += len(origins)
        if (step + 1) % opts.update_every == 0:
            cache.update(model.sdf)
    seconds = time.perf_counter() - started
    progress.update(STAGE, iterations, iterations, log.latest())
    model.sdf.set_active_levels(levels)
    cache.update(model.sdf)
    table = {"table_offset": round(float(model.table_offset.detach()), 5)} if model.has_table else {}
    stats = {**table, "iterations": iterations, "rays": rays_seen,
             "inv_s": round(float(model.log_inv_s.detach().exp()), 2),
             "seconds_per_iteration": round(seconds / max(1, iterations), 4),
             "rays_per_second": round(rays_seen / max(seconds, 1e-9), 1)}
    return stats, log.summary()
