"""Reconstruct from Photos in the real bpy: SfM through the worker, the mesh upright on the ground,
the recovered cameras imported, and a clear error when the photos do not register."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.addon.blender import FAST_OPTIONS, snapshot, submodule

pytestmark = pytest.mark.usefixtures("addon", "empty_scene", "prefs")


def test_photos_give_an_upright_mesh_and_their_cameras(datasets, tmp_path):
    import bpy

    photos = tmp_path / "spot_photos"
    photos.mkdir()
    for i in range(0, 60, 2):
        (photos / f"r_{i}.jpg").symlink_to(datasets / "spot-tabletop" / "train" / f"r_{i}.jpg")
    submodule("properties").load_methods()
    # the user's box: the automatic one is about 1.6 high, this one cuts the object at z = 1.2
    result = bpy.ops.meshlift.reconstruct_photos(directory=str(photos), import_cameras=True, use_region=True,
                                                 region_min=(-1.5, -1.5, 0.0), region_max=(1.5, 1.5, 1.2),
                                                 options=json.dumps(FAST_OPTIONS))
    assert result == {"FINISHED"}
    obj = bpy.data.objects["spot_photos"]
    points = np.array([v.co for v in obj.data.vertices]) @ np.array(obj.matrix_world)[:3, :3].T
    assert abs(points[:, 2].min()) < 0.05, "the mesh does not stand on the ground (z = 0)"
    assert 1.1 < points[:, 2].max() < 1.25, "the custom region (top at z = 1.2) was not used"
    cameras = bpy.data.collections["spot_photos Cameras"].objects
    assert len(cameras) >= 27 and all(c.type == "CAMERA" for c in cameras)
    assert min(c.matrix_world.translation.z for c in cameras) > points[:, 2].min()  # cameras look from above
    camera = cameras[0].data  # spot-tabletop: fx = 450 px at 320 px wide = 50.6 mm on a 36 mm sensor
    assert camera.sensor_fit == "HORIZONTAL" and abs(camera.lens - 450 * 36 / 320) < 2.0


def test_noise_photos_report_how_many_registered(tmp_path):
    import bpy

    rng = np.random.default_rng(1)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)).save(tmp_path / f"n_{i}.jpg")
    before = snapshot()
    with pytest.raises(RuntimeError, match=r"Only \d of 5 images could be placed"):
        bpy.ops.meshlift.reconstruct_photos(directory=str(tmp_path), options=json.dumps(FAST_OPTIONS))
    assert snapshot() == before
    assert submodule("operators.scene_job").STATUS.state == "error"
    (tmp_path / "empty").mkdir()
    with pytest.raises(RuntimeError, match="at least 3"):
        bpy.ops.meshlift.reconstruct_photos(directory=str(tmp_path / "empty"))
