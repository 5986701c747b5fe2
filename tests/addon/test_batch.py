"""The headless batch script end to end, under plain Python with the bpy module (the way it runs
inside ``blender -b`` differs only in who opens the .blend): progress on stderr, the result saved,
a clear message and a non-zero exit on failure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.addon.blender import build_scene
from tests.support import ROOT

pytestmark = pytest.mark.usefixtures("addon", "empty_scene", "prefs")
SCRIPT = ROOT / "scripts" / "meshlift_batch.py"


@pytest.fixture(scope="module")
def scene_blend(request: pytest.FixtureRequest, tmp_path_factory) -> Path:
    request.getfixturevalue("addon")
    import bpy

    bpy.ops.wm.read_homefile(use_empty=True)
    build_scene(bpy.context.scene)
    bpy.data.objects.new("Unrelated", None)  # an empty that is not linked to the scene
    path = tmp_path_factory.mktemp("batch") / "scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path), copy=True)
    return path


def run_batch(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "profile"))
    return subprocess.run([sys.executable, str(SCRIPT), "--", *args], capture_output=True, text=True, timeout=300,
                          env=env, cwd=tmp_path, check=False)


def test_batch_reconstructs_and_saves(scene_blend, tmp_path):
    import bpy

    out = tmp_path / "result.blend"
    # --python sets a preference: the checkout-enabled add-on has its preferences
    done = run_batch(tmp_path, "--blend", str(scene_blend), "--cameras", "Cam*", "--method", "hull", "--preset",
                     "fast", "-o", "resolution=96", "-o", "faces=4000", "--texture-size", "256", "--out", str(out),
                     "--python", sys.executable)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Meshlift: 16 cameras" in done.stderr and "Meshlift: rendering camera 16/16" in done.stderr
    assert "Meshlift: carving" in done.stderr and "Meshlift: texturing" in done.stderr
    assert "Fra:1" not in done.stdout  # the renderer's status lines are silenced
    assert "Meshlift: Scene_Cam: " in done.stdout and f"saved {out}" in done.stdout
    with bpy.data.libraries.load(str(out)) as (data_from, _data_to):
        objects, images, collections = list(data_from.objects), list(data_from.images), list(data_from.collections)
    assert "Scene_Cam" in objects and "Monkey" in objects and "Meshlift" in collections
    assert "Scene_Cam_texture" in images


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--cameras", "Nope*"], 2, "No camera in the scene 'Scene' matches 'Nope*' (cameras: Cam.000"),
    (["--method", "marching"], 2, "Unknown method 'marching'. Available: hull"),
    (["--preset", "ultra"], 2, "Unknown preset 'ultra' for hull"),
    (["--cameras", "Cam.00[0-1]"], 1, "Only 2 camera(s) selected"),
    (["-o", "colour=red"], 1, "Unknown option 'colour' for hull"),
    (["--python", "/no/such/python"], 2, "The engine Python '/no/such/python' does not exist"),
])
def test_batch_failures_are_one_clear_line(scene_blend, tmp_path, args, code, message):
    out = tmp_path / "result.blend"
    done = run_batch(tmp_path, "--blend", str(scene_blend), *args, "--out", str(out))
    assert done.returncode == code, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("meshlift_batch: ") and message in last, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and not out.exists()


def test_batch_needs_a_blend_under_plain_python(tmp_path):
    done = run_batch(tmp_path, "--out", str(tmp_path / "x.blend"))
    assert done.returncode == 2 and "--blend is required" in done.stderr
    done = run_batch(tmp_path, "--blend", str(tmp_path / "missing.blend"), "--out", str(tmp_path / "x.blend"))
    assert done.returncode == 2 and "does not exist" in done.stderr


def test_batch_export_only_writes_a_dataset_the_engine_batch_reconstructs(scene_blend, tmp_path):
    from engine.batch import runner
    from engine.batch.source import read_jobs

    folder = tmp_path / "datasets" / "scene"
    done = run_batch(tmp_path, "--blend", str(scene_blend), "--cameras", "Cam.00[0-7]", "--export-only", str(folder))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Meshlift: exporting 8 cameras" in done.stderr and f"wrote {folder / 'transforms.json'}" in done.stdout
    frames = json.loads((folder / "transforms.json").read_text())["frames"]
    assert [frame["camera"] for frame in frames] == [f"Cam.00{i}" for i in range(8)]
    assert all((folder / frame["file_path"]).is_file() for frame in frames)
    assert not list(tmp_path.glob("*.blend"))  # nothing reconstructed, nothing saved

    root = tmp_path / "meshes"
    defaults = {"method": "hull", "preset": "fast", "device": "cpu",
                "options": {"resolution": 48, "faces": 2000, "texture_size": 128}}
    result = runner.run_batch(read_jobs(tmp_path / "datasets", root, defaults), root, runner.BatchSettings(jobs=1))
    assert [(r.name, r.status) for r in result.records] == [("scene", "done")] and result.records[0].faces > 100


def test_batch_export_only_takes_no_folder(tmp_path):
    done = run_batch(tmp_path, "--folder", str(tmp_path), "--export-only", str(tmp_path / "d"))
    assert done.returncode == 2 and "--export-only writes the cameras' dataset" in done.stderr
    done = run_batch(tmp_path, "--blend", "x.blend")
    assert done.returncode == 2 and "--out (or --export-only DIR)" in done.stderr
