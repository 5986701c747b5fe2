"""NeuS's optimization: the step, its named losses and schedules."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ...cameras import Cameras
from ...fields import HashGrid
from ...free_space.losses import free_space_loss, sparse_depth_loss
from ...free_space.points import SIGHT_MARGIN, SightLines, SparsePoints
from ...losses import LossLog, depth_normal_losses, descend, weighted_sum, without_off_maps
from ...shading.options import pbr_weights
from ..base import MethodInput
from .extraction import cached_surface
from .model import NeuSModel
from .options import NeuSOptions
from .pbr import pbr_losses
from .rendering import render_rays
from .sampling import SurfaceCache, sample_pixels

STAGE = "optimizing the SDF"


@dataclass
class Evidence:
    """What the images say is empty, for the free-space terms (unit volume).

    Attributes:
        lines: the lines of sight of the triangulated points' observations (``None`` without points).
    """

    lines: SightLines | None

    @staticmethod
    def of(sparse: SparsePoints | None, cameras: Cameras) -> Evidence:
        """The evidence of the points ``sparse`` seen by ``cameras``."""
        return Evidence(None if sparse is None or len(sparse.views) == 0 else sparse.sight_lines(cameras))


def loss_weights(opts: NeuSOptions) -> dict[str, float]:
    """The weight of each named loss term of a step (see :func:`train`)."""
    return {"colour": 1.0, "albedo": opts.albedo_weight, "shaded": 1.0, "eikonal": opts.eikonal_weight,
            "mask": opts.mask_weight, "depth": opts.depth_weight, "normal": opts.normal_weight,
            "free_space": opts.free_space_weight, "sparse_depth": opts.sparse_depth_weight,
            "appearance": opts.appearance_weight, **pbr_weights(opts)}


def train(model: NeuSModel, cache: SurfaceCache, data: MethodInput, generator: torch.Generator,
          evidence: Evidence | None = None) -> tuple[dict[str, Any], dict[str, float]]:
    """The main optimization; returns statistics and the named losses (mean of the last steps) for
    the report.

    Each step draws ``rays`` random pixels, renders them and sums the named terms:

    * ``colour``: L1 of the rendered colour (over the background) against the image;
    * ``albedo``: the same with the albedo alone (no view-dependent residual), so that the albedo
      explains the images by itself and can be baked into the texture;
    * ``shaded`` and the material's priors (``material=pbr``, :func:`.pbr.pbr_losses`): the material
      shaded under the learned light against the image. With ``radiance_guide`` (the default) the two
      terms above still shape the surface and this one trains only the material and the light;
    * ``eikonal``: ``(|grad SDF| - 1)^2`` on the samples and on as many uniform points of the box
      (not during a mask-free colours-only warm-up);
    * ``mask``: BCE of the opacity against the mask (with masks only);
    * ``depth`` and ``normal``: L1 of the rendered depth along the ray against the depth map's times
      the rendered opacity (``|sum w (t - target)|``: it moves the weights towards the target, never
      the surface away to make up for a missing opacity) and ``1 - cos`` of the rendered normal
      against the normal map (only with such maps and a weight above 0;
      :func:`engine.losses.depth_normal_losses`; not during the colours-only warm-up);
    * ``free_space``: ``relu(-sdf)`` in cache cells at ``free_space_points`` random points of the
      lines of sight (:func:`engine.free_space.losses.free_space_loss`): the field may cross zero
      anywhere, and this term makes it positive where they cross the hull;
    * ``sparse_depth``: the L1, in cache cells, between the depth rendered along ``sparse_depth_rays``
      lines of sight of ``evidence.sparse`` and the distance to their points (rays that come out
      opaque only);
    * ``appearance``: without masks, the penalty on each image's own affine colour (:mod:`.appearance`),
      through which the rendering is compared with that image.

    The geometric terms wait while the geometry does (a mask-free warm-up); a term whose weight is 0
    is not computed.

    Learning rates ramp up over ``lr_warmup`` steps and decay exponentially to ``lr_final_factor``;
    encoding levels switch on coarse to fine; the cached SDF is refreshed every ``update_every``.
    """
    opts, progress = data.options, data.progress
    split = without_off_maps(data.split, opts.depth_weight, opts.normal_weight)
    lo, hi = cache.lo, cache.hi
    iterations = opts.iterations
    weights = loss_weights(opts)
    log = LossLog(iterations)
    grids = [module.tables for module in model.modules() if isinstance(module, HashGrid)]
    light = [] if model.material is None else model.material.light_parameters()
    networks = [p for p in model.parameters() if all(p is not q for q in [*grids, *light, model.log_inv_s])]
    groups = [{"params": grids, "lr": opts.lr}, {"params": networks, "lr": opts.lr_mlp},
              {"params": [model.log_inv_s], "lr": opts.lr_inv_s}, {"params": light, "lr": opts.lr_light}]
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
        pixels = sample_pixels(split, opts.rays, generator)
        origins, directions, target, mask = pixels.origins, pixels.directions, pixels.colours, pixels.masks
        out = render_rays(model, cache, origins, directions, lo=lo, hi=hi, opts=opts,
                          anneal=min(1.0, step / anneal_steps), training=True, frozen_geometry=frozen)
        if mask is None:
            background = model.background(directions)
        else:
            background = torch.rand(len(origins), 3, generator=generator).to(origins.device)
            target = target * mask[:, None] + background * (1 - mask[:, None])
        if model.appearance is not None:  # as each photo's own exposure and white balance show it
            out, background = model.appearance(pixels.views, out, background)
        clear = 1.0 - out["opacity"][:, None]
        losses = {}
        if model.colour is not None:
            losses = {"colour": (out["colour"] + clear * background - target).abs().mean(),
                      "albedo": (out["albedo"] + clear.detach() * background.detach() - target).abs().mean()}
        if model.material is not None:
            losses.update(pbr_losses(model, cache, out, origins, directions, target=target, background=background,
                                     opts=opts))
        if not frozen:
            free = lo + torch.rand(len(origins), 3, generator=generator).to(lo.device) * (hi - lo)  # [R, 3]
            free_gradient = model.sdf.with_gradient(free)[2]
            losses["eikonal"] = out["eikonal"] + ((free_gradient.norm(dim=-1) - 1.0) ** 2).mean()
        if model.appearance is not None:
            losses["appearance"] = model.appearance.penalty()
        if mask is not None:
            losses["mask"] = F.binary_cross_entropy(out["opacity"].clamp(1e-4, 1 - 1e-4), mask)
        if not frozen:  # the rendered depth is premultiplied: so is its target (an opacity short of 1 moves no surface)
            target_depth = None if pixels.depths is None else pixels.depths * out["opacity"]
            losses.update(depth_normal_losses(out["depth"], target_depth, out["normal"], pixels.normals))
        if not frozen and evidence is not None:
            losses.update(evidence_losses(model, cache, evidence, opts, generator,
                                          anneal=min(1.0, step / anneal_steps)))
        log.add(step, losses)
        descend(weighted_sum(losses, weights), optimizer)  # Adam leaves the parameters without a gradient as they are
        rays_seen += len(origins)
        if (step + 1) % opts.update_every == 0:
            cache.update(model.sdf)
        if data.preview_due():
            data.send_preview(step, *cached_surface(model, cache))
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


def evidence_losses(model: NeuSModel, cache: SurfaceCache, evidence: Evidence, opts: NeuSOptions,
                    generator: torch.Generator, *, anneal: float) -> dict[str, torch.Tensor]:
    """The ``free_space`` and ``sparse_depth`` terms of a step (see :func:`train`), those with a weight."""
    losses = {}
    lines = evidence.lines
    if lines is None:
        return losses
    if opts.free_space_weight > 0:
        empty = lines.sample(opts.free_space_points, cache.lo, cache.hi, SIGHT_MARGIN, generator)
        losses["free_space"] = free_space_loss(model.sdf(empty)[0], cache.cell)
    if opts.sparse_depth_weight > 0:
        pick = torch.randint(len(lines), (opts.sparse_depth_rays,), generator=generator).to(lines.origins.device)
        origins, directions, distances = lines.origins[pick], lines.directions[pick], lines.distances[pick]
        out = render_rays(model, cache, origins, directions, lo=cache.lo, hi=cache.hi, opts=opts, anneal=anneal,
                          training=True)
        depth = out["depth"] / out["opacity"].clamp_min(1e-6)
        losses["sparse_depth"] = sparse_depth_loss(depth, distances, out["opacity"] > 0.5, cache.cell)
    return losses
