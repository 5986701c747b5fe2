"""The input stage (``engine.inputs``): every source becomes the same views, masks, hints and region."""

from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image

from engine.inputs import prepare_inputs
from engine.progress import Progress
from engine.protocol import ReconstructJob
from engine.timings import Timings
from tests.support import write_disc_dataset


def run_stage(job: ReconstructJob, needs_masks: bool) -> tuple:
    events: list[dict] = []
    timings = Timings()
    inputs = prepare_inputs(job, needs_masks, torch.device("cpu"), Progress(events.append), timings)
    return inputs, events, timings


def test_masked_views_give_the_region_of_their_masks(tmp_path):
    folder = write_disc_dataset(tmp_path / "disc", count=8)
    inputs, _, timings = run_stage(ReconstructJob(dataset=str(folder), out=str(tmp_path / "o")), needs_masks=True)
    assert inputs.split.masks is not None and len(inputs.split) == 8
    assert inputs.hints is None and inputs.cameras is None
    # The disc is a ball around the origin: the box is centred there, a little over its size.
    centre, radius = np.array(inputs.normalization.center), inputs.normalization.radius
    assert np.abs(centre).max() < 0.1 and 0.5 < radius < 0.9  # the ball: about 0.63
    assert {"poses", "load", "region"} <= set(timings.seconds)


def test_a_user_region_replaces_the_box(tmp_path):
    folder = write_disc_dataset(tmp_path / "disc", count=8)
    job = ReconstructJob(dataset=str(folder), out=str(tmp_path / "o"), region=[-1.0, -1.0, -1.0, 1.0, 1.0, 3.0])
    inputs, _, _ = run_stage(job, needs_masks=True)
    assert inputs.normalization.center == (0.0, 0.0, 1.0) and inputs.normalization.radius == 2.0


def test_views_without_masks_fall_back_to_the_cameras_with_a_warning(tmp_path):
    """Opaque views of nothing SfM can match: the object cannot be located, the method starts from
    the region every camera sees, and the user is told why."""
    folder = write_disc_dataset(tmp_path / "disc", count=8)
    meta = json.loads((folder / "transforms_train.json").read_text())
    for frame in meta["frames"]:
        path = folder / f"{frame['file_path']}.png"
        Image.open(path).convert("RGB").save(path)
    inputs, events, _ = run_stage(ReconstructJob(dataset=str(folder), out=str(tmp_path / "o")), needs_masks=False)
    assert inputs.split.masks is None and inputs.hints is None
    warnings = [e["message"] for e in events if e["type"] == "log" and e["level"] == "warning"]
    assert any("Could not locate the object" in w for w in warnings)
    assert inputs.normalization.radius > 1.0  # the cube every camera sees whole, larger than the ball
