"""Volume rendering of NeuS's field (and its table) along rays."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ...render.volume import composite_weights, neus_alpha
from ...utils.math import ray_box
from . import pbr
from .model import NeuSModel
from .options import NeuSOptions
from .sampling import SurfaceCache, march_cache


def render_rays(model: NeuSModel, cache: SurfaceCache, origins: torch.Tensor, directions: torch.Tensor, *,
                lo: torch.Tensor, hi: torch.Tensor, opts: NeuSOptions, anneal: float, training: bool,
                frozen_geometry: bool = False) -> dict[str, torch.Tensor]:
    """Volume-render rays ``[R, 3]`` (unit volume). Returns ``colour``/``albedo`` ``[R, 3]`` (the radiance
    head's, when the model has one), ``material [R, 8]`` (with ``material=pbr``: the
    :data:`.pbr.CHANNELS`, composited with weights that carry no gradient when a radiance head drives
    the surface), ``depth [R]`` (distance along the ray) and ``normal [R, 3]`` (the composited unit
    normals), all premultiplied by the opacity, no background; ``opacity [R]`` and ``eikonal`` (mean
    over the samples, scalar).

    Each ray gets ``samples`` samples in a band around where it first meets the cached surface (or
    the table). With a table, the object and the table are two surfaces: see :func:`table_alphas`;
    a ray that meets only the table (neither crossing nor grazing the object) gets one sample, where
    it meets the table top, which stops it (the plane's opacity is all there).

    With ``frozen_geometry`` the SDF and ``inv_s`` get no gradient (the colours-only warm-up of a
    mask-free fit): no backward through the field, about a third of a step.
    """
    near, far = ray_box(origins, directions, lo, hi)
    table = model.height if model.has_table else None
    centre, hit, deepest, bare = march_cache(cache, origins, directions, near, far, table=table)
    count = len(origins)
    head, material = model.colour is not None, model.material is not None
    colour = origins.new_zeros(count, 3)
    albedo = origins.new_zeros(count, 3)
    channels = origins.new_zeros(count, pbr.CHANNELS if material else 0)  # pbr: the material and normal, shaded later
    opacity = origins.new_zeros(count)
    depth = origins.new_zeros(count)
    normal = origins.new_zeros(count, 3)
    eikonal = origins.new_zeros(())

    def result() -> dict[str, torch.Tensor]:
        out = {"opacity": opacity, "depth": depth, "normal": normal, "eikonal": eikonal}
        out.update({"colour": colour, "albedo": albedo} if head else {})
        return {**out, "material": channels} if material else out

    if bool(bare.any()):
        t, table_albedo = model.table_colour(origins[bare], directions[bare], far[bare])  # [B], [B, 3]
        if material:
            channels[bare] = pbr.table_channels(table_albedo, model.table_up.expand_as(table_albedo))
        colour[bare], albedo[bare], opacity[bare], depth[bare] = table_albedo, table_albedo, 1.0, t
        normal[bare] = model.table_up
    hit = hit & ~bare
    if not bool(hit.any()):
        return result()
    o, d, c = origins[hit], directions[hit], centre[hit]  # [H, 3], [H, 3], [H]
    inv_s = model.log_inv_s.exp().detach() if frozen_geometry else model.log_inv_s.exp()
    half = max(opts.band * cache.cell, opts.band_sharp / float(inv_s.detach()))
    samples = opts.samples
    jitter = torch.rand(len(o), samples, device=o.device) if training else torch.full((len(o), samples), 0.5,
                                                                                     device=o.device)
    t = c[:, None] - half + 2 * half * (torch.arange(samples, device=o.device) + jitter) / samples  # [H, S]
    deltas = torch.full_like(t, 2 * half / samples)
    if table is not None:  # one more sample, where the ray meets the table top beyond the band
        end, rise = c + half, d @ model.table_up  # [H] each
        beyond = table(o + d * end[:, None]).detach().clamp_min(0) / (-rise).clamp_min(1e-6)
        t = torch.cat([t, torch.minimum(end + beyond, far[hit])[:, None]], 1)  # [H, S + 1]
    taken = t.shape[1]
    points = (o[:, None] + d[:, None] * t[..., None]).reshape(-1, 3)  # [H*T, 3]
    views = d[:, None].expand(-1, taken, -1).reshape(-1, 3)
    sdf, features, gradient = model.sdf.with_gradient(points, create_graph=training and not frozen_geometry)
    if frozen_geometry:
        sdf, features, gradient = sdf.detach(), features.detach(), gradient.detach()
    slope = (gradient * views).sum(-1)  # [H*T]
    normals = F.normalize(gradient, dim=-1)
    if table is None:
        alpha = neus_alpha(sdf.view(-1, taken), slope.view(-1, taken), deltas, inv_s, anneal=anneal,
                           deepest=deepest[hit])  # [H, S]
    else:
        lowest = table(o + d * far[hit][:, None])  # [H] the table's height where the ray leaves the box
        alpha, table_share = table_alphas(model, sdf.view(-1, taken), slope.view(-1, taken), points.view(-1, taken, 3),
                                          rise=rise, lowest=lowest, deltas=deltas, inv_s=inv_s, anneal=anneal,
                                          deepest=deepest[hit])
        normals = F.normalize(normals + table_share.reshape(-1, 1) * (model.table_up - normals), dim=-1)
    weights = composite_weights(alpha)  # [H, T]
    # The table is diffuse: its share of a sample's colour is its albedo alone.
    table_albedo = None if table is None else model.table_colour(o, d, far[hit])[1][:, None].expand(
        -1, taken, -1).reshape(-1, 3)
    share = None if table is None else table_share.reshape(-1, 1)
    if head:
        sample_colour, sample_albedo = model.colour(points, features, normals, views)
        if table is not None:
            sample_colour = sample_colour + share * (table_albedo - sample_colour)
            sample_albedo = sample_albedo + share * (table_albedo - sample_albedo)
        colour[hit] = (weights[..., None] * sample_colour.view(-1, taken, 3)).sum(1)
        albedo[hit] = (weights.detach()[..., None] * sample_albedo.view(-1, taken, 3)).sum(1)
    if material:
        sample_material = pbr.sample_channels(model, points, normals)
        if table is not None:
            sample_material = sample_material + share * (pbr.table_channels(table_albedo, normals) - sample_material)
        shading_weights = weights.detach() if head else weights  # the radiance head alone moves the surface
        channels[hit] = (shading_weights[..., None] * sample_material.view(-1, taken, pbr.CHANNELS)).sum(1)
    opacity[hit] = weights.sum(1)
    depth[hit] = (weights * t).sum(1)
    normal[hit] = (weights[..., None] * normals.view(-1, taken, 3)).sum(1)
    eikonal = ((gradient.norm(dim=-1) - 1.0) ** 2).mean()
    return result()


def table_alphas(model: NeuSModel, sdf: torch.Tensor, slope: torch.Tensor, points: torch.Tensor, *,
                 rise: torch.Tensor, lowest: torch.Tensor, deltas: torch.Tensor, inv_s: torch.Tensor, anneal: float,
                 deepest: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Opacity ``[H, S + 1]`` of the object on its table, and the table's share of it (``[H, S + 1]``,
    no gradient) for the normals, from the field's ``sdf``/``slope`` at ``points [H, S + 1, 3]`` (the
    ``S`` samples of the band, then one where the ray meets the table top beyond it), the rays'
    ``rise [H]`` (direction . up) and the table's height where they leave the box (``lowest [H]``).

    Two surfaces, each with its own NeuS opacity; a section lets light through only where both do
    (``1 - alpha = (1 - alpha_object)(1 - alpha_table)``). The object is the field cut by the table
    top (``max(sdf, -height)``), seen only in the band. The table's opacity is exact for a plane:
    in the band from its heights (extended back to free space), and the rest of it, from the
    band's end down to ``lowest``, in the extra sample. Neither surface hides the other's gradient:
    a union by ``min`` would give the field none just above the table, where the automatic masks
    lose the feet and the fit must grow them back.
    """
    band = deltas.shape[1]
    height, rise = model.height(points), rise[:, None].expand_as(sdf)  # [H, S + 1] each
    below = -height > sdf
    object_alpha = neus_alpha(torch.where(below, -height, sdf)[:, :band], torch.where(below, -rise, slope)[:, :band],
                              deltas, inv_s, anneal=anneal, deepest=deepest)  # [H, S]
    in_band = neus_alpha(height[:, :band], rise[:, :band], deltas, inv_s, anneal=anneal,
                         deepest=torch.full_like(deepest, math.inf))  # [H, S]
    end = height[:, band - 1] + rise[:, 0] * deltas[:, -1] / 2  # [H] height at the band's end
    lowest = torch.minimum(end, lowest)
    opaque_end = torch.sigmoid(end * inv_s)
    rest = ((opaque_end - torch.sigmoid(lowest * inv_s)) / (opaque_end + 1e-5)).clamp(0.0, 1.0)  # [H]
    table_alpha = torch.cat([in_band, rest[:, None]], 1)
    object_alpha = torch.cat([object_alpha, torch.zeros_like(rest)[:, None]], 1)
    share = (table_alpha / (object_alpha + table_alpha).clamp_min(1e-6)).detach()
    return 1 - (1 - object_alpha) * (1 - table_alpha), share
