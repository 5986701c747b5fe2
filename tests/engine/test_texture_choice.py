"""Choosing between the texture projected from the images and a baked colour field."""

import numpy as np
import trimesh

from engine.data.transforms import load_split
from engine.pipeline import best_texture
from engine.roi import Normalization
from engine.texture import bake_from_field, texture_mesh


def test_best_texture_keeps_the_better_candidate(datasets):
    split = load_split(datasets / "spot", "train", scale=0.5, max_views=12)
    gt = trimesh.load(datasets / "spot" / "gt_mesh.ply")
    mesh = texture_mesh(np.asarray(gt.vertices, np.float32), np.asarray(gt.faces), split, target_faces=4000,
                        texture_size=256)
    identity = Normalization((0.0, 0.0, 0.0), 1.0, (-1.0, -1.0, -1.0), (1.0, 1.0, 1.0))

    grey = best_texture(mesh, lambda points: np.full((len(points), 3), 0.5), identity, split)
    assert grey[0].source == "projected training images"
    assert grey[1]["projected training images"] > grey[1]["baked albedo field"] + 3.0

    # a constant field bakes to that colour in every texel, charts and dilated borders alike
    baked = bake_from_field(mesh.vertices, mesh.faces, mesh.uvs, texture_size=256,
                            colour=lambda points: np.tile([[0.2, 0.4, 0.6]], (len(points), 1)))
    assert baked.shape == (256, 256, 3)
    assert (np.abs(baked.astype(int) - [51, 102, 153]) <= 1).all()
