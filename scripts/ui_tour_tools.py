"""A tour of Meshlift's other tools in Blender's real interface (not run in CI), with ui_tour.py's helpers.

In a fresh user profile, after installing the zip and getting an engine (``--engine-python``, or
Set Up Engine as in ``ui_tour.py``), three modal jobs run as an artist would start them:

1. **Reconstruct from Selected Cameras** with the Depth Fusion method (``--method depth``) and the
   Z/Normal passes on (the default for scene cameras): the cameras are rendered one per timer tick,
   with their passes; the dataset must hold a depth EXR per camera, and the result must lie on the
   monkey (mean surface distances both ways, in scene units).
2. **Texture Selected Mesh from Cameras**: a decimated, UV-less copy of the monkey with its own
   rotation (the mesh turned back, so it covers the monkey) is the active object, the cameras are
   selected; its vertices, faces and transform must stay as they were, it must get a material
   with the baked image and a UV map, and one Undo must take them away again.
3. **Relief from Image** through its file browser: a 128 px image and the normal map of a
   hemisphere (8-bit PNG, made here), confirmed in the file browser; the relief must land at the 3D
   cursor with the hemisphere's height.

Each job's longest gap between two ticks of a 50 ms timer goes into ``OUT/report.json`` with the
checks and screenshots. Run it like ``ui_tour.py`` (same arguments), e.g.::

    HOST_PYTHON=$PWD/.venv/bin/python bash ../shared/tools/blender-ui/run.sh scripts/ui_tour_tools.py \\
      /tmp/scene.blend -- --checkout $PWD --out /tmp/ui-tools --engine-python /usr/local/bin/host-python
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ui_tour as ui  # beside this script (the path above)

RELIEF_SIZE = 128
DOME_RADIUS = 50  # pixels
RELIEF_WIDTH = 2.0


def world_triangles(obj: bpy.types.Object) -> np.ndarray:
    """``[T, 3, 3]`` the evaluated mesh's triangles in world space."""
    mesh = obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).to_mesh()
    try:
        mesh.calc_loop_triangles()
        corners = np.zeros(len(mesh.loop_triangles) * 3, dtype=np.int64)
        mesh.loop_triangles.foreach_get("vertices", corners)
        points = np.zeros(len(mesh.vertices) * 3, dtype=np.float64)
        mesh.vertices.foreach_get("co", points)
    finally:
        obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).to_mesh_clear()
    matrix = np.array(obj.matrix_world)
    world = points.reshape(-1, 3) @ matrix[:3, :3].T + matrix[:3, 3]
    return world[corners.reshape(-1, 3)]


def surface_samples(triangles: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """``[count, 3]`` points spread uniformly over ``triangles [T, 3, 3]``."""
    rng = np.random.default_rng(seed)
    areas = np.linalg.norm(np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0]), axis=1)
    chosen = triangles[rng.choice(len(triangles), count, p=areas / areas.sum())]
    u, v = rng.random((2, count, 1))
    flip = u + v > 1
    u, v = np.where(flip, 1 - u, u), np.where(flip, 1 - v, v)
    return chosen[:, 0] + u * (chosen[:, 1] - chosen[:, 0]) + v * (chosen[:, 2] - chosen[:, 0])


def mean_nearest(points: np.ndarray, targets: np.ndarray) -> float:
    """Mean distance from each of ``points [N, 3]`` to its nearest of ``targets [M, 3]``."""
    nearest = [np.sqrt(((chunk[:, None] - targets[None]) ** 2).sum(-1).min(1)) for chunk in np.array_split(
        points, max(1, len(points) // 256))]
    return float(np.concatenate(nearest).mean())


def surface_distance(result: bpy.types.Object, reference: bpy.types.Object, count: int = 4000) -> dict:
    """Mean surface distances result -> reference and back, their floor (the same between two
    samplings of the reference), and the reference's bounding-box diagonal, in scene units."""
    a = surface_samples(world_triangles(result), count)
    b = surface_samples(world_triangles(reference), count, seed=1)
    floor = mean_nearest(surface_samples(world_triangles(reference), count, seed=2), b)
    return {"result_to_reference": round(mean_nearest(a, b), 4), "reference_to_result": round(mean_nearest(b, a), 4),
            "sampling_floor": round(floor, 4),
            "reference_diagonal": round(float(np.linalg.norm(b.max(0) - b.min(0))), 4)}


def wait_for_job(jobs, name: str, shots: bool = True) -> Iterator[float]:
    """Follow the job the operator started to its end, with the heartbeat's phase ``rendering``
    then ``engine``; returns (``yield from``) the job."""
    job = yield from ui.started_job(jobs)
    shot_taken = False
    while jobs.is_running():
        if not job.rendering and ui.Heartbeat.phase.endswith("rendering"):
            ui.Heartbeat.measure(ui.Heartbeat.phase.removesuffix("rendering") + "engine")
        if shots and not shot_taken and job.rendering and job.renders.index >= 4:
            ui.shot(f"{name}-rendering")
            shot_taken = True
        yield 0.2
    ui.Heartbeat.measure(None)
    return job


def ended(jobs, name: str, job, **checks: object) -> None:
    ui.log(f"{name} ended", status=jobs.STATUS.state, message=jobs.STATUS.message, lines=list(jobs.STATUS.lines),
           seconds=round(job.elapsed, 1) if job else None, **checks)


def depth_fusion(session: ui.Session) -> Iterator[float]:
    """Reconstruct from the selected cameras with ``depth`` and the Z/Normal passes."""
    jobs = session.addon.operators.scene_job
    settings = bpy.context.scene.meshlift
    settings.method_id, settings.preset_id, settings.preview = "depth", "fast", False
    settings.depth_normals = True
    session.prefs.keep_files = True  # to look at the dataset afterwards
    ui.Heartbeat.measure("depth job: rendering")
    with session.override():
        result = list(bpy.ops.meshlift.reconstruct_cameras("INVOKE_DEFAULT"))
    ui.log("reconstruct (depth)", result=result)
    job = yield from ui.started_job(jobs)
    folder = job.renders.folder if job is not None and job.renders is not None else None
    job = yield from wait_for_job(jobs, "10-depth")
    checks: dict = {}
    if folder is not None and (folder / "transforms.json").is_file():
        frames = json.loads((folder / "transforms.json").read_text())["frames"]
        checks["dataset"] = {"frames": len(frames), "with_depth": sum("depth_file_path" in f for f in frames),
                             "depth_files": len(list((folder / "depth").glob("*.exr")))}
    new = bpy.data.objects.get(job.object_name) if job and job.object_name else None
    if new is not None:
        checks["result"] = {"name": new.name, "faces": len(new.data.polygons),
                            "collection": [c.name for c in new.users_collection],
                            **surface_distance(new, bpy.data.objects["Monkey"])}
    session.prefs.keep_files = False
    ended(jobs, "depth job", job, **checks)
    yield 1.5
    ui.shot("11-depth-done")
    if new is not None:  # out of the way of the next jobs' renders and screenshots
        new.hide_render = True
        new.hide_set(True)


def retopo_copy(session: ui.Session) -> bpy.types.Object:
    """A decimated copy of the monkey without UVs, rotated 30 degrees with its mesh turned back (so it
    covers the monkey), as the active object with the cameras selected."""
    monkey = bpy.data.objects["Monkey"]
    copy = monkey.copy()
    copy.data = monkey.data.copy()
    copy.name = copy.data.name = "Monkey.retopo"
    bpy.context.scene.collection.objects.link(copy)
    for layer in list(copy.data.uv_layers):
        copy.data.uv_layers.remove(layer)
    copy.data.materials.clear()
    decimate = copy.modifiers.new("Decimate", "DECIMATE")
    decimate.ratio = 0.5
    with bpy.context.temp_override(object=copy, active_object=copy):
        bpy.ops.object.modifier_apply(modifier=decimate.name)
    copy.data.transform(Matrix.Rotation(-math.radians(30), 4, "Z"))
    copy.rotation_euler.z = math.radians(30)
    bpy.context.view_layer.update()
    for obj in bpy.context.scene.objects:
        obj.select_set(obj.type == "CAMERA" or obj is copy)
    bpy.context.view_layer.objects.active = copy
    bpy.ops.ed.undo_push(message="Meshlift tour: a retopologized copy")  # what one Undo must come back to
    return copy


def mesh_state(obj: bpy.types.Object) -> dict:
    points = np.zeros(len(obj.data.vertices) * 3, dtype=np.float64)
    obj.data.vertices.foreach_get("co", points)
    material = obj.active_material
    images = [n.image for n in material.node_tree.nodes if n.type == "TEX_IMAGE" and n.image] if material else []
    return {"vertices": len(obj.data.vertices), "faces": len(obj.data.polygons),
            "positions_sum": round(float(np.abs(points).sum()), 6), "matrix": [list(r) for r in obj.matrix_world],
            "uv_maps": [layer.name for layer in obj.data.uv_layers], "material": material.name if material else None,
            "images": [[image.name, *image.size] for image in images]}


def texture_selected(session: ui.Session) -> Iterator[float]:
    """Texture Selected Mesh from Cameras on the retopologized copy."""
    jobs = session.addon.operators.scene_job
    target = retopo_copy(session)
    before = mesh_state(target)
    yield 0.5
    ui.Heartbeat.measure("texture job: rendering")
    with session.override():
        result = list(bpy.ops.meshlift.texture_selected("INVOKE_DEFAULT"))
    ui.log("texture selected", result=result)
    job = yield from wait_for_job(jobs, "20-texture")
    after = mesh_state(target)
    kept = {key: before[key] == after[key] for key in ("vertices", "faces", "positions_sum", "matrix")}
    ended(jobs, "texture job", job, before=before, after=after, kept=kept)
    bpy.data.objects["Monkey"].hide_set(True)  # the textured copy alone
    session.area.spaces.active.shading.color_type = "TEXTURE"
    yield 1.5
    ui.shot("21-texture-done")
    with session.override():
        bpy.ops.ed.undo()
    yield 1.0
    target = bpy.data.objects["Monkey.retopo"]  # undo replaced the objects
    ui.log("texture: after undo", back_as_before=mesh_state(target) == before, state=mesh_state(target))
    bpy.data.objects["Monkey"].hide_set(False)
    target.hide_set(True)


def relief_inputs(folder: Path) -> tuple[Path, Path]:
    """A colour image and the 8-bit PNG normal map (OpenGL: green up) of a hemisphere of
    ``DOME_RADIUS`` pixels in a ``RELIEF_SIZE``² picture."""
    size = RELIEF_SIZE
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)  # Blender's rows go up
    dx, dy = (x - size / 2 + 0.5) / DOME_RADIUS, (y - size / 2 + 0.5) / DOME_RADIUS
    inside = dx**2 + dy**2 < 1.0
    nz = np.sqrt(np.clip(1.0 - dx**2 - dy**2, 0.0, 1.0))
    normals = np.where(inside[..., None], np.stack([dx, dy, nz], -1), [0.0, 0.0, 1.0])
    colour = np.stack([x / size, y / size, 0.5 + 0.5 * np.cos(x / 6) * np.cos(y / 6)], -1)
    paths = []
    for name, rgb in (("dome", colour), ("dome_normals", (normals + 1) / 2)):
        image = bpy.data.images.new(name, size, size, alpha=True)
        image.colorspace_settings.name = "Non-Color"  # the values are written as they are
        image.pixels.foreach_set(np.concatenate([rgb, np.ones((size, size, 1))], -1).astype(np.float32).ravel())
        image.filepath_raw = str(folder / f"{name}.png")
        image.file_format = "PNG"
        image.save()
        bpy.data.images.remove(image)
        paths.append(folder / f"{name}.png")
    return paths[0], paths[1]


def file_browser() -> tuple[bpy.types.Window, bpy.types.Area] | None:
    for window in bpy.context.window_manager.windows:
        for area in window.screen.areas:
            if area.type == "FILE_BROWSER":
                return window, area
    return None


def relief(session: ui.Session) -> Iterator[float]:
    """Relief from Image, its image chosen in the file browser it opens."""
    jobs = session.addon.operators.scene_job
    image, normals = relief_inputs(ui.OUT)
    bpy.context.scene.cursor.location = (3.0, 0.0, 0.0)
    ui.Heartbeat.measure("relief job: engine")
    with session.override():
        result = list(bpy.ops.meshlift.relief_image("INVOKE_DEFAULT"))
    ui.log("relief from image (invoke)", result=result)
    for _ in range(20):
        found = file_browser()
        if found is not None:
            break
        yield 0.25
    if found is None:
        ui.log("relief: no file browser opened")
        return
    window, area = found
    space = area.spaces.active
    operator = space.active_operator
    operator.source, operator.map_path, operator.width = "NORMALS", str(normals), RELIEF_WIDTH
    space.params.directory = str(image.parent).encode()
    space.params.filename = image.name
    yield 1.0
    ui.shot("30-relief-file-browser")
    yield 0.5
    region = next(r for r in area.regions if r.type == "WINDOW")
    with bpy.context.temp_override(window=window, area=area, region=region):
        ui.log("relief: file browser confirmed", result=list(bpy.ops.file.execute()))
    yield 0.2
    job = yield from wait_for_job(jobs, "30-relief", shots=False)
    checks: dict = {}
    new = bpy.data.objects.get(job.object_name) if job and job.object_name else None
    if new is not None:
        checks["relief"] = {"name": new.name, "location": list(new.location), "dimensions": list(new.dimensions),
                            "expected_height": round(DOME_RADIUS / (RELIEF_SIZE - 1) * RELIEF_WIDTH, 4),
                            "faces": len(new.data.polygons)}
    ended(jobs, "relief job", job, **checks)
    session.region.data.view_location = (3.0, 0.0, 0.0)
    session.region.data.view_rotation = (0.85, 0.35, 0.15, 0.35)
    session.region.data.view_distance = 5.0
    yield 1.5
    ui.shot("31-relief-done")


def tour() -> Iterator[float]:
    session = yield from ui.install()
    if not (yield from ui.engine(session)):
        return
    yield 1.0
    for part in (depth_fusion, texture_selected, relief):
        yield from part(session)
        yield 1.0
    yield 2.0


if __name__ == "__main__":
    ui.run(tour())
