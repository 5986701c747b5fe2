"""The loaded cameras are right: the ground-truth mesh, rasterized through them, covers the masks."""

import pytest
import torch
import trimesh

from engine.data.transforms import load_split
from engine.render import rasterize
from tests.support import OBJECTS


@pytest.mark.parametrize("name", OBJECTS)
def test_gt_mesh_reproduces_every_alpha_mask(datasets, name):
    gt = trimesh.load(datasets / name / "gt_mesh.ply")
    verts = torch.tensor(gt.vertices, dtype=torch.float32)
    faces = torch.tensor(gt.faces, dtype=torch.int64)
    for split_name in ("train", "test"):
        split = load_split(datasets / name, split_name)
        for start in range(0, len(split), 25):
            cams = split.cameras[start:start + 25]
            covered = rasterize(verts, faces, cams).face_id >= 0  # [N, H, W]
            masks = split.masks[start:start + 25] > 0.5
            iou = (covered & masks).sum((1, 2)) / (covered | masks).sum((1, 2))
            worst = int(iou.argmin())
            assert iou.min() >= 0.97, f"{name} {split.names[start + worst]}: IoU {float(iou.min()):.3f}"
