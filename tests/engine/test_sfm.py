"""Photos without poses: COLMAP <-> engine cameras, SfM on real photos, masks, and bad input."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pycolmap
import pytest
import torch
import trimesh
from meshlift.bridge.camera_math import Intrinsics, blender_camera_settings, camera_intrinsics
from PIL import Image

from engine.cameras import Cameras
from engine.data.transforms import load_split
from engine.errors import InputError
from engine.progress import Progress
from engine.render import rasterize
from engine.roi import Normalization, crop_to_region
from engine.sfm.align import pose_errors
from engine.sfm.colmap import read_model
from engine.sfm.object_hints import stored_object_hints
from engine.sfm.poses import recover_poses
from tests.support import orbit_c2w, run_engine, write_disc_dataset


def quiet() -> Progress:
    return Progress(lambda _event: None)


def test_colmap_model_round_trip_is_exact(tmp_path):
    """Known engine cameras written as a COLMAP model (OpenCV poses, PINHOLE) read back identical,
    and COLMAP projects a point to the same pixel as the engine."""
    c2w = torch.tensor(orbit_c2w(5, distance=3.0, elevation=0.5))  # [5, 4, 4]
    c2w[:, :3, 3] += torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64)
    n = len(c2w)
    fx = torch.linspace(300.0, 340.0, n, dtype=torch.float64)
    cameras = Cameras(c2w, fx, fx * 1.01, torch.full((n,), 161.5, dtype=torch.float64),
                      torch.full((n,), 119.25, dtype=torch.float64), 320, 240)
    w2c, k = cameras.to_opencv()
    model = pycolmap.Reconstruction()
    for i in range(n):
        camera = pycolmap.Camera.create_from_model_name(i + 1, "PINHOLE", 1.0, 320, 240)
        camera.params = [float(k[i, 0, 0]), float(k[i, 1, 1]), float(k[i, 0, 2]), float(k[i, 1, 2])]
        model.add_camera_with_trivial_rig(camera)
        image = pycolmap.Image(name=f"view_{i}.png", camera_id=i + 1, image_id=i + 1)
        model.add_image_with_trivial_frame(image, pycolmap.Rigid3d(w2c[i, :3, :].numpy()))
    model.write(tmp_path)

    back = read_model(tmp_path, tmp_path)
    assert back.names == [f"view_{i}.png" for i in range(n)]
    torch.testing.assert_close(back.cameras.c2w, c2w, atol=1e-12, rtol=0)
    for name in ("fx", "fy", "cx", "cy"):
        torch.testing.assert_close(getattr(back.cameras, name), getattr(cameras, name), atol=1e-12, rtol=0)
    point = np.array([0.2, 0.1, -0.3])
    engine_pixels, _ = cameras.project(torch.tensor(point)[None])  # [N, 1, 2]
    for i in range(n):
        image = model.image(i + 1)
        colmap_pixel = image.camera.img_from_cam(image.cam_from_world() * point)
        np.testing.assert_allclose(colmap_pixel, engine_pixels[i, 0].numpy(), atol=1e-9)


def test_sfm_recovers_thirty_photos_with_upright_frame_and_masks(datasets, tmp_path):
    """30 of spot-tabletop's photos (poses ignored; 20 spread over the hemisphere overlap too little
    for SIFT): cameras within bounds of the true ones after a similarity, +Z up, and automatic
    masks that match the true silhouettes."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(0, 60, 2):
        (photos / f"r_{i}.jpg").symlink_to(datasets / "spot-tabletop" / "train" / f"r_{i}.jpg")
    transforms = recover_poses(photos, tmp_path / "cameras", quiet())
    recovered = load_split(transforms)
    assert len(recovered) >= 27
    given = load_split(datasets / "spot-tabletop")
    index = [given.names.index(f"train/{Path(name).name}") for name in recovered.names]
    errors, similarity = pose_errors(recovered.cameras, given.cameras[index])
    assert np.median(errors.rotation_deg) <= 0.5
    assert np.median(errors.centre_relative) <= 0.015
    up = similarity.rotation @ np.array([0.0, 0.0, 1.0])
    assert math.degrees(math.acos(min(1.0, up[2]))) < 2.0, "the recovered frame is not upright"

    gt = trimesh.load(datasets / "spot-tabletop" / "gt_mesh.ply")
    covered = rasterize(torch.tensor(gt.vertices, dtype=torch.float32), torch.tensor(gt.faces),
                        given.cameras[index]).face_id >= 0  # [N, H, W]
    masks = recovered.masks > 0.5
    iou = (covered & masks).sum((1, 2)) / (covered | masks).sum((1, 2))
    assert float(iou.median()) >= 0.8, f"mask IoU {iou.tolist()}"
    assert float((covered & ~masks).sum() / covered.sum()) < 0.05, "the masks cut into the object"


def test_object_hints_find_the_table_and_the_object(tabletop_hints, datasets):
    """Given cameras, no masks: the table plane under the object (SfM points aligned to the given
    cameras), a box around the object on it, and automatic masks close to the true silhouettes."""
    split, hints = tabletop_hints
    gt = trimesh.load(datasets / "spot-tabletop" / "gt_mesh.ply")
    assert math.degrees(math.acos(min(1.0, float(hints.up[2])))) < 2.0, hints.up
    assert abs(float(hints.ground[2]) - gt.bounds[0, 2]) < 0.02, (hints.ground, gt.bounds)
    assert np.all(hints.box_min < gt.bounds[0]) and np.all(hints.box_max > gt.bounds[1])
    assert np.all(hints.box_max - hints.box_min < 2.0 * (gt.bounds[1] - gt.bounds[0]))
    covered = rasterize(torch.tensor(gt.vertices, dtype=torch.float32), torch.tensor(gt.faces),
                        split.cameras).face_id >= 0  # [N, H, W]
    masks = hints.masks > 0.5
    iou = (covered & masks).sum((1, 2)) / (covered | masks).sum((1, 2))
    assert float(iou.median()) >= 0.9, f"mask IoU {iou.tolist()}"


@pytest.mark.parametrize("masks, ground, expected", [("auto", True, True), ("user", True, False),
                                                     ("auto", False, False)])
def test_stored_hints_only_for_automatic_masks_on_a_table(tmp_path, masks, ground, expected):
    """A ``poses`` output with automatic masks and a table gives NeuS its start (the masks, +Z up,
    the table at z = 0, the box grown to take in a slab of table); user masks stay masks."""
    meta = {"region_of_interest": {"min": [-1.0, -1.0, 0.0], "max": [1.0, 1.0, 2.0]},
            "meshlift_sfm": {"masks": masks, "ground": ground}}
    split = load_split(write_disc_dataset(tmp_path, meta=meta))
    hints = stored_object_hints(tmp_path, split)
    assert (hints is not None) == expected
    if expected:
        assert hints.masks is split.masks
        np.testing.assert_allclose(hints.up, [0.0, 0.0, 1.0])
        np.testing.assert_allclose(hints.box_min, [-1.2, -1.2, -0.2])
        np.testing.assert_allclose(hints.box_max, [1.2, 1.2, 2.2])
        np.testing.assert_allclose(hints.ground, [0.0, 0.0, 0.0])


def test_noise_photos_give_a_clear_error(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)).save(tmp_path / f"noise_{i}.png")
    with pytest.raises(InputError, match=r"Only \d of 6 images could be placed"):
        recover_poses(tmp_path, tmp_path / "out", quiet())
    result = run_engine("poses", str(tmp_path), "--out", str(tmp_path / "cli"))
    assert result.returncode == 2
    assert "of 6 images could be placed" in result.stderr


def test_stored_region_crops_or_replaces_the_box():
    found = Normalization.from_box(torch.tensor([-1.0, -1.0, -0.5]), torch.tensor([1.0, 1.0, 1.5]))
    cut = crop_to_region(found, [-2.0, -2.0, 0.0, 2.0, 2.0, 2.0])
    lo = cut.to_world(torch.tensor(cut.box_min, dtype=torch.float64))
    hi = cut.to_world(torch.tensor(cut.box_max, dtype=torch.float64))
    torch.testing.assert_close(lo, torch.tensor([-1.0, -1.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(hi, torch.tensor([1.0, 1.0, 1.5], dtype=torch.float64))
    given = crop_to_region(found, [0.0, 0.0, 0.0, 4.0, 1.0, 1.0], replace=True)
    assert given.center == (2.0, 0.5, 0.5) and given.radius == 2.0
    with pytest.raises(InputError, match="six numbers"):
        crop_to_region(found, [0.0, 1.0])


@pytest.mark.parametrize("size", [(320, 240), (240, 320)])
def test_imported_blender_cameras_render_the_recovered_intrinsics(size):
    width, height = size
    given = Intrinsics(451.5, 451.5, 158.0, 123.5, width, height)
    settings = blender_camera_settings(given)
    back = camera_intrinsics(lens=settings["lens"], sensor_width=settings["sensor_width"],
                             sensor_height=settings["sensor_height"], sensor_fit=settings["sensor_fit"],
                             shift_x=settings["shift_x"], shift_y=settings["shift_y"], width=width, height=height)
    for key in ("fl_x", "fl_y", "cx", "cy"):
        assert getattr(back, key) == pytest.approx(getattr(given, key), abs=1e-9)
