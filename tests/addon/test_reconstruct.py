"""Reconstruction through the real worker subprocess: the operator (blocking path, as in
background mode), the modal path driven by timer ticks, and cancelling with Esc or the button."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from engine.protocol import parse_job
from tests.addon.blender import FAST_OPTIONS, build_scene, select_cameras, snapshot, submodule
from tests.support import alive

pytestmark = pytest.mark.usefixtures("addon", "empty_scene", "prefs")


def world_bounds(obj) -> np.ndarray:
    matrix = np.array(obj.matrix_world)
    points = np.array([v.co for v in obj.data.vertices]) @ matrix[:3, :3].T + matrix[:3, 3]
    return np.stack([points.min(axis=0), points.max(axis=0)])


def check_result(obj, source_bounds: np.ndarray, before: dict) -> None:
    """The result: a new mesh with UVs and a packed texture in a material, in the Meshlift
    collection, in the cameras' world frame (it overlays the source); nothing else changed."""
    import bpy

    assert obj.type == "MESH"
    assert np.allclose(np.array(obj.matrix_world), np.eye(4))
    mesh = obj.data
    assert 100 < len(mesh.polygons) <= FAST_OPTIONS["faces"]
    assert len(mesh.uv_layers) == 1
    uvs = np.zeros(len(mesh.loops) * 2)
    mesh.uv_layers[0].data.foreach_get("uv", uvs)
    assert uvs.min() >= -1e-6 and uvs.max() <= 1 + 1e-6 and uvs.std() > 0.05
    material = obj.active_material
    nodes = material.node_tree.nodes
    texture = next(n for n in nodes if n.type == "TEX_IMAGE")
    bsdf = next(n for n in nodes if n.type == "BSDF_PRINCIPLED")
    assert bsdf.inputs["Base Color"].links[0].from_node == texture
    assert texture.image.packed_file is not None and tuple(texture.image.size) == (256, 256)
    assert [c.name for c in obj.users_collection] == ["Meshlift"]
    assert "Meshlift" in bpy.context.scene.collection.children
    extent = (source_bounds[1] - source_bounds[0]).max()
    assert np.abs(world_bounds(obj) - source_bounds).max() < 0.05 * extent, (world_bounds(obj), source_bounds)
    after = snapshot()
    for name, state in before["objects"].items():  # existing objects are never modified
        assert after["objects"][name] == state, name
    assert set(after["objects"]) - set(before["objects"]) == {obj.name}
    assert after["render"] == before["render"]
    new = {kind: set(after["blocks"][kind]) - set(before["blocks"][kind]) for kind in after["blocks"]}
    # everything the one undo step removes: the object, its mesh, material, image and the collection
    assert new == {"objects": {obj.name}, "meshes": {mesh.name}, "materials": {material.name},
                   "images": {texture.image.name}, "collections": {"Meshlift"}, "cameras": set(), "lights": set(),
                   "node_groups": set()}


@pytest.fixture(scope="module")
def monkey_dataset(request: pytest.FixtureRequest, tmp_path_factory) -> tuple[Path, np.ndarray]:
    """The test scene's cameras exported with the Export Cameras operator (a dataset folder), and
    the monkey's world bounds."""
    request.getfixturevalue("addon")
    import bpy

    bpy.ops.wm.read_homefile(use_empty=True)
    monkey = build_scene(bpy.context.scene)
    select_cameras(bpy.context)
    folder = tmp_path_factory.mktemp("datasets") / "monkey_views"
    assert bpy.ops.meshlift.export_cameras(directory=str(folder)) == {"FINISHED"}
    frames = json.loads((folder / "transforms.json").read_text())["frames"]
    assert len(frames) == 16 and all((folder / f["file_path"]).is_file() for f in frames)
    return folder, world_bounds(monkey)


def test_reconstruct_from_selected_cameras(monkey_dataset):
    import bpy

    context = bpy.context
    monkey = build_scene(context.scene)
    cameras = select_cameras(context)
    assert len(cameras) == 16
    submodule("properties").load_methods()
    context.scene.meshlift.preset = "fast"
    context.scene.meshlift.texture_size = "256"
    before = snapshot()
    started = time.monotonic()
    result = bpy.ops.meshlift.reconstruct_cameras(options=json.dumps({"resolution": 96, "faces": 4000}))
    assert result == {"FINISHED"}
    assert time.monotonic() - started < 120
    obj = bpy.data.objects["Scene_Cam"]  # named after the source: the scene and the cameras' name
    check_result(obj, world_bounds(monkey), before)
    status = submodule("operators.scene_job").STATUS
    assert status.state == "done" and "faces" in status.lines[0]
    assert "hull (fast)" in status.lines[1]
    cache = submodule("preferences").cache_root()
    assert not any((cache / "datasets").iterdir()) and not any((cache / "results").iterdir())  # tidied up


def test_modal_operator_follows_the_worker_on_timer_ticks(monkey_dataset):
    import bpy

    folder, bounds = monkey_dataset
    scene_job = submodule("operators.scene_job")
    operator = bpy.types.MESHLIFT_OT_reconstruct_folder
    context = bpy.context
    before = snapshot()
    job = scene_job.start_from_folder(context, str(folder), FAST_OPTIONS)
    # The job file the add-on wrote is one the engine's worker accepts, with the panel's choices.
    sent = parse_job(json.loads(job.worker.job_file.read_text()))
    assert (sent.dataset, sent.method, sent.options) == (str(folder), "hull", FAST_OPTIONS)
    reports: list[tuple[set, str]] = []
    fake = SimpleNamespace(_job=job, _timer=None, report=lambda kinds, text: reports.append((kinds, text)))
    assert scene_job.is_running() and scene_job.STATUS.state == "running"
    assert operator.modal(fake, context, SimpleNamespace(type="MOUSEMOVE", value="NOTHING")) == {"PASS_THROUGH"}
    deadline = time.monotonic() + 120
    while True:
        started = time.monotonic()
        result = operator.modal(fake, context, SimpleNamespace(type="TIMER", value="NOTHING"))
        if result != {"PASS_THROUGH"}:
            break
        assert time.monotonic() - started < 0.5  # a tick never waits for the worker
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert result == {"FINISHED"}, reports
    # every stage the worker reported reached the job (a short stage can fall between two ticks)
    assert {"carving", "texturing"} <= set(job.worker.stages)
    assert reports[-1][0] == {"INFO"} and "faces" in reports[-1][1]
    assert not scene_job.is_running() and not alive(job.worker.pid)
    check_result(bpy.data.objects["monkey_views"], bounds, before)


def start_and_wait_for_progress(folder: Path):
    import bpy

    scene_job = submodule("operators.scene_job")
    job = scene_job.start_from_folder(bpy.context, str(folder), {**FAST_OPTIONS, "resolution": 256})
    deadline = time.monotonic() + 60
    while job.progress.stage == "starting the engine" and time.monotonic() < deadline:
        job.step()
        time.sleep(0.05)
    assert job.running, job.outcome
    return job


def test_esc_cancels_and_leaves_the_scene_unchanged(monkey_dataset):
    import bpy

    folder, _ = monkey_dataset
    build_scene(bpy.context.scene)
    before = snapshot()
    job = start_and_wait_for_progress(folder)
    reports: list[tuple[set, str]] = []
    fake = SimpleNamespace(_job=job, _timer=None, report=lambda kinds, text: reports.append((kinds, text)))
    started = time.monotonic()
    result = bpy.types.MESHLIFT_OT_reconstruct_folder.modal(fake, bpy.context, SimpleNamespace(type="ESC",
                                                                                                value="PRESS"))
    assert result == {"CANCELLED"}
    assert time.monotonic() - started < 5
    assert not alive(job.worker.pid)
    assert reports == [({"WARNING"}, "Cancelled; the scene was not changed.")]
    assert submodule("operators.scene_job").STATUS.state == "cancelled"
    assert snapshot() == before
    assert not Path(job.worker.job["out"]).exists()


def test_cancel_button_stops_the_job(monkey_dataset):
    import bpy

    folder, _ = monkey_dataset
    before = snapshot()
    job = start_and_wait_for_progress(folder)
    assert bpy.ops.meshlift.cancel() == {"FINISHED"}
    assert not alive(job.worker.pid) and job.outcome.status == "cancelled"
    reports: list[tuple[set, str]] = []
    fake = SimpleNamespace(_job=job, _timer=None, report=lambda kinds, text: reports.append((kinds, text)))
    # the modal operator notices on its next tick and ends without adding anything
    result = bpy.types.MESHLIFT_OT_reconstruct_folder.modal(fake, bpy.context, SimpleNamespace(type="TIMER",
                                                                                                value="NOTHING"))
    assert result == {"CANCELLED"} and reports[0][0] == {"WARNING"}
    assert bpy.ops.meshlift.cancel() == {"CANCELLED"}  # nothing left to cancel: a warning, not an error
    assert snapshot() == before
