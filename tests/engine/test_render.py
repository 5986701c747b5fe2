"""The renderer: ray-cast rasterisation against a brute-force z-buffer, interpolation, texture
orientation, analytic antialiasing (coverage and its gradient) and coverage of a real dataset; the
synthetic cases run on every device torch sees (``device`` fixture)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

from engine.cameras import Cameras
from engine.render import RayCaster, antialias, interpolate, rasterize, sample_texture
from tests.support import ROOT


def look_at_cameras(eyes: torch.Tensor, width: int, height: int, focal: float) -> Cameras:
    """Cameras at ``eyes [N, 3]`` looking at the origin (world +Z up), float32."""
    c2w = []
    for eye in eyes.double():
        forward = -eye / eye.norm()
        right = torch.linalg.cross(forward, torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
        right = right / right.norm()
        up = torch.linalg.cross(right, forward)
        matrix = torch.eye(4, dtype=torch.float64)
        matrix[:3, 0], matrix[:3, 1], matrix[:3, 2], matrix[:3, 3] = right, up, -forward, eye
        c2w.append(matrix)
    n = len(eyes)
    full = torch.full((n,), focal)
    centre_x, centre_y = torch.full((n,), width / 2), torch.full((n,), height / 2)
    return Cameras(torch.stack(c2w).float(), full, full, centre_x, centre_y, width, height)


def reference_zbuffer(verts: torch.Tensor, faces: torch.Tensor, cameras: Cameras):
    """Every pixel against every triangle in float64: point in triangle on screen, perspective-correct
    barycentrics and depth, nearest wins. All vertices must be in front of every camera."""
    cams = Cameras(cameras.c2w.double(), cameras.fx.double(), cameras.fy.double(), cameras.cx.double(),
                   cameras.cy.double(), cameras.width, cameras.height)
    screen, depth = cams.project(verts.double())  # [N, V, 2], [N, V]
    assert (depth > 0).all()
    py, px = torch.meshgrid(torch.arange(cams.height) + 0.5, torch.arange(cams.width) + 0.5, indexing="ij")
    pixel = torch.stack([px, py], -1).double().reshape(1, -1, 1, 2)  # [1, HW, 1, 2]
    tri = screen[:, faces]  # [N, F, 3, 2]
    a, b, c = (tri[:, None, :, k] for k in range(3))  # [N, 1, F, 2]

    def edge(p, q, r):  # twice the signed area of (p, q, r)
        (qx, qy), (rx, ry) = (q - p).unbind(-1), (r - p).unbind(-1)
        return qx * ry - qy * rx

    area = edge(a, b, c)  # [N, 1, F]
    lam = torch.stack([edge(b, c, pixel), edge(c, a, pixel), edge(a, b, pixel)], -1) / area[..., None]
    inside = (lam >= 0).all(-1) & (area != 0)  # [N, HW, F]
    inv_z = lam / depth[:, faces][:, None]  # [N, HW, F, 3] screen barycentrics over vertex depths
    z = 1 / inv_z.sum(-1)  # [N, HW, F]
    z = torch.where(inside, z, torch.inf)
    best_z, best = z.min(-1)  # [N, HW]
    face_id = torch.where(best_z.isfinite(), best, -1)
    bary = torch.gather(inv_z * z[..., None], 2, best[..., None, None].expand(-1, -1, 1, 3))[:, :, 0]
    shape = (len(cams), cams.height, cams.width)
    return face_id.reshape(shape), bary.reshape(*shape, 3), best_z.reshape(shape)


def random_scene(seed: int, triangles: int, device: str = "cpu"):
    generator = torch.Generator().manual_seed(seed)
    centres = (torch.rand(triangles, 1, 3, generator=generator) - 0.5) * 1.6
    verts = (centres + 0.35 * torch.randn(triangles, 3, 3, generator=generator)).reshape(-1, 3)
    faces = torch.arange(3 * triangles).reshape(-1, 3)
    eyes = torch.nn.functional.normalize(torch.randn(4, 3, generator=generator), dim=-1) * 4.0
    return verts.to(device), faces.to(device), look_at_cameras(eyes, 48, 40, 45.0).to(device)


def cpu(frags):
    """The fragments on the CPU, for comparing with the reference."""
    return type(frags)(frags.face_id.cpu(), frags.bary.cpu(), frags.depth.cpu())


@pytest.mark.parametrize(("seed", "triangles"), [(0, 30), (1, 100), (2, 200)])
def test_matches_brute_force_zbuffer(seed, triangles, device):
    verts, faces, cameras = random_scene(seed, triangles, device)
    frags = cpu(rasterize(verts, faces, cameras))
    verts, faces, cameras = verts.cpu(), faces.cpu(), cameras.to("cpu")
    ref_id, ref_bary, ref_depth = reference_zbuffer(verts, faces, cameras)
    assert frags.face_id.shape == (4, 40, 48) and frags.bary.shape == (4, 40, 48, 3)
    agree = frags.face_id == ref_id
    assert agree.float().mean() >= 0.995
    assert (ref_id >= 0).float().mean() > 0.1  # the scene covers a good part of the images
    covered = agree & (ref_id >= 0)
    assert torch.allclose(frags.depth[covered].double(), ref_depth[covered], atol=1e-4, rtol=1e-5)
    assert torch.allclose(frags.bary[covered].double(), ref_bary[covered], atol=1e-3)
    background = frags.face_id < 0
    assert (frags.depth[background] == 0).all() and (frags.bary[background] == 0).all()


def test_interpolated_positions_are_the_ray_hits(device):
    verts, faces, cameras = random_scene(3, 120, device)
    frags = rasterize(verts, faces, cameras)
    points = interpolate(verts, faces, frags)  # [N, H, W, 3]
    dirs = cameras.pixel_directions()  # [N, H, W, 3]
    origins = cameras.centers[:, None, None].expand_as(dirs)
    face_id, t = RayCaster(verts, faces).cast(origins.reshape(-1, 3), dirs.reshape(-1, 3))
    assert torch.equal(face_id.reshape(frags.face_id.shape), frags.face_id)
    hit = face_id >= 0
    expected = origins.reshape(-1, 3)[hit] + t[hit, None] * dirs.reshape(-1, 3)[hit]
    assert (points.reshape(-1, 3)[hit] - expected).abs().max() < 1e-4
    assert (points.reshape(-1, 3)[~hit] == 0).all()


def test_raycaster_misses_and_backfaces(device):
    verts = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]], device=device)
    caster = RayCaster(verts, torch.tensor([[0, 1, 2]], device=device))
    origins = torch.tensor([[0.2, 0.2, 1.0], [0.2, 0.2, -2.0], [2.0, 2.0, 1.0], [0.2, 0.2, 1.0]], device=device)
    dirs = torch.tensor([[0.0, 0, -1], [0, 0, 1], [0, 0, -1], [0, 0, 1]], device=device)
    face_id, t = caster.cast(origins, dirs)
    assert face_id.tolist() == [0, 0, -1, -1] and face_id.dtype == torch.int64
    assert t[:2].tolist() == [1.0, 2.0] and t[2:].isinf().all()
    assert caster.cast(origins, dirs, max_t=1.5)[0].tolist() == [0, -1, -1, -1]
    empty = RayCaster(verts[:0], torch.zeros(0, 3, dtype=torch.long, device=device))  # no faces: every ray misses
    assert empty.cast(origins, dirs)[0].tolist() == [-1] * 4


def big_triangle_scene(device: str = "cpu"):
    verts = torch.tensor([[-0.9, -0.7, 0.1], [0.8, -0.45, -0.2], [-0.15, 0.85, 0.05]], device=device)
    faces = torch.tensor([[0, 1, 2]], device=device)
    cameras = look_at_cameras(torch.tensor([[0.3, -0.4, 3.0], [-1.0, 0.5, 2.6]]), 64, 56, 60.0).to(device)
    return verts, faces, cameras


def screen_area(verts: torch.Tensor, cameras: Cameras) -> torch.Tensor:
    """Total area in pixels of the projected triangle over all views (shoelace)."""
    screen, _ = cameras.project(verts)  # [N, 3, 2]
    x, y = screen[..., 0], screen[..., 1]
    return 0.5 * (x * (y.roll(-1, 1) - y.roll(1, 1))).sum(-1).abs().sum()


def test_antialias_coverage_area_and_gradient(device):
    verts, faces, cameras = big_triangle_scene(device)
    verts = verts.clone().requires_grad_(True)
    frags = rasterize(verts, faces, cameras)
    coverage = interpolate(torch.ones(3, 1, device=device), faces, frags)  # [N, H, W, 1], 1 inside, 0 outside
    smooth = antialias(coverage, frags, verts, faces, cameras)
    area = float(screen_area(verts.detach(), cameras))
    smooth_area, raster_area = float(smooth.detach().sum()), float(coverage.detach().sum())
    assert abs(smooth_area - area) < 0.01 * area
    assert abs(raster_area - area) > abs(smooth_area - area)

    (gradient,) = torch.autograd.grad(smooth.sum(), verts)
    gradient, cameras = gradient.cpu(), cameras.to("cpu")
    eps, reference = 1e-3, torch.zeros(3, 3, dtype=torch.float64)
    base = verts.detach().cpu().double()
    double_cams = Cameras(cameras.c2w.double(), cameras.fx.double(), cameras.fy.double(), cameras.cx.double(),
                          cameras.cy.double(), cameras.width, cameras.height)
    for i in range(3):
        for j in range(3):
            step = torch.zeros(3, 3, dtype=torch.float64)
            step[i, j] = eps
            difference = screen_area(base + step, double_cams) - screen_area(base - step, double_cams)
            reference[i, j] = difference / (2 * eps)
    assert (gradient.double() - reference).norm() < 0.1 * reference.norm()


def test_coverage_has_no_gradient_without_antialias(device):
    verts, faces, cameras = big_triangle_scene(device)
    verts = verts.clone().requires_grad_(True)
    coverage = interpolate(torch.ones(3, 1, device=device), faces, rasterize(verts, faces, cameras))
    (gradient,) = torch.autograd.grad(coverage.sum(), verts)
    assert gradient.abs().max() < 1e-3


def test_antialias_keeps_interior_edges_and_background(device):
    # Two triangles sharing an edge, both facing the camera: only the outer boundary blends.
    verts = torch.tensor([[-0.8, -0.8, 0.0], [0.8, -0.7, 0.0], [0.7, 0.8, 0.0], [-0.75, 0.7, 0.0]], device=device)
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]], device=device)
    cameras = look_at_cameras(torch.tensor([[0.0, -0.01, 3.0]]), 40, 40, 40.0).to(device)
    frags = rasterize(verts, faces, cameras)
    shade = torch.tensor([0.0, 1.0, 0.3], device=device)[frags.face_id + 1]  # [1, H, W]: background 0, faces 1, 0.3
    color = shade[..., None] * torch.tensor([1.0, 0.5], device=device)  # [1, H, W, 2]
    smooth = antialias(color, frags, verts, faces, cameras)
    covered = (frags.face_id >= 0).float()[:, None]  # [1, 1, H, W]
    inside = -torch.nn.functional.max_pool2d(-covered, 3, stride=1, padding=1)[:, 0] > 0  # 8-connected
    assert (frags.face_id[inside] == 0).any() and (frags.face_id[inside] == 1).any()
    assert torch.equal(smooth[inside], color[inside])  # the diagonal shared edge is not a silhouette
    assert not torch.equal(smooth, color)
    assert torch.allclose(smooth[..., 1], 0.5 * smooth[..., 0])


def test_texture_orientation_and_gradient(device):
    texture = torch.zeros(4, 6, 3, device=device)
    texture[0, :, 0] = 1.0  # top row red
    texture[-1, :, 2] = 1.0  # bottom row blue
    texture[:, 0, 1] = 1.0  # left column green
    texture.requires_grad_(True)
    uv = torch.tensor([[0.5, 0.97], [0.5, 0.03], [0.02, 0.5]], device=device).reshape(1, 1, 3, 2).requires_grad_(True)
    sampled = sample_texture(texture, uv)  # [1, 1, 3, 3]
    assert torch.allclose(sampled[0, 0], torch.tensor([[1.0, 0, 0], [0, 0, 1], [0, 1, 0]], device=device))
    uv_mid = torch.tensor([0.5, 0.75], device=device).reshape(1, 1, 1, 2).requires_grad_(True)  # between rows 0, 1
    red = sample_texture(texture, uv_mid)[..., 0].sum()
    uv_grad, texture_grad = torch.autograd.grad(red, [uv_mid, texture])
    assert uv_grad[..., 1] > 0 and texture_grad[:2, :, 0].sum() > 0.99


def test_spot_coverage_matches_alpha(datasets):
    folder = datasets / "spot"
    mesh = trimesh.load(folder / "gt_mesh.ply", process=False)
    meta = json.loads((folder / "transforms_train.json").read_text())
    size = 256
    focal = 0.5 * size / math.tan(0.5 * meta["camera_angle_x"])
    frames = meta["frames"][:4]
    c2w = torch.tensor([frame["transform_matrix"] for frame in frames], dtype=torch.float32)
    full = torch.full((4,), focal)
    cameras = Cameras(c2w, full, full, torch.full((4,), size / 2), torch.full((4,), size / 2), size, size)
    verts = torch.tensor(mesh.vertices, dtype=torch.float32)
    faces = torch.tensor(mesh.faces, dtype=torch.long)
    frags = rasterize(verts, faces, cameras)
    covered = frags.face_id >= 0  # [4, 256, 256]
    smooth = antialias(covered.float()[..., None], frags, verts, faces, cameras)[..., 0]  # [4, 256, 256]
    for k, frame in enumerate(frames):
        alpha = torch.from_numpy(np.asarray(Image.open(folder / f"{frame['file_path']}.png"))[..., 3] / 255.0)
        iou = (covered[k] & (alpha > 0.5)).sum() / (covered[k] | (alpha > 0.5)).sum()
        assert iou >= 0.97, f"view {k}: IoU {float(iou):.4f}"
        # Blender's alpha is pixel coverage: antialiasing brings the silhouette closer to it.
        assert (smooth[k] - alpha).abs().sum() < 0.9 * (covered[k].double() - alpha).abs().sum()


def test_engine_import_and_render_print_nothing():
    code = (
        "import torch; from engine.render import rasterize; from tests.engine.test_render import random_scene;"
        "rasterize(*random_scene(0, 10))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout == ""


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    verts, faces, cameras = random_scene(4, 150)
    verts = verts.requires_grad_(True)
    results = []
    for device in ("cpu", "cuda"):
        v = verts.to(device)
        frags = rasterize(v, faces.to(device), cameras.to(device))
        cams, tris = cameras.to(device), faces.to(device)
        image = antialias(interpolate(v, tris, frags), frags, v, tris, cams)
        (gradient,) = torch.autograd.grad(image.sum(), verts)
        results.append((frags.face_id.cpu(), image.detach().cpu(), gradient.cpu()))
    (cpu_id, cpu_image, cpu_grad), (gpu_id, gpu_image, gpu_grad) = results
    assert (cpu_id == gpu_id).float().mean() > 0.999
    same = (cpu_id == gpu_id).all(0)
    assert torch.allclose(cpu_image[:, same], gpu_image[:, same], atol=1e-3)
    assert torch.allclose(cpu_grad, gpu_grad, rtol=0.05, atol=1e-2 * float(cpu_grad.abs().max()))
