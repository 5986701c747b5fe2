"""The transforms.json loader: its flavours, and a clear error for every kind of bad input."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.data.transforms import load_split
from engine.errors import InputError
from tests.support import write_disc_dataset


def rewrite(folder: Path, edit) -> None:
    path = folder / "transforms_train.json"
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))


def test_nerf_synthetic_split(datasets):
    split = load_split(datasets / "spot", "train")
    assert split.images.shape == (100, 256, 256, 3) and split.masks.shape == (100, 256, 256)
    meta = json.loads((datasets / "spot" / "transforms_train.json").read_text())
    assert math.isclose(float(split.cameras.fx[0]), 128 / math.tan(meta["camera_angle_x"] / 2), rel_tol=1e-6)
    assert torch.allclose(split.cameras.c2w[3], torch.tensor(meta["frames"][3]["transform_matrix"]))
    assert split.names[0] == "train/r_0.png"


def test_scale_and_subset(datasets):
    split = load_split(datasets / "spot", "test", scale=0.5, max_views=5)
    assert split.images.shape == (5, 128, 128, 3)
    assert split.names[0] == "test/r_0.png" and split.names[-1] == "test/r_19.png"
    assert math.isclose(float(split.cameras.cx[0]), 64.0)
    # premultiplied resizing: colours of border pixels are not darkened by the transparent background
    full = load_split(datasets / "spot", "test", max_views=5)
    inside = split.masks > 0.05
    assert split.images[inside].mean() > 0.9 * full.images[full.masks > 0.5].mean()


def test_photos_without_alpha_have_no_masks(datasets):
    split = load_split(datasets / "spot-tabletop", "train", max_views=4)
    assert split.masks is None and split.images.shape == (4, 240, 320, 3)


def test_instant_ngp_intrinsics_per_frame_and_rescaled(tmp_path):
    folder = write_disc_dataset(tmp_path / "d", size=32)

    def edit(meta):
        del meta["camera_angle_x"]
        meta.update({"fl_x": 100.0, "fl_y": 90.0, "cx": 31.0, "cy": 33.0, "w": 64, "h": 64})
        meta["frames"][1]["fl_x"] = 120.0  # per-frame value wins
        for frame in meta["frames"]:
            frame["file_path"] += ".png"  # with the extension this time

    rewrite(folder, edit)
    split = load_split(folder)
    assert split.cameras.fx.tolist() == pytest.approx([50.0, 60.0, 50, 50, 50, 50])  # images are half of w/h
    assert float(split.cameras.fy[0]) == pytest.approx(45.0)
    assert float(split.cameras.cx[0]) == pytest.approx(15.5)


def test_mask_path_overrides_alpha(tmp_path):
    folder = write_disc_dataset(tmp_path / "d", size=32)
    mask = np.zeros((32, 32), np.uint8)
    mask[8:24, 8:24] = 255
    Image.fromarray(mask).save(folder / "mask.png")
    rewrite(folder, lambda meta: [frame.update(mask_path="mask.png") for frame in meta["frames"]])
    split = load_split(folder)
    assert float(split.masks[0].sum()) == 256.0


# ---- bad input: each case raises InputError with a message that says what is wrong ----

def expect_error(folder: Path, fragment: str, **kwargs) -> None:
    with pytest.raises(InputError) as info:
        load_split(folder, **kwargs)
    assert fragment in str(info.value)


def test_missing_dataset(tmp_path):
    expect_error(tmp_path / "nothing", "not found")


def test_missing_transforms(tmp_path):
    tmp_path.joinpath("empty").mkdir()
    expect_error(tmp_path / "empty", "transforms_train.json")


def test_invalid_json(tmp_path):
    folder = write_disc_dataset(tmp_path / "d")
    (folder / "transforms_train.json").write_text("{ not json")
    expect_error(folder, "not valid JSON")


def test_missing_image(tmp_path):
    folder = write_disc_dataset(tmp_path / "d")
    (folder / "train" / "r_2.png").unlink()
    expect_error(folder, "Image not found for frame 2")


def test_unreadable_image(tmp_path):
    folder = write_disc_dataset(tmp_path / "d")
    (folder / "train" / "r_1.png").write_bytes(b"\x89PNG broken")
    expect_error(folder, "Cannot read image")


def test_images_of_different_sizes(tmp_path):
    folder = write_disc_dataset(tmp_path / "d", size=32)
    Image.new("RGBA", (40, 32)).save(folder / "train" / "r_3.png")
    expect_error(folder, "different sizes")


def test_non_finite_matrix(tmp_path):
    folder = write_disc_dataset(tmp_path / "d")

    def edit(meta):
        meta["frames"][0]["transform_matrix"][0][3] = float("nan")

    rewrite(folder, edit)
    # json.dumps writes NaN, which Python's json reads back: the loader must catch it
    expect_error(folder, "NaN or infinite")


def test_non_rigid_matrix(tmp_path):
    folder = write_disc_dataset(tmp_path / "d")

    def edit(meta):
        matrix = np.array(meta["frames"][4]["transform_matrix"])
        matrix[:3, :3] *= 2.0
        meta["frames"][4]["transform_matrix"] = matrix.tolist()

    rewrite(folder, edit)
    expect_error(folder, "not rigid")


def test_empty_masks(tmp_path):
    folder = write_disc_dataset(tmp_path / "d")
    Image.new("RGBA", (32, 32)).save(folder / "train" / "r_5.png")
    expect_error(folder, "show no object (train/r_5.png)")


def test_too_few_views(tmp_path):
    folder = write_disc_dataset(tmp_path / "d", count=2)
    expect_error(folder, "at least 3")


def test_masks_required(datasets):
    expect_error(datasets / "spot-tabletop", "no object masks", require_masks=True, max_views=3)
