"""NeuS: a neural SDF optimized by volume rendering, fast enough for a CPU.

The technique of NeuS (Wang et al. 2021) with the speed-ups of instant-nsr-pl and NeuS2 (a
multi-resolution grid encoding, empty-space skipping), reimplemented in our own pure-torch code.
The package is split by role:

1. **Model** (:mod:`.model`): :class:`~engine.fields.sdf.SDFField` (hash grid + small SiLU MLP) for
   geometry, a separate :class:`~engine.fields.AlbedoField` for the view-independent surface
   colour (what gets baked into the texture) plus a small residual conditioned on the normal, view
   direction and geometry features (:class:`~engine.fields.sdf.ColourHead`); a direction-only
   background field without masks; the learned ``inv_s``; and, when the object was located on its
   table, the table as a plane of its own whose height is learned. A separate appearance grid keeps
   texture detail from roughening the geometry. With ``material=pbr`` a PBR material field and a
   light are learned besides (:mod:`.pbr`); the radiance head stays and alone shapes the surface
   (``radiance_guide``), so the geometry is baked's and the shaded term trains the material and light.
2. **Start** (:mod:`.initialization`): with masks the SDF is first fitted (a few hundred cheap steps,
   no rendering) to the signed distance of the visual hull; without masks, to the hull of the
   automatic masks of ``MethodInput.hints`` (:mod:`engine.sfm.object_hints`), or, when the object
   could not be located, to a sphere in the region of interest (the field then learns the table
   too). Encoding levels are switched on coarse to fine. The hull is first opened where the images
   show empty space (:mod:`engine.free_space`: lines of sight to points triangulated across the
   views, optionally photo carving), so a hollow that every silhouette covers (a bowl, a cup)
   starts open. What lets the topology open: the SDF is a free field over the whole region of
   interest, not a shell around the hull (nothing keeps it negative inside the hull, it may cross
   zero anywhere), the fitted start already has the hollow, and the ``free_space`` loss keeps it
   positive wherever a line of sight crosses (:mod:`.training`) when the carve opened a hollow
   (``hollow_free_space_weight``; elsewhere the lines that graze the surface only dent it: spot's
   Chamfer-L1 0.0032 with the term, 0.0029 without).
3. **Sampling** (:mod:`.sampling`): the SDF is cached on a coarse lattice over the region of interest
   (the "occupancy grid", refreshed from the network every ``update_every`` steps). Each ray
   marches the cache (no network) to its first zero crossing and puts all its network samples in
   a band around it; rays that meet no surface cost nothing. Rays are drawn at random across all
   views.
4. **Rendering** (:mod:`.rendering`): NeuS alpha with learned ``inv_s`` and cosine annealing
   (:mod:`engine.render.volume`); with a table, two surfaces composited (:func:`.rendering.table_alphas`).
5. **Training** (:mod:`.training`): the step and its named losses (colour L1, albedo L1, eikonal, mask
   BCE when masks exist, ``free_space`` and ``sparse_depth`` from the triangulated points), reported
   with the progress events and in ``report.json``. With masks
   every ray gets a random background colour (so opacity must match the mask); without masks the
   background field explains what lies outside the region of interest, and the first
   ``geometry_warmup`` share of the steps trains only the colours.
6. **Extraction** (:mod:`.extraction`): marching cubes (scikit-image) of the SDF over the region of
   interest at ``mesh_resolution`` (the network is evaluated only near the cached surface), small
   pieces dropped. With a table the field is cut at the table top and closed there. Without masks
   or a located table, the support the object stands on (the dominant plane that spans the region
   of interest, found by RANSAC) is cut away first, keeping the side the cameras are on.

All geometry lives in the unit volume (see :mod:`engine.roi`). The options and their defaults are
:class:`.options.NeuSOptions`.

Design decisions (the measurements behind each are in BENCHMARKS.md, "NeuS: the measurements
behind the design"):

* Samples cover only a band around the cached surface, so ``neus_alpha`` extends the band's first
  section back to free space and its last one on to the deepest cached SDF along the ray; without
  that, oblique and silhouette rays lose opacity and the fit inflates the object by about 1/inv_s.
* ``inv_s`` starts sharp (``inv_s_init``) from a hull, softer (``inv_s_init_mask_free``) from the
  sphere. Hash-grid tables learn at ``lr`` with a ``lr_warmup`` ramp, the MLPs at the smaller
  ``lr_mlp``: Adam's first full-size steps on the MLP shift the whole SDF by several cells.
* Rays per step matter most on a CPU: too few leave the surface rougher than the hull it starts from.
* Without masks the automatic masks are only a start, never a loss (they miss thin parts and keep
  some ground); the colours learn first (``geometry_warmup``) so that random colours do not push
  the surface outwards.
* The located table is a plane beside the field, not part of it (a union by ``min`` starves the
  field of gradient just above the table, where the feet are), diffuse (its colour is the albedo
  alone), with an albedo field of its own (else a surface hanging above the table wears the
  table's colours for free). Rays that meet only the table cost one sample.
* The SDF's gradient for the eikonal loss comes in closed form through the hash grid
  (:meth:`~engine.fields.hash_grid.HashGrid.with_jacobian`), not from autograd's double backward.
* No prior decides what few views see: on an object on a table the views rarely see under it,
  and the fit leaves that region near the hull of the automatic masks.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from ...fields import albedo_colours
from ...fields.sdf import sdf_normals
from ...free_space import CarvedStart
from ...shading.visibility import mesh_occlusion
from ..base import Method, MethodInput, MethodOutput
from .extraction import extract_mesh, remove_support_plane
from .initialization import fit_to_cache, initial_sdf
from .model import NeuSModel
from .options import PRESETS, NeuSOptions
from .sampling import SurfaceCache
from .training import STAGE, Evidence, train


def for_start(opts: NeuSOptions, start: CarvedStart | None) -> NeuSOptions:
    """``opts`` for the carved ``start``: ``free_space_weight`` at least ``hollow_free_space_weight`` when it
    opened a hollow (:attr:`~engine.free_space.CarvedStart.opened_hollow`), else unchanged."""
    if start is None or not start.opened_hollow:
        return opts
    return replace(opts, free_space_weight=max(opts.free_space_weight, opts.hollow_free_space_weight))


def run_neus(data: MethodInput) -> MethodOutput:
    """The ``neus`` method (options: :class:`NeuSOptions`)."""
    opts: NeuSOptions = data.options
    device = data.device
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    lo = torch.tensor(data.normalization.box_min, device=device)
    hi = torch.tensor(data.normalization.box_max, device=device)
    mask_free = data.split.masks is None
    target = SurfaceCache(lo, hi, opts.init_resolution)
    target.values, free, start = initial_sdf(data, target, opts.init_resolution)
    opts = for_start(opts, start)
    data = replace(data, options=opts)
    hints = data.hints if mask_free else None
    model = NeuSModel(opts, mask_free, hull_start=not mask_free or hints is not None,
                      table=None if hints is None else (hints.ground, hints.up), views=len(data.split)).to(device)
    model.sdf.set_active_levels(opts.start_levels)
    fit_to_cache(model, target, data, generator)
    cache = SurfaceCache(lo, hi, opts.grid)
    cache.update(model.sdf)
    evidence = Evidence.of(None if free is None else free.sparse, data.split.cameras)
    stats, losses = train(model, cache, data, generator, evidence)
    stats.update(free.summary() if free is not None else {})
    if start is not None:
        stats.update(carved_share=round(start.opened_share, 4), free_space_weight=opts.free_space_weight)
    data.progress.update("extracting the surface", 0, 1)
    mesh = extract_mesh(model, cache, hi, opts.mesh_resolution, data.progress.stage("extracting the surface"))
    if mask_free and hints is None:  # the table was learned as part of the field: find it and cut it away
        mesh = remove_support_plane(mesh, lo.cpu().numpy(), hi.cpu().numpy(),
                                    data.split.cameras.centers.cpu().numpy())
    start = "visual hull" if not mask_free else "located object" if data.hints is not None else "sphere"
    stats.update({"mask_free": mask_free, "start": start, "mesh_resolution": opts.mesh_resolution,
                  "faces_extracted": len(mesh.faces)})
    vertices, faces = mesh.vertices.astype(np.float32), mesh.faces.astype(np.int32)
    if model.material is not None:
        return MethodOutput(vertices, faces, stats, losses={STAGE: losses},
                            material=model.material.export(normal=sdf_normals(model.sdf), occlusion=mesh_occlusion(
                                torch.from_numpy(vertices).to(device), torch.from_numpy(faces).long().to(device),
                                offset=opts.shadow_offset)))
    albedo = model.colour.albedo
    return MethodOutput(vertices, faces, stats, losses={STAGE: losses},
                        albedo=lambda points: albedo_colours(albedo, points))


NEUS = Method(
    name="neus",
    title="NeuS",
    description="Optimizes a neural SDF by volume rendering: concavities and thin parts, works without masks "
                "(objects on a table); minutes.",
    needs_masks=False,
    options=NeuSOptions,
    presets=PRESETS,
    run=run_neus,
)
