import math

import torch

from engine.cameras import Cameras
from tests.support import orbit_c2w


def make_cameras() -> Cameras:
    c2w = torch.tensor(orbit_c2w(5), dtype=torch.float64)
    n = len(c2w)
    return Cameras(c2w, torch.full((n,), 300.0, dtype=torch.float64), torch.full((n,), 280.0, dtype=torch.float64),
                   torch.linspace(60, 70, n, dtype=torch.float64), torch.linspace(45, 50, n, dtype=torch.float64),
                   128, 96)


def test_opencv_round_trip_is_exact():
    cams = make_cameras()
    w2c, k = cams.to_opencv()
    back = Cameras.from_opencv(w2c, k, cams.width, cams.height)
    assert torch.allclose(back.c2w, cams.c2w, atol=1e-12)
    for a, b in ((back.fx, cams.fx), (back.fy, cams.fy), (back.cx, cams.cx), (back.cy, cams.cy)):
        assert torch.equal(a, b)
    # 3x4 [R|t] as COLMAP stores it gives the same cameras
    assert torch.allclose(Cameras.from_opencv(w2c[:, :3], k, 128, 96).c2w, cams.c2w, atol=1e-12)


def test_opencv_projection_matches_engine_projection():
    cams = make_cameras()
    points = torch.randn(50, 3, dtype=torch.float64) * 0.5
    pixels, depth = cams.project(points)
    w2c, k = cams.to_opencv()
    cam = points[None] @ w2c[:, :3, :3].transpose(1, 2) + w2c[:, None, :3, 3]  # OpenCV camera space
    assert torch.allclose(cam[..., 2], depth, atol=1e-12)  # +Z forward in OpenCV = depth
    uvw = cam @ k.transpose(1, 2)
    assert torch.allclose(uvw[..., :2] / uvw[..., 2:], pixels, atol=1e-9)


def test_pixel_rays_pass_through_pixel_centres():
    cams = make_cameras()
    dirs = cams.pixel_directions()  # [N, H, W, 3]
    points = cams.centers[:, None, None] + 2.0 * dirs
    for i in range(len(cams)):
        pixels, depth = cams[i].project(points[i].reshape(-1, 3))
        expected = torch.stack(torch.meshgrid(torch.arange(96) + 0.5, torch.arange(128) + 0.5, indexing="ij")[::-1],
                               dim=-1).reshape(-1, 2).double()
        assert torch.allclose(pixels[0], expected, atol=1e-9)
        assert (depth > 0).all()


def test_camera_looks_down_minus_z_with_y_up():
    cams = make_cameras()[0:1]
    c2w = cams.c2w[0]
    ahead = c2w[:3, 3] - c2w[:3, 2]  # one unit along the camera's -Z
    above = ahead + 0.1 * c2w[:3, 1]  # a little along +Y
    pixels, depth = cams.project(torch.stack([ahead, above]))
    assert math.isclose(float(depth[0, 0]), 1.0, abs_tol=1e-9)
    assert torch.allclose(pixels[0, 0], torch.stack([cams.cx[0], cams.cy[0]]))
    assert pixels[0, 1, 1] < pixels[0, 0, 1]  # up in the world is up in the image (smaller row)


def test_scaled_keeps_image_borders():
    cams = make_cameras()
    half = cams.scaled(0.5)
    assert (half.width, half.height) == (64, 48)
    point = torch.tensor([[0.1, -0.2, 0.3]], dtype=torch.float64)
    full_px, _ = cams.project(point)
    half_px, _ = half.project(point)
    assert torch.allclose(half_px, full_px * 0.5)
