"""The worker process as the add-on drives it: JSON lines only, a result, clean cancellation."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trimesh

from tests.support import ROOT

SMALL = {"method": "hull", "preset": "fast", "image_scale": 0.5, "max_views": 24, "device": "cpu",
         "options": {"resolution": 96, "faces": 4000, "texture_size": 256}}


def start_worker(tmp_path: Path, job: dict) -> subprocess.Popen:
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps(job))
    return subprocess.Popen([sys.executable, "-m", "engine", "worker", str(job_file)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> tuple[list[dict], str]:
    stdout, stderr = process.communicate(timeout=300)
    lines = [json.loads(line) for line in stdout.splitlines()]  # every stdout line is JSON
    return lines, stderr


def test_worker_reconstructs_and_speaks_only_json(tmp_path, datasets):
    out = tmp_path / "result"
    process = start_worker(tmp_path, {"command": "reconstruct", "dataset": str(datasets / "spot"),
                                      "out": str(out), "name": "spot", **SMALL})
    lines, stderr = finish(process)
    assert process.returncode == 0, stderr
    kinds = {line["type"] for line in lines}
    assert kinds <= {"progress", "log", "result"} and lines[-1]["type"] == "result"
    progress = [line for line in lines if line["type"] == "progress"]
    assert {"loading images", "carving", "texturing", "writing files"} <= {p["stage"] for p in progress}
    assert all(set(p) == {"type", "stage", "step", "total", "eta"} and 0 <= p["step"] <= p["total"]
               for p in progress)
    result = lines[-1]
    files = {kind: Path(path) for kind, path in result["files"].items()}
    assert {"obj", "mtl", "png", "glb", "report"} <= set(files) and all(p.is_file() for p in files.values())
    assert files["obj"] == out / "spot.obj"
    # the mesh is in the dataset's world frame: it overlays the ground truth
    mesh = trimesh.load(files["obj"], force="mesh")
    gt = trimesh.load(datasets / "spot" / "gt_mesh.ply")
    assert abs(mesh.bounds - gt.bounds).max() < 0.05 * (gt.bounds[1] - gt.bounds[0]).max()
    report = json.loads(files["report"].read_text())
    assert report["mesh"]["faces"] <= 4000 and report["timings"]["total"] > 0
    assert not list(tmp_path.glob(".result.partial-*"))


def test_worker_cancels_within_a_second_and_writes_nothing(tmp_path, datasets):
    out = tmp_path / "result"
    job = {"dataset": str(datasets / "spot"), "out": str(out), **SMALL, "max_views": 100, "image_scale": 1.0,
           "options": {"resolution": 256}}
    process = start_worker(tmp_path, job)
    seen = []
    for line in process.stdout:  # wait until the job is busy carving
        seen.append(json.loads(line))
        if seen[-1].get("stage") == "carving":
            break
    assert process.poll() is None, "the worker ended before it could be cancelled"
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    lines, _ = finish(process)
    assert time.monotonic() - sent < 1.5
    assert process.returncode == 130
    assert lines[-1] == {"type": "error", "kind": "cancelled", "message": "Cancelled; nothing was written."}
    assert not out.exists() and not list(tmp_path.glob(".result.*"))


@pytest.mark.parametrize(("content", "fragment"), [
    ("{ not json", "not valid JSON"),
    (json.dumps({"dataset": "x"}), "needs the field(s): out"),
    (json.dumps({"dataset": "x", "out": "y", "colour": "red"}), "Unknown job field(s): colour"),
    (json.dumps({"command": "explode", "dataset": "x", "out": "y"}), "Unknown job command"),
    (json.dumps({"dataset": "x", "out": "y", "force": "yes"}), "must be bool"),
])
def test_worker_rejects_bad_jobs(tmp_path, content, fragment):
    job_file = tmp_path / "job.json"
    job_file.write_text(content)
    process = subprocess.run([sys.executable, "-m", "engine", "worker", str(job_file)], cwd=ROOT,
                             capture_output=True, text=True, timeout=120, check=False)
    lines = [json.loads(line) for line in process.stdout.splitlines()]
    assert process.returncode == 2 and len(lines) == 1
    assert lines[0]["type"] == "error" and lines[0]["kind"] == "input" and fragment in lines[0]["message"]
    assert "Traceback" not in process.stderr


def test_worker_never_overwrites_without_force(tmp_path, datasets):
    out = tmp_path / "result"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    process = start_worker(tmp_path, {"dataset": str(datasets / "spot"), "out": str(out), **SMALL})
    lines, _ = finish(process)
    assert process.returncode == 2 and "already exists" in lines[-1]["message"]
    assert '"force": true' in lines[-1]["message"] and "--force" not in lines[-1]["message"]  # a job's words
    assert (out / "keep.txt").read_text() == "mine"
