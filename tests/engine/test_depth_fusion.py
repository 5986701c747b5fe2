"""``--method depth`` (TSDF fusion) on depth maps rendered from the ground truth, and the depth and
normal terms of DMTet and NeuS."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import trimesh

from engine.data.dataset import DatasetSplit
from engine.data.transforms import load_split
from engine.demo import sphere_cameras
from engine.errors import InputError
from engine.evaluate import geometry_metrics
from engine.fields import AlbedoField
from engine.losses import depth_normal_losses, without_off_maps
from engine.methods import MethodInput, get_method, resolve_options
from engine.methods.dmtet import Batch, DMTetOptions, render_losses
from engine.methods.dmtet import loss_weights as dmtet_weights
from engine.methods.neus.rendering import render_rays
from engine.methods.neus.sampling import sample_pixels
from engine.progress import Progress
from engine.render.maps import render_depth_normals
from engine.roi import find_roi
from tests.engine.test_neus import SphereSDF, sphere_model
from tests.support import run_engine, write_depth_dataset


@pytest.fixture(scope="module")
def spot_depth(datasets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 views of spot with depth and normal maps rendered from its ground truth."""
    return write_depth_dataset(datasets / "spot", tmp_path_factory.mktemp("depth") / "spot", views=40)


def run_method(folder: Path, method: str, preset: str = "fast", scale: float = 1.0, views: int | None = None,
               **overrides) -> tuple[trimesh.Trimesh, dict]:
    """The method's mesh in the world frame, and its output (stats, losses)."""
    split = load_split(folder, scale=scale, max_views=views)
    normalization = find_roi(split)
    m = get_method(method)
    data = MethodInput(normalization.split_to_unit(split), normalization, resolve_options(m, preset, overrides),
                       Progress(lambda event: None), torch.device("cpu"))
    out = m.run(data)
    vertices = normalization.to_world(torch.from_numpy(out.vertices)).numpy()
    return trimesh.Trimesh(vertices, out.faces, process=False), {"stats": out.stats, "losses": out.losses}


def test_depth_fusion_reaches_the_metric_floor(datasets, spot_depth):
    mesh, out = run_method(spot_depth, "depth", preset="balanced")
    gt = trimesh.load(datasets / "spot" / "gt_mesh.ply", force="mesh")
    metrics = geometry_metrics(mesh, gt, samples=100_000)
    # spot's floor (GT against itself) is 0.0025; from 40 views some of the underside is seen by none
    # (0.0035; 0.0025 from all 100, BENCHMARKS.md); the visual hull of these 40 views scores 0.0050
    assert metrics["chamfer_l1"] < 0.0038 and metrics["normal_consistency"] > 0.99, metrics
    assert metrics["f_score_0.5%"] > 0.99, metrics
    assert mesh.is_watertight and out["stats"]["normals"] is True


def test_depth_fusion_without_normals_and_with_noise(datasets, tmp_path):
    folder = write_depth_dataset(datasets / "rocker-arm", tmp_path / "noisy", views=40, normals=False, noise=0.01,
                                 dropped=0.05)
    mesh, out = run_method(folder, "depth")
    # the noise the maps hold is measured (1% of a depth of about 3.5, in the unit volume) and widens the band
    noise = out["stats"]["depth_noise_unit"]
    assert 0.02 < noise < 0.05 and out["stats"]["truncation_unit"] > 2.5 * noise
    gt = trimesh.load(datasets / "rocker-arm" / "gt_mesh.ply", force="mesh")
    metrics = geometry_metrics(mesh, gt, samples=100_000)
    # the visual hull from 100 views: 0.0108 (its pockets); measured 0.0066 (0.0128 before unmeasured space that a
    # view sees past was carved: stray noisy samples grew a blob)
    assert metrics["chamfer_l1"] < 0.008, metrics
    assert len(mesh.split(only_watertight=False)) == 1


def test_the_holes_of_a_scan_stay_open_where_views_see_through_them(datasets, tmp_path):
    folder = write_depth_dataset(datasets / "bunny", tmp_path / "bunny", views=40)
    gt = trimesh.load(datasets / "bunny" / "gt_mesh.ply", force="mesh")
    opened, out = run_method(folder, "depth")
    closed, _ = run_method(folder, "depth", open_seen_through=False)
    open_metrics, closed_metrics = (geometry_metrics(m, gt, samples=100_000) for m in (opened, closed))
    # the scan has open holes underneath, which the views from below see through: by default the caps the filling
    # puts over them are removed (spot's unseen underside, which no view sees past, stays closed: the test above)
    assert closed.is_watertight and not opened.is_watertight and out["stats"]["opened_vertices"] > 0
    assert 0.9 * len(closed.faces) < len(opened.faces) < 0.99 * len(closed.faces)
    assert open_metrics["chamfer_l1"] < closed_metrics["chamfer_l1"] - 0.0005, (open_metrics, closed_metrics)


def test_depth_fusion_needs_depth_maps(datasets):
    with pytest.raises(InputError, match="needs depth maps"):
        run_method(datasets / "spot", "depth", views=6, scale=0.25)


def test_the_depth_method_from_the_command_line(spot_depth, tmp_path):
    done = run_engine("reconstruct", str(spot_depth), "--out", str(tmp_path / "out"), "--method", "depth",
                      "--preset", "fast", "--max-views", "20", "--image-scale", "0.5", "-o", "faces=3000",
                      "-o", "texture_size=256")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "spot.obj").is_file() and "3000 faces" in done.stdout


def test_depth_normal_losses():
    depth = torch.tensor([1.0, 2.0, 3.0, 4.0])
    target = torch.tensor([1.5, 0.0, 3.0, 3.0])  # the second has no depth
    normals = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    target_normals = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, -1.0]])
    terms = depth_normal_losses(depth, target, normals, target_normals)
    assert terms["depth"].item() == pytest.approx((0.5 + 0.0 + 1.0) / 3)
    assert terms["normal"].item() == pytest.approx((0.0 + 1.0 + 2.0) / 3)
    assert depth_normal_losses(depth, None, normals, None) == {}


def sphere_views(radius: float, count: int = 4, size: int = 48) -> DatasetSplit:
    """``count`` views of a sphere of ``radius`` at the origin: masks, depth and normal maps from the
    rasterizer."""
    cameras = sphere_cameras(count, size)  # 3.5 away, as in the shared datasets
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=radius)
    vertices, faces = torch.tensor(sphere.vertices, dtype=torch.float32), torch.tensor(sphere.faces)
    depth, normals = render_depth_normals(vertices, faces, cameras)
    images = torch.full((count, size, size, 3), 0.5)
    return DatasetSplit(images, (depth > 0).float(), cameras, [f"view {i}" for i in range(count)], depth, normals)


def test_dmtet_depth_and_normal_terms_pull_the_surface_to_the_maps():
    views = sphere_views(0.6)
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    vertices = torch.tensor(sphere.vertices, dtype=torch.float32, requires_grad=True)
    batch = Batch(views.cameras, views.images, views.masks, torch.zeros(len(views), 1, 1, 3),
                  list(range(len(views))), depths=views.depths, normals=views.normals)
    terms = render_losses(vertices, torch.tensor(sphere.faces), AlbedoField(), batch, 0.01)
    assert 0.05 < float(terms["depth"]) < 0.2 and float(terms["normal"]) < 0.05  # 0.1 too near; facets' normals
    terms["depth"].backward()
    outward = (vertices.grad * vertices.detach()).sum(-1)  # descent moves against the gradient
    seen = vertices.grad.norm(dim=-1) > 0
    assert float((outward[seen] < 0).float().mean()) > 0.95
    loss_names = set(dmtet_weights(DMTetOptions(), 0))
    assert {"depth", "normal"} <= loss_names


def test_neus_depth_term_grows_the_sphere_to_the_maps_and_normals_match():
    model, cache, opts = sphere_model(inv_s=200.0)
    model.sdf = SphereSDF(torch.nn.Parameter(torch.tensor(0.5)))
    views = sphere_views(0.55)
    pixels = sample_pixels(views, 512, torch.Generator().manual_seed(0))
    out = render_rays(model, cache, pixels.origins, pixels.directions, lo=torch.full((3,), -1.0),
                      hi=torch.full((3,), 1.0), opts=opts, anneal=1.0, training=True)
    terms = depth_normal_losses(out["depth"], pixels.depths * out["opacity"], out["normal"], pixels.normals)
    terms["depth"].backward()
    assert float(model.sdf.radius.grad) < 0  # a larger radius fits the maps better
    same = sample_pixels(sphere_views(0.5), 512, torch.Generator().manual_seed(0))  # the same sphere's maps
    out = render_rays(model, cache, same.origins, same.directions, lo=torch.full((3,), -1.0),
                      hi=torch.full((3,), 1.0), opts=opts, anneal=1.0, training=False)
    opaque = (out["opacity"] > 0.99) & (same.depths > 0)
    rendered = torch.nn.functional.normalize(out["normal"][opaque].detach(), dim=-1)
    assert float((rendered * same.normals[opaque]).sum(-1).min()) > 0.995  # world-frame normals, facing out
    assert torch.allclose(out["depth"][opaque].detach(), same.depths[opaque], atol=0.01)  # along the ray


def test_a_weight_of_zero_leaves_the_maps_out():
    views = sphere_views(0.5)
    assert without_off_maps(views, 0.0, 1.0).depths is None and without_off_maps(views, 0.0, 1.0).normals is not None
    assert without_off_maps(views, 1.0, 0.0).normals is None and without_off_maps(views, 1.0, 0.0).depths is not None
