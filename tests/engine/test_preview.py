"""Live previews: while DMTet or NeuS optimize, coarse meshes of the forming surface are written
and announced with ``preview`` events, in the dataset's world frame, at most every few seconds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import trimesh

from engine import protocol
from engine.data.transforms import load_split
from engine.methods import METHODS, MethodInput, resolve_options
from engine.preview import Preview
from engine.progress import Progress
from engine.roi import find_roi
from tests.support import ROOT

TINY_DMTET = {"resolution": 20, "iterations": 12, "refine_iterations": 3, "faces": 2000, "texture_size": 128}


def load_preview(event: dict) -> tuple[np.ndarray, np.ndarray]:
    assert event["format"] == protocol.PREVIEW_NPZ and Path(event["path"]).is_absolute()
    with np.load(event["path"]) as data:
        return data["vertices"], data["faces"]


def assert_overlays(vertices: np.ndarray, gt: trimesh.Trimesh, share: float) -> None:
    """The preview's box is the ground truth's, within ``share`` of its size (world frame)."""
    bounds = np.stack([vertices.min(0), vertices.max(0)])
    assert np.abs(bounds - gt.bounds).max() < share * (gt.bounds[1] - gt.bounds[0]).max(), (bounds, gt.bounds)


def test_worker_sends_dmtet_previews_before_the_result(tmp_path, datasets):
    folder = tmp_path / "previews"
    job = protocol.ReconstructJob(dataset=str(datasets / "spot"), out=str(tmp_path / "out"), method="dmtet",
                                  preset="fast", device="cpu", options=TINY_DMTET, image_scale=0.25, max_views=12,
                                  preview=str(folder))
    (tmp_path / "job.json").write_text(json.dumps(job.to_dict()))
    done = subprocess.run([sys.executable, "-m", "engine", "worker", str(tmp_path / "job.json")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    events = [json.loads(line) for line in done.stdout.splitlines()]
    previews = [e for e in events if e["type"] == protocol.PREVIEW]
    assert previews and previews[0]["step"] == 0  # the first at once, the start of the optimization
    assert events.index(previews[-1]) < len(events) - 1 and events[-1]["type"] == protocol.RESULT
    assert len({e["path"] for e in previews}) == len(previews)  # a new file each time: the reader owns it
    vertices, faces = load_preview(previews[0])
    assert vertices.dtype == np.float32 and faces.dtype == np.int32 and faces.max() < len(vertices)
    assert_overlays(vertices, trimesh.load(datasets / "spot" / "gt_mesh.ply"), 0.15)
    assert not list(folder.glob("*.partial"))


def test_neus_previews_its_cached_surface_and_previews_are_throttled(datasets):
    split = load_split(datasets / "spot", "train", scale=0.25, max_views=12)
    normalization = find_roi(split)
    events: list[dict] = []
    progress = Progress(events.append)
    options = resolve_options(METHODS["neus"], "fast", {"iterations": 12, "rays": 256, "init_iterations": 20,
                                                        "grid": 32, "init_resolution": 48, "mesh_resolution": 48})
    folder = Path(__import__("tempfile").mkdtemp(prefix="meshlift-preview-"))
    preview = Preview(folder, normalization, progress, interval=0.0)
    METHODS["neus"].run(MethodInput(normalization.split_to_unit(split), normalization, options, progress,
                                    torch.device("cpu"), preview=preview))
    previews = [e for e in events if e["type"] == protocol.PREVIEW]
    assert [e["step"] for e in previews] == list(range(12))
    vertices, _faces = load_preview(previews[-1])
    assert_overlays(vertices, trimesh.load(datasets / "spot" / "gt_mesh.ply"), 0.15)
    # at the default interval only the first of a quick burst of offers is due
    slow = Preview(folder, normalization, progress)
    assert slow.due()
    slow.send(0, torch.zeros(3, 3), torch.tensor([[0, 1, 2]]))
    assert not slow.due()
