"""Decimate → unwrap → bake on the spot ground truth, rendering at the test views, OBJ/GLB round trips."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from engine.data.dataset import DatasetSplit
from engine.data.transforms import load_split
from engine.errors import Cancelled
from engine.evaluate import render_psnr
from engine.export import Z_UP_TO_Y_UP, read_textured, write_glb, write_obj
from engine.texture import TexturedMesh, bake_from_images, decimate, texture_mesh, unwrap
from engine.texture.bake import rasterize_uv

# Measured: 34.3 dB (24 training views and 20 test views at 128², 512² texture, 4000 faces).
PSNR_BOUND = 32.0


@pytest.fixture(scope="module")
def spot(datasets) -> tuple[trimesh.Trimesh, DatasetSplit, DatasetSplit]:
    folder = datasets / "spot"
    gt = trimesh.load(folder / "gt_mesh.ply", force="mesh")
    return gt, load_split(folder, "train", scale=0.5, max_views=24), load_split(folder, "test", scale=0.5)


@pytest.fixture(scope="module")
def textured(spot) -> TexturedMesh:
    gt, train, _ = spot
    return texture_mesh(gt.vertices, gt.faces, train, target_faces=4000, texture_size=512)


def test_decimate_and_unwrap(spot):
    gt, _, _ = spot
    same = decimate(gt.vertices, gt.faces, 10**6)
    assert same[1].shape == gt.faces.shape
    vertices, faces = decimate(gt.vertices, gt.faces, 2000)
    assert abs(len(faces) - 2000) <= 20 and faces.dtype == np.int32 and vertices.dtype == np.float32
    split_v, split_f, uvs, normals = unwrap(vertices, faces)
    assert len(split_f) == len(faces) and len(split_v) >= len(vertices)
    assert uvs.shape == (len(split_v), 2) and uvs.min() >= 0.0 and uvs.max() <= 1.0
    assert np.allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-4)
    # Seam copies share position and normal, so shading is continuous across seams.
    _, first, inverse = np.unique(split_v, axis=0, return_index=True, return_inverse=True)
    assert np.allclose(normals, normals[first][inverse.reshape(-1)], atol=1e-6)


def test_uv_rasterization_covers_the_triangles():
    uvs = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    faces = torch.tensor([[0, 1, 2], [1, 3, 2]])
    texel, face, bary = rasterize_uv(uvs, faces, 16)
    assert len(texel) == 256 and len(texel.unique()) == 256  # every texel once, shared edge included
    row, col = texel // 16, texel % 16  # row 0 at the top (v = 1)
    assert (face[col < row] == 0).all() and (face[col > row] == 1).all()  # face 0: u + v < 1, bottom-left
    assert torch.allclose(bary.sum(-1), torch.ones(len(texel)))
    half, _, _ = rasterize_uv(uvs, faces[:1], 16)
    assert len(half) == 16 * 17 // 2


def test_textured_gt_reproduces_the_test_views(textured, spot):
    assert textured.texture.shape == (512, 512, 3) and textured.texture.dtype == np.uint8
    assert len(textured.faces) == 4000 and textured.source
    psnr = render_psnr(textured, spot[2])["psnr"]
    assert psnr > PSNR_BOUND


def test_bake_fills_every_texel_reports_progress_and_can_be_cancelled(spot):
    gt, train, _ = spot
    vertices, faces, uvs, normals = unwrap(gt.vertices, gt.faces, 64)
    colour = torch.tensor([0.2, 0.6, 0.9])
    plain = DatasetSplit(colour.expand_as(train.images).clone(), train.masks, train.cameras, train.names)
    steps = []
    texture = bake_from_images(vertices, faces, uvs, normals, split=plain, texture_size=64,
                               on_step=lambda i, n: steps.append((i, n)))
    assert steps == [(i + 1, len(train)) for i in range(len(train))]
    # Seen, unseen and gutter texels alike hold the one colour of the images: nothing left empty.
    assert np.abs(texture.astype(int) - np.round(colour.numpy() * 255).astype(int)).max() <= 1

    def cancel(step: int, total: int) -> None:
        raise Cancelled()

    with pytest.raises(Cancelled):
        bake_from_images(vertices, faces, uvs, normals, split=train, texture_size=64, on_step=cancel)


def test_obj_and_glb_round_trip(textured, tmp_path):
    obj, mtl, png = write_obj(textured, tmp_path, "spot")
    assert [p.name for p in (obj, mtl, png)] == ["spot.obj", "spot.mtl", "spot.png"]
    text = obj.read_text()
    assert "mtllib spot.mtl" in text and "usemtl " in text and "map_Kd spot.png" in mtl.read_text()
    assert text.count("\nvn ") == text.count("\nv ") == len(textured.vertices)
    glb = write_glb(textured, tmp_path / "spot.glb")

    raw_obj = trimesh.load(obj, process=False)
    raw_glb = trimesh.load(glb, process=False).to_mesh()
    assert len(raw_obj.vertices) == len(raw_glb.vertices) == len(textured.vertices)
    assert np.allclose(raw_obj.vertices, textured.vertices, atol=1e-6)  # OBJ: dataset frame
    assert np.allclose(raw_glb.vertices, textured.vertices @ Z_UP_TO_Y_UP.T, atol=1e-6)  # GLB: glTF Y up
    for path in (obj, glb):
        back = read_textured(path)
        assert np.allclose(back.vertices, textured.vertices, atol=1e-6)
        assert np.array_equal(back.faces, textured.faces)
        assert np.allclose(back.uvs, textured.uvs, atol=1e-6)
        assert np.allclose(back.normals, textured.normals, atol=1e-5)
        assert np.array_equal(back.texture, textured.texture)
