"""Geometry metrics against the README's reference numbers for the spot ground truth."""

from __future__ import annotations

import pytest
import trimesh

from engine.evaluate import geometry_metrics


@pytest.fixture(scope="module")
def spot_gt(datasets) -> trimesh.Trimesh:
    return trimesh.load(datasets / "spot" / "gt_mesh.ply", force="mesh")


def test_gt_against_itself_is_the_readme_floor(spot_gt):
    metrics = geometry_metrics(spot_gt, spot_gt)
    # README "spot, GT vs itself": 0.0025, 0.997, 1.000, 0.948 (measured 0.00246, 0.9974, 1.0, 0.9477).
    assert metrics["chamfer_l1"] == pytest.approx(0.0025, abs=2e-4)
    assert metrics["normal_consistency"] == pytest.approx(0.997, abs=2e-3)
    assert metrics["f_score_0.5%"] > 0.999
    assert metrics["f_score_0.2%"] == pytest.approx(0.948, abs=0.01)


def test_identical_meshes_have_full_f_score(spot_gt):
    shuffled = trimesh.Trimesh(spot_gt.vertices, spot_gt.faces[::-1], process=False)
    metrics = geometry_metrics(shuffled, spot_gt, seed=3)
    assert metrics["f_score_0.5%"] == pytest.approx(1.0, abs=1e-3)


def test_moved_mesh_scores_clearly_worse(spot_gt):
    moved = spot_gt.copy()
    moved.apply_scale(1.02)
    moved.apply_translation([0.01, 0.0, 0.0])
    metrics = geometry_metrics(moved, spot_gt)
    # Measured: Chamfer 0.0097, NC 0.987, F@0.5% 0.63, F@0.2% 0.26 (floor: 0.0025, 0.997, 1.0, 0.948).
    assert metrics["chamfer_l1"] > 0.007
    assert metrics["normal_consistency"] < 0.99
    assert metrics["f_score_0.5%"] < 0.8
    assert metrics["f_score_0.2%"] < 0.4
