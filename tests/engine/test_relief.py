"""``relief``: one image and its normal or depth map -> a textured height-field mesh (``engine.relief``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh
from PIL import Image

from engine.errors import InputError
from engine.progress import Progress
from engine.protocol import ReliefJob
from engine.relief import integrate_normals, relief
from tests.support import run_engine

SIZE = 64
WIDTH = 2.0


def grid_points() -> tuple[np.ndarray, np.ndarray]:
    """``(x, z)`` ``[SIZE, SIZE]`` of the relief's grid points (image right = +X, image up = +Z)."""
    step = WIDTH / (SIZE - 1)
    columns, rows = np.meshgrid(np.arange(SIZE), np.arange(SIZE))
    return (columns - (SIZE - 1) / 2) * step, ((SIZE - 1) / 2 - rows) * step


def bump(x: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A Gaussian bump ``h`` (scene units) and its camera-space unit normals ``[..., 3]`` (OpenGL axes:
    +X right, +Y up, +Z towards the viewer, who looks at the relief's front)."""
    h = 0.4 * np.exp(-((x - 0.2) ** 2 + (z + 0.1) ** 2) / 0.2)
    dx, dz = h * -2 * (x - 0.2) / 0.2, h * -2 * (z + 0.1) / 0.2
    normals = np.stack([-dx, -dz, np.ones_like(h)], -1)
    return h, normals / np.linalg.norm(normals, axis=-1, keepdims=True)


def write_image(path, alpha: np.ndarray | None = None) -> None:
    rgb = np.full((SIZE, SIZE, 3), 180, np.uint8)
    rgb[:, : SIZE // 2, 0] = 40  # the left half bluish: the texture is the image
    layers = [rgb] if alpha is None else [rgb, alpha[..., None]]
    Image.fromarray(np.concatenate(layers, -1)).save(path)


def test_normal_integration_recovers_a_known_height_field():
    x, z = grid_points()
    h, normals = bump(x, z)
    step = WIDTH / (SIZE - 1)
    heights = integrate_normals(normals, np.ones((SIZE, SIZE), bool)) * step
    error = (heights - h) - (heights - h).mean()  # up to a constant
    assert np.abs(error).mean() < 0.005 * (h.max() - h.min())
    flat = integrate_normals(np.broadcast_to([0.0, 0.0, 1.0], (SIZE, SIZE, 3)), np.ones((SIZE, SIZE), bool))
    assert np.abs(flat).max() < 1e-6


@pytest.mark.parametrize("kind", ["npy", "png"])
def test_relief_from_a_normal_map_has_the_heights_within_two_percent(tmp_path, kind):
    x, z = grid_points()
    h, normals = bump(x, z)
    alpha = np.full((SIZE, SIZE), 255, np.uint8)
    alpha[:4] = 0  # a transparent top strip is left out
    write_image(tmp_path / "image.png", alpha)
    if kind == "npy":
        np.save(tmp_path / "normals.npy", normals.astype(np.float32))
    else:  # an 8-bit normal map, as they usually come
        Image.fromarray(np.round((normals + 1) / 2 * 255).astype(np.uint8), "RGB").save(tmp_path / "normals.png")
    result = relief(ReliefJob(image=str(tmp_path / "image.png"), out=str(tmp_path / "out"),
                              normals=str(tmp_path / f"normals.{kind}"), options={"width": WIDTH}),
                    Progress(lambda _event: None))
    mesh = trimesh.load(result["files"]["obj"], force="mesh", process=False)
    assert mesh.vertices[:, 2].max() < z[3, 0] + 1e-4  # nothing above the transparent strip
    truth = bump(mesh.vertices[:, 0], mesh.vertices[:, 2])[0]
    error = -mesh.vertices[:, 1] - truth  # the relief faces -Y
    error -= error.mean()
    assert np.abs(error).mean() < 0.02 * (h.max() - h.min())
    assert (tmp_path / "out" / "image.glb").is_file() and result["report"]["source"] == "normal map"
    faces_front = mesh.face_normals[:, 1] < 0  # counter-clockwise seen from the front (-Y)
    assert faces_front.mean() > 0.99


def test_relief_from_a_depth_map_on_the_command_line(tmp_path):
    write_image(tmp_path / "image.png")
    depth = np.full((SIZE, SIZE), 3.0, np.float32)
    depth[20:40, 20:40] = 2.5  # a square nearer the camera by 0.5
    np.save(tmp_path / "depth.npy", depth)
    done = run_engine("relief", str(tmp_path / "image.png"), "--depth", str(tmp_path / "depth.npy"), "--out",
                      str(tmp_path / "out"), "-o", f"width={WIDTH}", "-o", "field_of_view=60", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    # a depth step dD at the median depth D rises dD * width / (2 D tan(fov / 2))
    expected = 0.5 * WIDTH / (2 * 3.0 * np.tan(np.radians(30)))
    assert report["height_range"] == pytest.approx(expected, rel=0.01)
    mesh = trimesh.load(tmp_path / "out" / "image.obj", force="mesh", process=False)
    raised = -mesh.vertices[:, 1] > expected / 2
    assert 0.05 < raised.mean() < 0.15  # the square's share of the image (20² of 64²), nearer is higher


def test_relief_needs_exactly_one_map(tmp_path):
    write_image(tmp_path / "image.png")
    with pytest.raises(InputError, match="either a depth map or a normal map"):
        relief(ReliefJob(image=str(tmp_path / "image.png"), out=str(tmp_path / "out")), Progress(lambda _e: None))
    np.save(tmp_path / "small.npy", np.ones((8, 8), np.float32))
    done = run_engine("relief", str(tmp_path / "image.png"), "--depth", str(tmp_path / "small.npy"), "--out",
                      str(tmp_path / "bad"))
    assert done.returncode == 2 and "8x8 pixels but its image is 64x64" in done.stderr
    assert "Traceback" not in done.stderr
