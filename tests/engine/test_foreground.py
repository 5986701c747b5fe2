"""Automatic masks of photos as they are taken: a glossy object on a textured table under a sun,
with a hard cast shadow, a thin ear, and exposures and white balances that differ between photos
(the synthetic scene of :mod:`tests.engine.sunlit_table`, cameras and box known)."""

from __future__ import annotations

import pytest
import torch

from engine.sfm.exposure import sample_views, table_ring, view_gains
from engine.sfm.foreground import estimate_masks
from tests.engine.sunlit_table import iou, sunlit_table, with_exposures


@pytest.fixture(scope="module")
def scene():
    return sunlit_table()


@pytest.fixture(scope="module")
def masks(scene):
    return estimate_masks(scene.split, scene.box_min, scene.box_max, True) > 0.5


def test_cast_shadow_is_table_and_the_thin_ear_stays(scene, masks):
    """The masks match the true silhouettes; the table in the object's hard shadow (darker, the same
    from every view) is background; the ear, a rod a tenth of the ball's width, is kept."""
    assert float(iou(masks, scene.silhouettes).median()) >= 0.93
    assert float((masks & scene.shadows).sum() / scene.shadows.sum()) < 0.03
    assert float((masks & scene.ears).sum() / scene.ears.sum()) > 0.8


def test_exposure_and_white_balance_of_each_photo_do_not_change_the_masks(scene, masks):
    """Each photo with its own gain per channel (log-normal, 25%): the masks are those of the
    evenly exposed photos."""
    exposed = with_exposures(scene.split, 0.25)
    again = estimate_masks(exposed, scene.box_min, scene.box_max, True) > 0.5
    assert float(iou(again, masks).median()) >= 0.97
    assert float(iou(again, scene.silhouettes).median()) >= 0.93


def test_view_gains_are_found_on_the_table_around_the_object(scene):
    """The gains that undo each photo's exposure, up to their common scale, from the table ring alone
    (the object hides part of it from every view)."""
    generator = torch.Generator().manual_seed(3)
    applied = torch.exp(0.3 * torch.randn(len(scene.split), 3, generator=generator))
    exposed = with_exposures(scene.split, 0.3, seed=3)
    ring = table_ring(scene.box_min, scene.box_max, 2.5)
    found = view_gains(sample_views(exposed.images, exposed.cameras, ring))  # [N, 3]
    undone = (found * applied).log()
    assert float((undone - undone.mean(0)).abs().max()) < 0.03
