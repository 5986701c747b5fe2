"""Relief from Image, through the real worker: a normal map becomes a textured relief at the 3D cursor."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.addon.blender import snapshot, submodule

pytestmark = pytest.mark.usefixtures("addon", "empty_scene", "prefs")

SIZE = 48


def write_inputs(folder):
    """A 48² image (red left half, grey right half) and the normal map of a dome (camera space)."""
    rgb = np.full((SIZE, SIZE, 3), 200, np.uint8)
    rgb[:, : SIZE // 2, 1:] = 30
    Image.fromarray(rgb).save(folder / "picture.png")
    x, y = np.meshgrid(np.linspace(-1, 1, SIZE), np.linspace(1, -1, SIZE))  # image up = +y
    h = 0.3 * np.exp(-(x**2 + y**2) / 0.3)  # heights in units of half the width
    normals = np.stack([-h * -2 * x / 0.3, -h * -2 * y / 0.3, np.ones_like(h)], -1)
    np.save(folder / "normals.npy", (normals / np.linalg.norm(normals, axis=-1, keepdims=True)).astype(np.float32))
    return folder / "picture.png", folder / "normals.npy"


def test_relief_from_image_adds_a_textured_relief_at_the_cursor(tmp_path):
    import bpy

    image, normals = write_inputs(tmp_path)
    bpy.context.scene.cursor.location = (1.0, 2.0, 3.0)
    before = snapshot()
    result = bpy.ops.meshlift.relief_image(filepath=str(image), map_path=str(normals), source="NORMALS", width=2.0)
    assert result == {"FINISHED"}, submodule("operators.scene_job").STATUS.message
    after = snapshot()
    new = set(after["objects"]) - set(before["objects"])
    assert new == {"picture"}
    obj = bpy.data.objects["picture"]
    assert tuple(obj.location) == pytest.approx((1.0, 2.0, 3.0))
    positions = np.zeros(len(obj.data.vertices) * 3)
    obj.data.vertices.foreach_get("co", positions)
    positions = positions.reshape(-1, 3)
    assert np.ptp(positions[:, 0]) == pytest.approx(2.0, rel=0.01)  # the width along X, up along Z
    assert np.ptp(positions[:, 2]) == pytest.approx(2.0, rel=0.01)
    assert np.ptp(positions[:, 1]) == pytest.approx(0.3, rel=0.1)  # the dome's height, towards -Y (the front)
    assert positions[np.argmin(np.linalg.norm(positions[:, [0, 2]], axis=1)), 1] < positions[:, 1].max() - 0.25
    texture = obj.data.materials[0].node_tree.nodes["Meshlift Texture"]
    pixels = np.array(texture.image.pixels[:]).reshape(texture.image.size[1], texture.image.size[0], 4)
    left, right = pixels[:, : SIZE // 2 - 2], pixels[:, SIZE // 2 + 2:]
    assert (left[..., 0] - left[..., 1]).mean() > 0.4 and abs((right[..., 0] - right[..., 1]).mean()) < 0.05
    status = submodule("operators.scene_job").STATUS
    assert status.state == "done" and status.message == "Added 'picture'"


def test_relief_from_image_needs_its_map(tmp_path):
    import bpy

    image, _normals = write_inputs(tmp_path)
    before = snapshot()
    with pytest.raises(RuntimeError, match="Choose a depth map"):
        bpy.ops.meshlift.relief_image(filepath=str(image), source="DEPTH")
    Image.open(image).save(tmp_path / "picture.jpg")
    with pytest.raises(RuntimeError, match=r"picture\.jpg is not a normal map"):
        bpy.ops.meshlift.relief_image(filepath=str(image), map_path=str(tmp_path / "picture.jpg"), source="NORMALS")
    assert snapshot() == before
