"""Scene cameras -> dataset: the intrinsics agree with Blender's own projection, renders are RGBA
with the scene's settings (restored afterwards), background images are used when present."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.addon.blender import build_scene, snapshot, submodule

pytestmark = pytest.mark.usefixtures("addon", "empty_scene", "prefs")

CASES = [  # sensor fit, resolution x, y, percentage, pixel aspect x, y, shift x, y, lens
    ("AUTO", 640, 480, 100, 1, 1, 0.0, 0.0, 50),
    ("AUTO", 480, 640, 100, 1, 1, 0.1, -0.05, 35),
    ("HORIZONTAL", 300, 500, 50, 1, 1, -0.2, 0.1, 80),
    ("VERTICAL", 800, 400, 100, 1, 1, 0.05, 0.15, 24),
    ("AUTO", 640, 480, 75, 2, 1, 0.1, 0.1, 50),
    ("VERTICAL", 500, 500, 100, 1, 3, -0.1, 0.2, 60),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[1]}x{c[2]}-asp{c[4]}:{c[5]}" for c in CASES])
def test_intrinsics_project_like_blender(case):
    import bpy
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    fit, res_x, res_y, percentage, aspect_x, aspect_y, shift_x, shift_y, lens = case
    scene = bpy.context.scene
    render = scene.render
    render.resolution_x, render.resolution_y, render.resolution_percentage = res_x, res_y, percentage
    render.pixel_aspect_x, render.pixel_aspect_y = aspect_x, aspect_y
    camera = bpy.data.objects.new("Cam", bpy.data.cameras.new("Cam"))
    scene.collection.objects.link(camera)
    camera.data.sensor_fit, camera.data.lens = fit, lens
    camera.data.sensor_width, camera.data.sensor_height = 36.0, 20.0
    camera.data.shift_x, camera.data.shift_y = shift_x, shift_y
    camera.location = (1.0, -4.0, 2.0)
    camera.rotation_euler = (1.2, 0.1, 0.3)
    bpy.context.view_layer.update()

    k = submodule("operators.dataset").frame_intrinsics(scene, camera)
    width, height = k["w"], k["h"]
    assert (width, height) == (res_x * percentage // 100, res_y * percentage // 100)
    world_to_camera = camera.matrix_world.inverted()
    rng = np.random.default_rng(0)
    for _ in range(20):
        # a point inside the view: a random pixel direction at a random depth
        local = Vector((rng.uniform(-0.4, 0.4), rng.uniform(-0.3, 0.3), -1.0)) * rng.uniform(2, 10)
        world = camera.matrix_world @ local
        x, y, z = world_to_camera_view(scene, camera, world)
        blender_px, blender_py = x * width, (1.0 - y) * height
        cam = world_to_camera @ world
        depth = -cam.z
        px = k["cx"] + k["fl_x"] * cam.x / depth
        py = k["cy"] - k["fl_y"] * cam.y / depth
        assert z == pytest.approx(depth, rel=1e-5)
        assert (px, py) == pytest.approx((blender_px, blender_py), abs=1e-3 * max(width, height))


def test_export_renders_rgba_and_uses_background_images(tmp_path):
    import bpy

    scene = bpy.context.scene
    build_scene(scene, cameras=16, size=48)
    cameras = [scene.objects[f"Cam.{i:03d}"] for i in (0, 3, 7, 12)]
    # camera 3 has a photo: it is copied, not rendered
    photo = tmp_path / "photo.png"
    Image.new("RGBA", (96, 96), (10, 200, 30, 255)).save(photo)
    background = cameras[1].data.background_images.new()
    background.image = bpy.data.images.load(str(photo))
    render = scene.render
    render.film_transparent = False
    render.image_settings.file_format = "JPEG"
    render.filepath = "//keep/me"
    before = snapshot()

    folder = tmp_path / "dataset"
    seen = []
    path = submodule("operators.dataset").export_cameras(scene, bpy.context.view_layer, cameras, folder,
                                                         lambda i, n, name: seen.append((i, n, name)))
    assert snapshot() == before  # render settings, active camera and data all restored
    assert seen[0] == (0, 4, "Cam.000") and seen[-1] == (4, 4, "")
    content = json.loads(path.read_text())
    frames = content["frames"]
    assert [f["camera"] for f in frames] == ["Cam.000", "Cam.003", "Cam.007", "Cam.012"]
    for frame, camera in zip(frames, cameras, strict=True):
        assert np.allclose(frame["transform_matrix"], np.array(camera.matrix_world), atol=1e-6)
        assert (frame["w"], frame["h"]) == (48, 48)
        image = Image.open(folder / frame["file_path"])
        if camera.name == "Cam.003":
            assert image.size == (96, 96) and image.getpixel((5, 5)) == (10, 200, 30, 255)
        else:
            assert image.mode == "RGBA" and image.size == (48, 48)
            alpha = np.asarray(image)[..., 3]
            assert alpha[0, 0] == 0 and alpha.max() == 255  # film transparent: the object only
