"""NeuS: the SDF volume renderer on analytic shapes, and the method end to end on small real data.

End to end: on 24 views of spot at 128 px NeuS must beat the visual hull of the same views (the
shape it starts from), on Chamfer-L1, F@0.5% and normal consistency; the mask-free paths (from the
object located on its table, and blind from a sphere) must give one object with the table cut away.
"""

from __future__ import annotations

import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import trimesh

from engine.data.transforms import load_split
from engine.evaluate import geometry_metrics
from engine.free_space import HOLLOW_SHARE, CarvedStart
from engine.methods import METHODS, MethodInput, MethodOutput, resolve_options
from engine.methods.neus import for_start
from engine.methods.neus.appearance import ViewAppearance
from engine.methods.neus.extraction import extract_mesh, remove_support_plane
from engine.methods.neus.initialization import fit_to_cache
from engine.methods.neus.model import NeuSModel
from engine.methods.neus.options import NeuSOptions
from engine.methods.neus.pbr import pbr_losses
from engine.methods.neus.rendering import render_rays
from engine.methods.neus.sampling import SurfaceCache
from engine.progress import Progress
from engine.render.volume import composite_weights, neus_alpha
from engine.roi import Normalization, find_roi, view_roi


class SphereSDF(torch.nn.Module):
    """The exact SDF of a sphere of ``radius`` (0.5 unless given; a parameter to learn it) at the
    origin, with the SDFField interface."""

    features = 15

    def __init__(self, radius: float | torch.nn.Parameter = 0.5) -> None:
        super().__init__()
        self.radius = radius

    def forward(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return points.norm(dim=-1) - self.radius, points.new_zeros(len(points), self.features)

    def with_gradient(self, points: torch.Tensor, create_graph: bool = True):
        with torch.enable_grad():
            points = points.detach().requires_grad_(True)
            sdf, features = self(points)
            (gradient,) = torch.autograd.grad(sdf.sum(), points, create_graph=create_graph)
        return sdf, features, gradient


def sphere_model(inv_s: float) -> tuple[NeuSModel, SurfaceCache, NeuSOptions]:
    opts = resolve_options(METHODS["neus"], "fast", {"inv_s_init": inv_s})
    model = NeuSModel(opts, mask_free=False, hull_start=True)
    model.sdf = SphereSDF()
    cache = SurfaceCache(torch.full((3,), -1.0), torch.full((3,), 1.0), 64)
    cache.update(model.sdf)
    return model, cache, opts


def test_alpha_is_an_opacity_and_weights_sum_to_at_most_one():
    torch.manual_seed(0)
    sdf, slope = torch.randn(64, 32) * 0.2, torch.randn(64, 32)
    for deepest in (None, torch.randn(64) * 0.2):
        alpha = neus_alpha(sdf, slope, torch.full_like(sdf, 0.01), torch.tensor(50.0), anneal=0.5, deepest=deepest)
        assert float(alpha.min()) >= 0.0 and float(alpha.max()) <= 1.0
        weights = composite_weights(alpha)
        assert float(weights.min()) >= 0.0 and float(weights.sum(1).max()) <= 1.0 + 1e-5


def test_sphere_renders_a_disc_at_the_right_depth():
    """A pinhole camera on +Z looking at the sphere: opacity above one half exactly inside the sphere's
    silhouette (a disc), and the depth of the first surface where it is opaque."""
    model, cache, opts = sphere_model(inv_s=400.0)
    distance, size, focal = 3.0, 48, 60.0
    py, px = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    directions = torch.nn.functional.normalize(
        torch.stack([(px - size / 2) / focal, -(py - size / 2) / focal, -torch.ones_like(px)], -1), dim=-1
    ).reshape(-1, 3)
    origins = torch.tensor([0.0, 0.0, distance]).expand_as(directions)
    out = render_rays(model, cache, origins, directions, lo=torch.full((3,), -1.0), hi=torch.full((3,), 1.0),
                           opts=opts, anneal=1.0, training=False)
    out = {key: value.detach() for key, value in out.items()}
    # Distance of each ray from the sphere centre; the silhouette is where it equals the radius.
    miss = torch.linalg.cross(directions, -origins).norm(dim=-1)
    inside, outside = miss < 0.5 - 0.02, miss > 0.5 + 0.02
    opacity = out["opacity"]
    assert bool((opacity[inside] > 0.5).all()) and bool((opacity[outside] < 0.5).all())
    assert float(opacity[miss < 0.4].min()) > 0.99
    expected = distance * directions[:, 2].neg() - (0.25 - miss**2).clamp_min(0).sqrt()  # first hit distance
    core = miss < 0.4
    depth = out["depth"][core] / opacity[core]
    assert float((depth - expected[core]).abs().max()) < 0.01
    assert float(out["eikonal"]) < 1e-8  # the exact SDF has unit gradients


def test_a_frozen_geometry_step_trains_the_colours_alone():
    """The colours-only warm-up (``frozen_geometry``): the colour field gets gradients, the SDF and
    ``inv_s`` none; an ordinary step gives all of them one."""
    model, cache, opts = sphere_model(inv_s=100.0)
    model.sdf = SphereSDF(torch.nn.Parameter(torch.tensor(0.5)))
    origins = torch.tensor([[0.0, 0.0, 3.0], [0.2, 0.1, 3.0], [0.45, 0.0, 3.0]])
    directions = torch.tensor([0.0, 0.0, -1.0]).expand_as(origins)
    for frozen in (True, False):
        model.zero_grad(set_to_none=True)
        out = render_rays(model, cache, origins, directions, lo=torch.full((3,), -1.0), hi=torch.full((3,), 1.0),
                               opts=opts, anneal=1.0, training=True, frozen_geometry=frozen)
        (out["colour"].sum() + out["opacity"].sum() + out["eikonal"]).backward()
        assert model.colour.albedo.encoding.tables.grad is not None
        assert (model.sdf.radius.grad is None) == frozen and (model.log_inv_s.grad is None) == frozen


@pytest.mark.parametrize("guide", [True, False])
def test_with_pbr_the_radiance_head_alone_shapes_the_surface_unless_told_otherwise(guide):
    """``material=pbr``: with ``radiance_guide`` the shaded term trains the material and the light and
    leaves the SDF alone, the radiance head's colour term moves it; without the guide the shaded term
    moves the surface (and there is no head)."""
    opts = resolve_options(METHODS["neus"], "fast", {"material": "pbr", "radiance_guide": guide})
    model = NeuSModel(opts, mask_free=False, hull_start=True)
    assert (model.colour is not None) == guide
    model.sdf = SphereSDF(torch.nn.Parameter(torch.tensor(0.5)))
    cache = SurfaceCache(torch.full((3,), -1.0), torch.full((3,), 1.0), 64)
    cache.update(model.sdf)
    origins = torch.tensor([[0.0, 0.0, 3.0], [0.2, 0.1, 3.0], [0.45, 0.0, 3.0], [0.49, 0.0, 3.0]])
    directions = torch.tensor([0.0, 0.0, -1.0]).expand_as(origins)
    out = render_rays(model, cache, origins, directions, lo=cache.lo, hi=cache.hi, opts=opts, anneal=1.0,
                      training=True)
    target = torch.full((4, 3), 0.7)
    losses = pbr_losses(model, cache, out, origins, directions, target=target, background=torch.zeros(4, 3),
                        opts=opts)
    losses["shaded"].backward(retain_graph=guide)
    assert model.material.field.encoding.tables.grad is not None
    assert (model.sdf.radius.grad is None) == guide
    if guide:
        (out["colour"] - target).abs().mean().backward()
        assert model.sdf.radius.grad is not None and float(model.sdf.radius.grad.abs()) > 0


def test_opacity_is_symmetric_about_the_silhouette():
    """Unbiased: rays passing the surface at +d and -d get opacities o and 1 - o (the renderer samples
    only a band around the surface, and must not lose the opacity outside it)."""
    model, cache, opts = sphere_model(inv_s=100.0)
    offsets = torch.tensor([0.005, 0.01, 0.02])
    b = torch.cat([0.5 - offsets, 0.5 + offsets])
    origins = torch.stack([b, torch.zeros_like(b), torch.full_like(b, 3.0)], -1)
    directions = torch.tensor([0.0, 0.0, -1.0]).expand_as(origins)
    opacity = render_rays(model, cache, origins, directions, lo=torch.full((3,), -1.0),
                               hi=torch.full((3,), 1.0), opts=opts, anneal=1.0, training=False)["opacity"].detach()
    assert float((opacity[:3] + opacity[3:] - 1.0).abs().max()) < 0.05


def test_object_on_an_analytic_table_renders_and_extracts_as_two_surfaces():
    """The sphere standing in a table (plane z = -0.3), seen obliquely from above: every ray is
    opaque and stops at the first surface it meets, the sphere or the table; the extracted mesh is
    the sphere alone, cut at the table top and closed there. The table is diffuse: where it is seen,
    the colour is the albedo alone, while the sphere's has the view-dependent residual on top, and
    its albedo is its own, not the object's."""
    table = (np.array([0.0, 0.0, -0.3]), np.array([0.0, 0.0, 1.0]))
    opts = resolve_options(METHODS["neus"], "fast", {"inv_s_init": 400.0})
    model = NeuSModel(opts, mask_free=True, hull_start=True, table=table)
    model.sdf = SphereSDF()
    torch.nn.init.constant_(model.colour.residual[-1].bias, 1.0)  # a residual that brightens every colour
    torch.nn.init.zeros_(model.table_albedo.mlp[-1].weight)
    torch.nn.init.constant_(model.table_albedo.mlp[-1].bias, 3.0)  # a white table
    lo, hi = torch.full((3,), -1.0), torch.full((3,), 1.0)
    cache = SurfaceCache(lo, hi, 64)
    cache.update(model.sdf)
    eye = torch.tensor([0.0, -2.5, 1.5])
    targets = torch.stack(torch.meshgrid(torch.linspace(-0.9, 0.9, 32), torch.linspace(-0.9, 0.9, 32),
                                         indexing="ij"), -1).reshape(-1, 2)
    targets = torch.cat([targets, torch.full((len(targets), 1), -0.3)], -1)  # [R, 3] points on the table
    directions = torch.nn.functional.normalize(targets - eye, dim=-1)
    origins = eye.expand_as(directions)
    out = render_rays(model, cache, origins, directions, lo=lo, hi=hi, opts=opts, anneal=1.0, training=False)
    opacity, depth = out["opacity"].detach(), (out["depth"] / out["opacity"]).detach()
    # First hit: the sphere where the ray meets it above the table top, else the table.
    along = (directions * -origins).sum(-1)
    miss = (origins + directions * along[:, None]).norm(dim=-1)
    sphere_t = along - (0.25 - miss**2).clamp_min(0).sqrt()
    table_t = (targets - eye).norm(dim=-1)
    on_sphere = (miss < 0.5) & ((origins + directions * sphere_t[:, None])[:, 2] > -0.3)
    expected = torch.where(on_sphere, sphere_t, table_t)
    clear = (miss - 0.5).abs() > 0.03  # away from the silhouette
    assert float(opacity[clear].min()) > 0.99
    assert float((depth - expected)[clear].abs().max()) < 0.01
    shading = (out["colour"] - out["albedo"]).detach().abs().amax(-1)  # [R]
    assert float(shading[clear & ~on_sphere].max()) < 1e-5
    assert float(shading[clear & on_sphere].min()) > 0.01
    white = math.exp(3.0) / (1.0 + math.exp(3.0))
    albedo = out["albedo"].detach()
    assert float((albedo[clear & ~on_sphere] - white).abs().max()) < 1e-3
    assert float((albedo[clear & on_sphere] - white).abs().amax(-1).min()) > 0.1
    # Near the silhouette the sphere is partly transparent: what it lets through lands on the table, not
    # at the end of the sphere's sample band.
    alone, _, _ = sphere_model(inv_s=400.0)
    sphere = render_rays(alone, cache, origins, directions, lo=lo, hi=hi, opts=opts, anneal=1.0, training=False)
    edge = ~clear & (sphere["opacity"].detach() > 0.05)
    mixed = sphere["depth"].detach() + (1 - sphere["opacity"].detach()) * table_t  # premultiplied depth
    assert int(edge.sum()) > 10 and float((out["depth"].detach() - mixed)[edge].abs().max()) < 0.02
    mesh = extract_mesh(model, cache, hi, 96, lambda done, total: None)
    assert mesh.is_watertight
    assert abs(mesh.bounds[0, 2] + 0.3) < 0.03 and abs(mesh.bounds[1, 2] - 0.5) < 0.03
    cap = math.pi * 0.2**2 * (3 * 0.5 - 0.2) / 3  # the part of the ball below the table top
    assert abs(mesh.volume - (4 / 3 * math.pi * 0.5**3 - cap)) < 0.02


def test_sdf_field_fits_a_sphere_and_its_gradient_is_the_normal():
    torch.manual_seed(0)
    lo, hi = torch.full((3,), -1.0), torch.full((3,), 1.0)
    cache = SurfaceCache(lo, hi, 32)
    cache.values = cache.nodes.norm(dim=-1) - 0.5
    options = resolve_options(METHODS["neus"], "fast", {"init_iterations": 40, "init_points": 4096})
    model = NeuSModel(options, mask_free=False, hull_start=True)
    model.sdf.set_active_levels(4)
    data = SimpleNamespace(options=options, progress=Progress(lambda event: None))
    fit_to_cache(model, cache, data, torch.Generator().manual_seed(0))
    points = torch.nn.functional.normalize(torch.randn(2000, 3), dim=-1) * (0.3 + 0.4 * torch.rand(2000, 1))
    sdf, _, gradient = model.sdf.with_gradient(points, create_graph=False)
    sdf, gradient = sdf.detach(), gradient.detach()
    assert float((sdf - (points.norm(dim=-1) - 0.5)).abs().mean()) < 0.02
    # The analytic gradient through the encoding points along the true normal (radial direction).
    cosine = torch.nn.functional.cosine_similarity(gradient, points, dim=-1)
    assert float(cosine.mean()) > 0.85  # 40 cheap steps: ~0.92; a wrong or missing gradient gives <= 0


# Coarser than the ``fast`` preset where it would out-resolve the 96-cell hull the test compares with.
NEUS_TEST_OPTIONS = {"init_resolution": 96, "mesh_resolution": 128}


def small_run(split, overrides: dict, name: str = "neus") -> tuple[MethodOutput, object]:
    """Method ``name`` (``fast`` preset with ``overrides``) on ``split``; returns its output and the
    normalization that maps it back to the world."""
    method = METHODS[name]
    normalization = find_roi(split) if split.masks is not None else view_roi(split)
    options = resolve_options(method, "fast", overrides)
    data = MethodInput(normalization.split_to_unit(split), normalization, options, Progress(lambda event: None),
                       torch.device("cpu"))
    return method.run(data), normalization


def world_mesh(result: MethodOutput, normalization) -> trimesh.Trimesh:
    return trimesh.Trimesh(normalization.to_world(torch.from_numpy(result.vertices)).numpy(), result.faces)


def test_neus_beats_the_hull_on_few_views(datasets):
    """24 views at 128 px: the hull these views carve (the start NeuS is fitted to) is coarse;
    NeuS must improve on it, as DMTet does in ``test_dmtet.py`` on the same views."""
    split = load_split(datasets / "spot", "train", scale=0.5, max_views=24)
    gt = trimesh.load(datasets / "spot" / "gt_mesh.ply", force="mesh")
    hull = geometry_metrics(world_mesh(*small_run(split, {"resolution": 96}, "hull")), gt, samples=50_000)
    result, normalization = small_run(split, NEUS_TEST_OPTIONS)
    metrics = geometry_metrics(world_mesh(result, normalization), gt, samples=50_000)
    # Measured (2-core CPU): hull 0.0128 / F@0.5% 0.754 / NC 0.937, NeuS 0.0097 / 0.835 / 0.961 (300 steps
    # instead of 600: 0.0111 / 0.792). The bounds sit between: the test fails if training stops improving on
    # its visual-hull start.
    assert hull["chamfer_l1"] > 0.0115 and hull["f_score_0.5%"] < 0.79
    assert metrics["chamfer_l1"] < 0.0115 and metrics["f_score_0.5%"] > 0.79, metrics
    assert metrics["normal_consistency"] > hull["normal_consistency"], (metrics, hull)
    colours = result.albedo(result.vertices[:100])
    assert colours.shape == (100, 3) and float(colours.min()) >= 0 and float(colours.max()) <= 1
    assert result.stats["iterations"] == METHODS["neus"].presets["fast"].iterations
    # spot's carve opens no hollow, so the free-space term stays off (it only dented spot: Chamfer-L1 0.0032 -> 0.0029)
    assert result.stats["carved_share"] < HOLLOW_SHARE and result.stats["free_space_weight"] == 0
    assert set(result.losses["optimizing the SDF"]) == {"colour", "albedo", "eikonal", "mask"}
    assert not result.stats["mask_free"]


def test_pbr_with_the_radiance_guide_gives_baked_s_surface(datasets):
    """``material=pbr`` with ``radiance_guide``: the same surface as ``baked`` (the material neither moves
    the SDF nor changes the random draws that shape it), and a PBR material instead of an albedo."""
    split = load_split(datasets / "spot", "train", scale=0.25, max_views=12)
    short = {"iterations": 40, "init_iterations": 20, "init_resolution": 48, "mesh_resolution": 48, "rays": 256}
    baked, _ = small_run(split, short)
    pbr, _ = small_run(split, {**short, "material": "pbr"})
    assert pbr.material is not None and baked.material is None
    assert {"colour", "albedo", "shaded"} <= set(pbr.losses["optimizing the SDF"])
    assert baked.vertices.shape == pbr.vertices.shape and np.array_equal(baked.faces, pbr.faces)
    assert float(np.abs(baked.vertices - pbr.vertices).max()) < 1e-6


def test_free_space_term_is_on_where_the_carve_opened_a_hollow():
    """NeuS's ``free_space`` weight: ``hollow_free_space_weight`` for a start whose carve emptied a tenth of
    the hull (the bowl's empties 58%), the option itself elsewhere (0 by default) and for the sphere."""
    hull = torch.full((4, 4, 4), -1.0)
    carved = hull.clone()
    carved.view(-1)[:16] = 1.0  # a quarter of the hull's nodes opened
    barely = hull.clone()
    barely.view(-1)[:2] = 1.0
    opts = NeuSOptions()
    assert for_start(opts, CarvedStart(carved, hull)).free_space_weight == opts.hollow_free_space_weight == 1.0
    assert for_start(opts, CarvedStart(barely, hull)).free_space_weight == 0.0
    assert for_start(opts, None).free_space_weight == 0.0
    assert for_start(replace(opts, free_space_weight=2.0), CarvedStart(barely, hull)).free_space_weight == 2.0


def test_support_plane_is_cut_away():
    """A sphere standing on a slab that spans the region: only the sphere is left."""
    lo, hi = np.full(3, -1.0), np.full(3, 1.0)
    slab = trimesh.creation.box(extents=(2.0, 2.0, 0.2))
    slab.apply_translation((0, 0, -0.8))
    ball = trimesh.creation.icosphere(subdivisions=3, radius=0.4)
    ball.apply_translation((0, 0, -0.3))
    ball.vertices[:, 2] = np.maximum(ball.vertices[:, 2], -0.7)  # flattened where it touches the slab
    scene = trimesh.util.concatenate([trimesh.Trimesh(*trimesh.remesh.subdivide_to_size(slab.vertices, slab.faces,
                                                                                        0.1)), ball])
    cameras = np.array([[0.0, 3.0, 2.0], [3.0, 0.0, 2.0]])
    kept = remove_support_plane(scene, lo, hi, cameras)
    assert kept.bounds[0, 2] > -0.71 and kept.bounds[1, 2] == pytest.approx(0.1, abs=0.01)
    assert np.all(np.abs(kept.bounds[:, :2]) < 0.45)
    # A plane that does not span the region (the sphere's own flat bottom) is not a support.
    alone = remove_support_plane(ball, lo, hi, cameras)
    assert len(alone.faces) == len(ball.faces)


def test_mask_free_neus_starts_from_the_object_on_its_table(tabletop_hints, datasets):
    """No masks, the object located on its table (``engine.sfm.object_hints``): NeuS starts from
    the hull of the automatic masks, the table a plane of its own, so after a short fit (the colours
    learn first, then the surface) the object is far closer than the sphere start ever gets (a full
    ``balanced`` run from the sphere: Chamfer-L1 0.056, BENCHMARKS.md). One closed piece: the table
    is a plane beside the field, so the object is cut at the table top and its soles are closed."""
    split, hints = tabletop_hints
    normalization = Normalization.from_box(torch.from_numpy(hints.box_min), torch.from_numpy(hints.box_max))
    options = resolve_options(METHODS["neus"], "fast", {"iterations": 300, "rays": 1024, **NEUS_TEST_OPTIONS})
    data = MethodInput(normalization.split_to_unit(split), normalization, options, Progress(lambda event: None),
                       torch.device("cpu"), hints=hints.to_unit(normalization))
    result = METHODS["neus"].run(data)
    assert result.stats["start"] == "located object"
    mesh = world_mesh(result, normalization)
    assert len(mesh.split(only_watertight=False)) == 1 and mesh.is_watertight
    gt = trimesh.load(datasets / "spot-tabletop" / "gt_mesh.ply", force="mesh")
    metrics = geometry_metrics(mesh, gt)
    assert metrics["chamfer_l1"] < 0.02, metrics  # measured 0.013; the blind sphere start is far off


def test_mask_free_spot_tabletop_gives_one_object(datasets):
    """No masks, end to end: one connected object inside the region, nothing left below the feet.

    This checks the mask-free path (view-based region, sphere start, background field, table
    removal) runs and yields one piece; at test size (30 steps) the sphere has barely started to
    shrink, so the shape itself is measured by ``benchmarks/bench_neus.py``, not here.
    """
    split = load_split(datasets / "spot-tabletop", "train", scale=0.25, max_views=16)
    assert split.masks is None
    result, normalization = small_run(split, {"iterations": 30, "init_iterations": 20, "rays": 512, "grid": 48,
                                              "init_resolution": 48, "mesh_resolution": 80})
    mesh = world_mesh(result, normalization)
    assert len(mesh.split(only_watertight=False)) == 1
    gt = trimesh.load(datasets / "spot-tabletop" / "gt_mesh.ply", force="mesh")
    # The table (a plane through the feet, spanning the whole region) is gone: nothing far below the feet.
    assert mesh.bounds[0, 2] > gt.bounds[0, 2] - 0.05
    extent = mesh.bounds[1] - mesh.bounds[0]
    assert np.all(extent < 1.3 * (gt.bounds[1] - gt.bounds[0]) + 0.1), (mesh.bounds, gt.bounds)
    assert math.isfinite(geometry_metrics(mesh, gt)["chamfer_l1"])


def test_each_photo_s_appearance_absorbs_its_own_gain_and_offset():
    """Rays of eight photos of the same 64 surface colours, each photo with an exposure and white
    balance of its own (a gain and an offset per channel): fitted through ``ViewAppearance``, the
    canonical colours and each photo's affine colour are found (up to the average photo), and the
    photos are reproduced; one colour per point without it cannot reproduce them."""
    generator = torch.Generator().manual_seed(0)
    views, points = 8, 64
    truth = 0.2 + 0.6 * torch.rand(points, 3, generator=generator)  # [K, 3] canonical colours
    log_gain = 0.3 * torch.randn(views, 3, generator=generator)
    offset = 0.05 * torch.randn(views, 3, generator=generator)
    log_gain, offset = log_gain - log_gain.mean(0), offset - offset.mean(0)
    view = torch.arange(views).repeat_interleave(points)
    point = torch.arange(points).repeat(views)
    target = truth[point] * log_gain[view].exp() + offset[view]  # [V*K, 3] what each photo shows
    errors = {}
    for learned in (True, False):
        colours = torch.nn.Parameter(torch.full((points, 3), 0.5))
        appearance = ViewAppearance(views)
        optimizer = torch.optim.Adam([colours, *appearance.parameters()], lr=0.02)
        for _ in range(600):
            out = {"colour": colours[point], "albedo": colours[point], "opacity": torch.ones(len(view))}
            background = torch.zeros(len(view), 3)
            if learned:
                out, background = appearance(view, out, background)
            loss = (out["colour"] - target).abs().mean() + 0.01 * appearance.penalty()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        errors[learned] = float((out["colour"].detach() - target).abs().mean())
        if learned:
            found_gain, found_offset = (value.detach() for value in appearance.centred())
            assert float((found_gain - log_gain).abs().max()) < 0.05, (found_gain, log_gain)
            assert float((found_offset - offset).abs().max()) < 0.02
            assert float((colours.detach() - truth).abs().max()) < 0.03
    assert errors[True] < 0.005, errors
    assert errors[False] > 0.02, errors
