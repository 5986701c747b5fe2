"""The add-on's bpy-free bridge: the worker client, the interpreter checks, the OBJ reader, the
camera maths. The worker client runs against a stand-in ``engine`` package (to script crashes,
stubborn processes and garbage output) and, in ``test_addon_*``, against the real one."""

from __future__ import annotations

import math
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from meshlift.bridge import camera_math, interpreter, objfile
from meshlift.bridge.errors import UserError
from meshlift.bridge.worker_process import Progress, WorkerProcess, format_seconds

from tests.support import alive, python_without_torch

FAKE_ENGINE = textwrap.dedent('''
    import json, signal, sys, time
    job = json.load(open(sys.argv[2]))
    mode = job["mode"]
    def say(**event):
        print(json.dumps(event), flush=True)
    if mode == "ok":
        say(type="log", level="info", message="hello")
        print("not json at all", flush=True)
        for step in range(3):
            say(type="progress", stage="carving", step=step + 1, total=3, eta=2.0 - step)
            time.sleep(0.05)
        say(type="result", files={"obj": "x.obj"}, report={"mesh": {"faces": 12}})
    elif mode == "slow":
        def stop(*_):
            say(type="error", kind="cancelled", message="Cancelled; nothing was written.")
            sys.exit(130)
        signal.signal(signal.SIGTERM, stop)
        say(type="progress", stage="carving", step=0, total=10, eta=None)
        time.sleep(60)
    elif mode == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        say(type="progress", stage="stuck", step=0, total=1, eta=None)
        time.sleep(60)
    elif mode == "crash":
        print("something went badly wrong", file=sys.stderr, flush=True)
        sys.exit(3)
    elif mode == "error":
        say(type="error", kind="input", message="The dataset has 2 views; at least 3 are needed")
        sys.exit(2)
''')


@pytest.fixture
def fake_root(tmp_path: Path) -> Path:
    (tmp_path / "engine").mkdir()
    (tmp_path / "engine" / "__init__.py").write_text("")
    (tmp_path / "engine" / "__main__.py").write_text(FAKE_ENGINE)
    return tmp_path


def fake_worker(root: Path, mode: str) -> WorkerProcess:
    return WorkerProcess(sys.executable, {"mode": mode}, root / "jobs" / f"{mode}.json", cwd=root).start()


def test_worker_reads_progress_logs_and_result(fake_root):
    worker = fake_worker(fake_root, "ok")
    seen = []
    outcome = worker.wait(timeout=30, interval=0.01, on_events=lambda _w, events: seen.extend(events))
    assert outcome is not None and outcome.status == "done" and outcome.exit_code == 0
    assert outcome.result["report"]["mesh"]["faces"] == 12
    assert [e["step"] for e in seen if e["type"] == "progress"] == [1, 2, 3]
    assert worker.logs == ["hello", "not json at all"]  # a stray line is kept as a log, not fatal
    assert worker.progress.fraction == 1.0 and worker.progress.stage == "carving"
    assert worker.elapsed > 0 and not worker.running


def test_worker_poll_never_blocks_and_cancel_stops_it(fake_root):
    worker = fake_worker(fake_root, "slow")
    deadline = time.monotonic() + 20
    while worker.progress.stage != "carving" and time.monotonic() < deadline:
        started = time.monotonic()
        worker.poll()
        assert time.monotonic() - started < 0.05
        time.sleep(0.02)
    assert worker.running
    started = time.monotonic()
    worker.cancel()
    assert time.monotonic() - started < 3
    assert worker.outcome.status == "cancelled" and worker.outcome.exit_code == 130
    assert not alive(worker.pid)


def test_worker_that_ignores_sigterm_is_killed(fake_root):
    worker = fake_worker(fake_root, "stubborn")
    deadline = time.monotonic() + 20
    while worker.progress.stage != "stuck" and time.monotonic() < deadline:
        worker.poll()
        time.sleep(0.02)
    worker.cancel(timeout=0.5)
    assert worker.outcome.status == "cancelled" and worker.outcome.exit_code == -signal.SIGKILL
    assert not alive(worker.pid)


def test_worker_crash_is_reported_with_its_last_words(fake_root):
    outcome = fake_worker(fake_root, "crash").wait(timeout=30)
    assert outcome.status == "failed" and outcome.kind == "crashed" and outcome.exit_code == 3
    assert "exited with code 3" in outcome.message and "something went badly wrong" in outcome.message


def test_killed_worker_is_reported(fake_root):
    worker = fake_worker(fake_root, "slow")
    while worker.progress.stage != "carving":
        worker.poll()
        time.sleep(0.02)
    os.kill(worker.pid, signal.SIGKILL)
    outcome = worker.wait(timeout=30)
    assert outcome.status == "failed" and outcome.kind == "crashed"
    assert "killed by signal SIGKILL" in outcome.message


def test_worker_error_event_is_passed_on(fake_root):
    outcome = fake_worker(fake_root, "error").wait(timeout=30)
    assert outcome.status == "failed" and outcome.kind == "input" and outcome.exit_code == 2
    assert outcome.message == "The dataset has 2 views; at least 3 are needed"


def test_worker_that_cannot_start(tmp_path):
    with pytest.raises(UserError, match="Cannot start the engine"):
        WorkerProcess(str(tmp_path / "no-python"), {}, tmp_path / "job.json").start()


def test_progress_text():
    assert Progress("carving", 3, 10, 12.4).describe() == "carving 3/10, 12 s left"
    assert Progress("surface", 0, 1, None).describe() == "surface"
    assert Progress().fraction == 0.0
    assert format_seconds(4.25) == "4.2 s" and format_seconds(125) == "2 min 05 s"
    assert format_seconds(3720) == "1 h 02 min"


# -- interpreter -----------------------------------------------------------------------------------


def test_interpreter_resolution(tmp_path):
    interpreter.clear_cache()
    assert interpreter.resolve_python("", sys.executable) == sys.executable  # this Python has torch
    no_torch = str(python_without_torch(tmp_path))
    assert not interpreter.can_import_torch(no_torch)
    with pytest.raises(UserError, match=r"cannot import torch.*Engine Python"):
        interpreter.resolve_python(no_torch, sys.executable)  # an explicit choice is not overridden
    with pytest.raises(UserError, match=r"Blender's own Python .* cannot import torch"):
        interpreter.resolve_python("", no_torch)
    with pytest.raises(UserError, match="does not exist"):
        interpreter.resolve_python(str(tmp_path / "missing"), sys.executable)
    with pytest.raises(UserError, match="cannot import torch"):
        interpreter.check(no_torch)


def test_interpreter_check_and_methods():
    info = interpreter.check(sys.executable)
    assert info["torch"] and isinstance(info["cuda_available"], bool)
    assert interpreter.describe_check(info).startswith(f"torch {info['torch']}")
    methods = interpreter.query_methods(sys.executable)
    assert "hull" in [m["name"] for m in methods]
    assert interpreter.cached_methods(sys.executable) is methods
    catalog = interpreter.Catalog()
    assert catalog.load("", sys.executable) == methods and catalog.python == sys.executable


# -- OBJ reader ------------------------------------------------------------------------------------


def test_obj_reader_reads_engine_style_files(tmp_path):
    (tmp_path / "t.png").write_bytes(b"png")
    (tmp_path / "m.mtl").write_text("newmtl a\nmap_Kd t.png\n")
    (tmp_path / "m.obj").write_text(
        "# comment\nmtllib m.mtl\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 1\n"
        "vt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\nvn 0 0 1\nusemtl a\nf 1/1/1 2/2/1 3/3/1\nf -4/-4 -2/-2 -1/-1\n"
    )
    mesh = objfile.read_obj(tmp_path / "m.obj")
    assert mesh.vertices.shape == (4, 3) and mesh.vertices.dtype == np.float32
    assert mesh.face_sizes.tolist() == [3, 3] and mesh.loop_starts.tolist() == [0, 3]
    assert mesh.loop_vertices.tolist() == [0, 1, 2, 0, 2, 3]
    assert mesh.loop_uvs.tolist()[3:] == [[0, 0], [1, 1], [0, 1]]
    assert mesh.texture == (tmp_path / "t.png").resolve()
    assert mesh.bounds.tolist() == [[0, 0, 0], [1, 1, 1]]


def test_obj_reader_finds_the_pbr_maps_and_the_normals(tmp_path):
    for name in ("c.png", "r.png", "m.png", "n.png"):
        (tmp_path / name).write_bytes(b"png")
    (tmp_path / "m.mtl").write_text("newmtl a\nmap_Kd c.png\nmap_Pr r.png\nmap_Pm m.png\nnorm n.png\n"
                                    "map_Bump -bm 1.0 other.png\nnewmtl b\nmap_Pr b.png\n")
    vertices = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 1]], np.float32)
    triangles = np.array([[0, 1, 2], [0, 2, 3]])
    uvs = np.array([[[0, 0], [1, 0], [1, 1]], [[0, 0], [1, 1], [0, 1]]], np.float32)
    normals = np.tile(np.array([0, 0, 1], np.float32), (2, 3, 1))
    normals[1, 2] = [0, 0.6, 0.8]
    path = objfile.write_obj(tmp_path / "m.obj", vertices, triangles, uvs, normals)
    path.write_text("mtllib m.mtl\n" + path.read_text())
    mesh = objfile.read_obj(path)
    assert mesh.loop_vertices.tolist() == [0, 1, 2, 0, 2, 3]
    assert np.allclose(mesh.loop_uvs, uvs.reshape(-1, 2)) and np.allclose(mesh.loop_normals, normals.reshape(-1, 3))
    assert mesh.texture == (tmp_path / "c.png").resolve()
    assert mesh.maps == {"roughness": (tmp_path / "r.png").resolve(), "metallic": (tmp_path / "m.png").resolve(),
                         "normal": (tmp_path / "n.png").resolve()}
    assert path.read_text().count("\nvn ") == 2 and path.read_text().count("\nvt ") == 4  # shared values once


def test_obj_reader_ngons_without_uvs_and_errors(tmp_path):
    path = tmp_path / "q.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nf 1//1 2//1 3//1 4//1\n")
    mesh = objfile.read_obj(path)
    assert mesh.face_sizes.tolist() == [4] and mesh.loop_uvs is None and mesh.texture is None
    path.write_text("v 0 0 0\nf 1 2 3\n")
    with pytest.raises(objfile.ObjError, match="line 2: index 2 is out of range"):
        objfile.read_obj(path)
    path.write_text("# nothing\n")
    with pytest.raises(objfile.ObjError, match="holds no mesh"):
        objfile.read_obj(path)


def test_preview_reader_takes_the_engine_files_and_refuses_bad_ones(tmp_path):
    path = tmp_path / "preview-0000.npz"
    np.savez(path, vertices=np.eye(3, dtype=np.float32), faces=np.array([[0, 1, 2]], np.int32))
    mesh = objfile.read_preview(path, "npz")
    assert mesh.face_sizes.tolist() == [3] and mesh.loop_vertices.tolist() == [0, 1, 2] and mesh.loop_uvs is None
    with pytest.raises(objfile.ObjError, match="unknown preview format 'ply'"):
        objfile.read_preview(path, "ply")
    np.savez(path, vertices=np.eye(3, dtype=np.float32), faces=np.array([[0, 1, 3]], np.int32))
    with pytest.raises(objfile.ObjError, match="out of range"):
        objfile.read_preview(path, "npz")
    np.savez(path, points=np.eye(3))
    with pytest.raises(objfile.ObjError, match="not a preview mesh"):
        objfile.read_preview(path, "npz")


def test_a_superseded_preview_file_is_deleted(fake_root):
    """The worker client keeps the latest preview event; one nobody took is deleted."""
    worker = WorkerProcess(sys.executable, {}, fake_root / "job.json", cwd=fake_root)
    first, second = fake_root / "a.npz", fake_root / "b.npz"
    first.write_bytes(b"x")
    second.write_bytes(b"y")
    worker._apply({"type": "preview", "path": str(first), "format": "npz", "step": 0})
    worker._apply({"type": "preview", "path": str(second), "format": "npz", "step": 5})
    assert not first.exists() and worker.take_preview()["step"] == 5 and worker.take_preview() is None
    assert second.exists()  # the taker owns it


# -- camera maths ----------------------------------------------------------------------------------


def test_intrinsics_of_a_plain_camera():
    k = camera_math.camera_intrinsics(lens=50, sensor_width=36, sensor_height=24, sensor_fit="AUTO", shift_x=0,
                                      shift_y=0, width=1920, height=1080)
    assert k.fl_x == pytest.approx(50 * 1920 / 36) and k.fl_y == k.fl_x
    assert (k.cx, k.cy, k.w, k.h) == (960, 540, 1920, 1080)
    # AUTO on a portrait image fits the sensor width to the height
    k = camera_math.camera_intrinsics(lens=50, sensor_width=36, sensor_height=24, sensor_fit="AUTO", shift_x=0.1,
                                      shift_y=-0.2, width=600, height=800)
    assert k.fl_x == pytest.approx(50 * 800 / 36)
    assert (k.cx, k.cy) == pytest.approx((300 - 0.1 * 800, 400 - 0.2 * 800))
    # the same field of view as NeRF-synthetic's camera_angle_x
    angle = 2 * math.atan(36 / 2 / 50)
    assert k.fl_y == pytest.approx(0.5 * 800 / math.tan(angle / 2))
    with pytest.raises(ValueError, match="sensor fit"):
        camera_math.camera_intrinsics(lens=50, sensor_width=36, sensor_height=24, sensor_fit="DIAGONAL", shift_x=0,
                                      shift_y=0, width=10, height=10)


def test_rigid_removes_scale_and_safe_names(tmp_path):
    scaled = [[2, 0, 0, 1], [0, 0, -3, 2], [0, 0.5, 0, 3], [0, 0, 0, 1]]
    assert camera_math.rigid(scaled) == [[1, 0, 0, 1], [0, 0, -1, 2], [0, 1, 0, 3], [0, 0, 0, 1]]
    taken: set[str] = set()
    assert [camera_math.unique_name(n, taken) for n in ("Cam.001", "cam.001", "Ä b/c", "")] == \
        ["Cam.001", "cam.001_2", "b_c", "camera"]
    path = camera_math.write_transforms(tmp_path / "d", [{"file_path": "images/a.png"}], {"x": 1})
    assert path.name == "transforms.json" and '"x": 1' in path.read_text()
