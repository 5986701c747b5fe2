"""Depth and normal maps in a dataset (``engine.data.depth_maps``): every format reads back to the same
maps, in the engine's convention (depth along the optical axis, world normals), every bad map is one
plain sentence, and the input stage hands them to the methods in the unit volume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

from engine.data.transforms import load_split
from engine.errors import InputError
from engine.inputs import prepare_inputs
from engine.progress import Progress
from engine.protocol import ReconstructJob
from engine.render.maps import render_depth_normals
from engine.roi import find_roi
from engine.timings import Timings
from tests.support import write_depth_dataset, write_map


@pytest.fixture(scope="module")
def spot_maps(datasets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 views of spot with depth and normal maps rendered from its ground truth, as .npy."""
    return write_depth_dataset(datasets / "spot", tmp_path_factory.mktemp("maps") / "spot", views=8)


def rewrite(folder: Path, edit) -> None:
    path = folder / "transforms_train.json"
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))


def copy_dataset(source: Path, folder: Path) -> Path:
    """``source``'s camera files and maps (not its images, which they name by absolute path)."""
    folder.mkdir()
    (folder / "maps").mkdir()
    for path in source.glob("transforms_*.json"):
        (folder / path.name).write_text(path.read_text())
    for path in (source / "maps").iterdir():
        (folder / "maps" / path.name).write_bytes(path.read_bytes())
    return folder


def test_maps_are_in_the_engine_convention(spot_maps):
    split = load_split(spot_maps)
    assert split.depths.shape == (8, 256, 256) and split.normals.shape == (8, 256, 256, 3)
    # the object's pixels (alpha) are those with a depth, and every depth is a point of the object
    assert ((split.depths > 0).float() - (split.masks > 0.5).float()).abs().mean() < 0.01
    covered = split.depths > 0
    assert torch.allclose(split.normals[covered].norm(dim=-1), torch.ones(1), atol=1e-4)
    assert (split.normals[~covered] == 0).all()
    points = split.cameras.unproject(split.depths)[covered]
    assert points.norm(dim=-1).max() < 1.01  # the object fits the unit sphere
    # normals face the cameras that see them
    directions = split.cameras.pixel_directions()[covered]
    assert ((split.normals[covered] * directions).sum(-1) <= 1e-6).all()


@pytest.mark.parametrize("kind", ["exr", "png"])
def test_every_format_reads_the_same_maps(datasets, spot_maps, tmp_path, kind):
    reference = load_split(spot_maps)
    split = load_split(write_depth_dataset(datasets / "spot", tmp_path / kind, views=8, kind=kind))
    both = (split.depths > 0) & (reference.depths > 0)
    assert torch.equal(split.depths > 0, reference.depths > 0)
    tolerance = 6e-4 if kind == "png" else 1e-6  # millimetres in a 16-bit PNG
    assert (split.depths - reference.depths)[both].abs().max() < tolerance
    angle = 0.01 if kind == "png" else 1e-5  # 8 bits per normal component
    assert (1 - (split.normals * reference.normals).sum(-1))[both].max() < angle


def test_ray_distances_and_camera_space_normals_are_converted(spot_maps, tmp_path):
    reference = load_split(spot_maps)[[0, 1]]
    folder = copy_dataset(spot_maps, tmp_path / "converted")
    meta = json.loads((folder / "transforms_train.json").read_text())
    directions = reference.cameras.pixel_directions()
    for index, frame in enumerate(meta["frames"][:2]):
        depth, normals = reference.depths[index], reference.normals[index]
        along_ray = depth / (directions[index] @ reference.cameras.forward[index])
        opencv = normals @ reference.cameras.c2w[index, :3, :3] * torch.tensor([1.0, -1.0, -1.0])
        frame["depth_file_path"] = write_map(folder / "maps" / f"ray_{index}", along_ray.numpy(), "npy")
        frame["normal_file_path"] = write_map(folder / "maps" / f"cv_{index}", opencv.numpy(), "npy")
    meta.update({"depth_along": "ray", "normal_space": "camera_opencv"})
    for frame in meta["frames"][2:]:
        frame.update({"normal_space": "world", "depth_along": "axis"})  # per frame wins
    (folder / "transforms_train.json").write_text(json.dumps(meta))
    split = load_split(folder)
    assert torch.allclose(split.depths[:2], reference.depths, atol=1e-5)
    assert torch.allclose(split.normals[:2], reference.normals, atol=1e-5)
    # depth_unit_scale_factor multiplies the stored depths (the third frame's are the original ones)
    rewrite(folder, lambda m: m.update({"depth_unit_scale_factor": 0.001}))
    assert torch.allclose(load_split(folder).depths[2], load_split(spot_maps).depths[2] * 0.001, atol=1e-7)


BAD_MAPS = {
    "wrong size": (np.ones((10, 12), np.float32), "is 12x10 pixels but its image is 256x256"),
    "all invalid": (np.zeros((256, 256), np.float32), "has no valid pixel"),
    "NaN": (np.full((256, 256), np.nan, np.float32), "contains NaN"),
    "negative": (-np.ones((256, 256), np.float32), "has negative depths"),
}


@pytest.mark.parametrize("case", list(BAD_MAPS))
def test_bad_depth_maps_are_one_plain_sentence(spot_maps, tmp_path, case):
    folder = copy_dataset(spot_maps, tmp_path / "bad")
    values, message = BAD_MAPS[case]
    np.save(folder / "maps" / "depth_1.npy", values)
    with pytest.raises(InputError, match=message) as error:
        load_split(folder)
    assert "depth_1.npy" in str(error.value) and "\n" not in str(error.value)


def test_unreadable_maps_say_what_is_wrong(spot_maps, tmp_path):
    folder = copy_dataset(spot_maps, tmp_path / "bad")
    rewrite(folder, lambda m: m["frames"][0].update({"depth_file_path": "maps/missing.exr"}))
    with pytest.raises(InputError, match="Depth map not found"):
        load_split(folder)
    Image.fromarray(np.full((256, 256), 3, np.uint8)).save(folder / "maps" / "eight.png")
    rewrite(folder, lambda m: m["frames"][0].update({"depth_file_path": "maps/eight.png"}))
    with pytest.raises(InputError, match="depth PNGs must be 16-bit greyscale"):
        load_split(folder)
    (folder / "maps" / "junk.exr").write_bytes(b"not an exr")
    rewrite(folder, lambda m: m["frames"][0].update({"depth_file_path": "maps/junk.exr"}))
    with pytest.raises(InputError, match="not a readable OpenEXR file"):
        load_split(folder)
    rewrite(folder, lambda m: (m.update({"normal_space": "tangent"}),
                               m["frames"][0].update({"depth_file_path": "maps/depth_0.npy"})))
    with pytest.raises(InputError, match="normal_space must be one of world, camera, camera_opencv"):
        load_split(folder)


def test_resizing_and_the_unit_volume_keep_the_maps(datasets, spot_maps):
    split = load_split(spot_maps)
    half = load_split(spot_maps, scale=0.5)
    assert half.depths.shape == (8, 128, 128) and half.normals.shape == (8, 128, 128, 3)
    assert set(half.depths.unique().tolist()) <= set(split.depths.unique().tolist())  # nearest pixel: no new depths
    normalization = find_roi(split)
    unit = normalization.split_to_unit(split)
    assert torch.allclose(unit.depths, split.depths / normalization.radius)
    assert torch.equal(unit.normals, split.normals)
    # the unit volume's depths are those of the unit-volume mesh seen by the unit-volume cameras
    gt = trimesh.load(datasets / "spot" / "gt_mesh.ply", force="mesh")
    vertices = normalization.to_unit(torch.tensor(gt.vertices, dtype=torch.float32))
    depth, _ = render_depth_normals(vertices, torch.tensor(gt.faces), unit.cameras[:2])
    assert torch.allclose(depth, unit.depths[:2], atol=1e-5)
    subset = split[[1, 3]]
    assert torch.equal(subset.depths, split.depths[[1, 3]]) and torch.equal(subset.normals, split.normals[[1, 3]])


def test_views_with_depth_and_no_masks_get_the_box_of_their_depths(datasets, spot_maps, tmp_path):
    folder = copy_dataset(spot_maps, tmp_path / "rgbd")
    meta = json.loads((folder / "transforms_train.json").read_text())
    for index, frame in enumerate(meta["frames"]):  # opaque photos, as an RGB-D camera takes them
        Image.open(frame["file_path"] + ".png").convert("RGB").save(folder / f"rgb_{index}.png")
        frame["file_path"] = f"rgb_{index}.png"
    (folder / "transforms_train.json").write_text(json.dumps(meta))
    events: list[dict] = []
    inputs = prepare_inputs(ReconstructJob(dataset=str(folder), out=str(tmp_path / "o"), method="depth"), False,
                            torch.device("cpu"), Progress(events.append), Timings())
    assert inputs.split.masks is None and inputs.split.depths is not None and inputs.hints is None
    # the box holds the object (what these views see of it), padded by a few percent
    gt = trimesh.load(datasets / "spot" / "gt_mesh.ply", force="mesh")
    box = inputs.normalization
    lo = np.array(box.box_min) * box.radius + box.center
    hi = np.array(box.box_max) * box.radius + box.center
    assert (lo < gt.bounds[0] + 0.01).all() and (hi > gt.bounds[1] - 0.01).all()
    assert box.radius < 1.1 * (gt.bounds[1] - gt.bounds[0]).max() / 2
    assert not any("table" in str(e.get("message", "")) for e in events)  # no search for a table
