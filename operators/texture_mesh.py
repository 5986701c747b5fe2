# SPDX-License-Identifier: GPL-3.0-or-later
"""Texture Selected Mesh from Cameras: bake the selected cameras' views onto a mesh the artist has.

The active mesh object (say a retopologized or sculpted version of a result) is left out of the
renders while the selected cameras are exported as a dataset (one camera per timer tick in the
interface, like the reconstruct operators), written as a world-space triangle OBJ
with its UVs (a mesh without a UV map is unwrapped first, Smart UV Project on a temporary copy) and
corner normals, and sent to the engine as a ``texture`` job (baked, or with the engine option
``material=pbr`` a PBR material). When it is done the object gets the new material (and the new UV
map when it had none); its vertices, faces and transform are never changed. Cancel or failure
leaves the scene as it was.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bpy
import numpy as np

from ..bridge.errors import UserError
from ..bridge.objfile import write_obj
from ..engine.protocol import TextureJob
from . import result, scene_job
from .reconstruct import FromCameras, parse_options


def target_mesh(context: bpy.types.Context, name: str = "") -> bpy.types.Object:
    """The mesh object to texture: ``name``, else the active object; raises :class:`UserError`."""
    obj = context.scene.objects.get(name) if name else context.active_object
    if obj is None or obj.type != "MESH":
        what = f"'{name}' is not a mesh object" if name else "The active object is not a mesh"
        raise UserError(f"{what}. Make the mesh to texture the active object, and select the cameras too.")
    if len(obj.data.polygons) == 0:
        raise UserError(f"The mesh '{obj.name}' has no faces to texture.")
    return obj


def smart_project_uvs(context: bpy.types.Context, obj: bpy.types.Object) -> np.ndarray:
    """``[L, 2]`` per-loop UVs of Blender's Smart UV Project on a copy of ``obj``'s mesh, unwrapped in a
    temporary scene (the object, the scene, its selection and active object are left as they are)."""
    mesh = obj.data.copy()
    scene = bpy.data.scenes.new("Meshlift unwrap")
    temporary = bpy.data.objects.new("Meshlift unwrap", mesh)
    try:
        scene.collection.objects.link(temporary)
        view_layer = scene.view_layers[0]
        view_layer.objects.active = temporary
        mesh.uv_layers.new(name=result.UV_MAP)
        mesh.polygons.foreach_set("select", np.ones(len(mesh.polygons), dtype=bool))
        with context.temp_override(scene=scene, view_layer=view_layer, active_object=temporary, object=temporary,
                                   edit_object=temporary, selected_objects=[temporary],
                                   selected_editable_objects=[temporary]):
            bpy.ops.object.mode_set(mode="EDIT")
            bpy.ops.uv.smart_project(island_margin=0.005)
            bpy.ops.object.mode_set(mode="OBJECT")
        uvs = np.zeros(len(mesh.loops) * 2, dtype=np.float32)
        mesh.uv_layers[0].data.foreach_get("uv", uvs)
    finally:
        bpy.data.objects.remove(temporary)
        bpy.data.meshes.remove(mesh)
        bpy.data.scenes.remove(scene)
    return uvs.reshape(-1, 2)


def write_mesh(obj: bpy.types.Object, path: Path, uvs: np.ndarray | None) -> Path:
    """``obj``'s mesh as a world-space triangle OBJ with per-corner UVs (``uvs [L, 2]``, else its active
    UV map) and normals, for the engine."""
    mesh = obj.data
    mesh.calc_loop_triangles()
    loops = np.zeros(len(mesh.loop_triangles) * 3, dtype=np.int64)
    mesh.loop_triangles.foreach_get("loops", loops)
    loops = loops.reshape(-1, 3)  # [T, 3]
    corners = np.zeros(len(mesh.loops), dtype=np.int64)
    mesh.loops.foreach_get("vertex_index", corners)
    positions = np.zeros(len(mesh.vertices) * 3, dtype=np.float32)
    mesh.vertices.foreach_get("co", positions)
    normals = np.zeros(len(mesh.loops) * 3, dtype=np.float32)
    mesh.corner_normals.foreach_get("vector", normals)
    if uvs is None:
        uvs = np.zeros(len(mesh.loops) * 2, dtype=np.float32)
        mesh.uv_layers.active.data.foreach_get("uv", uvs)
    matrix = np.array(obj.matrix_world, dtype=np.float64)
    world = positions.reshape(-1, 3) @ matrix[:3, :3].T + matrix[:3, 3]
    normal_matrix = np.linalg.inv(matrix[:3, :3]).T
    world_normals = normals.reshape(-1, 3) @ normal_matrix.T
    world_normals /= np.maximum(np.linalg.norm(world_normals, axis=1, keepdims=True), 1e-12)
    if np.linalg.det(matrix[:3, :3]) < 0:  # a mirroring transform turns the faces inside out
        loops = loops[:, ::-1]
    return write_obj(path, world, corners[loops], uvs.reshape(-1, 2)[loops], world_normals[loops])


def start_texture(context: bpy.types.Context, mesh_name: str = "", camera_names: list[str] | None = None,
                  extra_options: dict[str, Any] | None = None, *, log: Any = None,
                  interactive: bool = False) -> scene_job.SceneJob:
    """Export the cameras (the mesh left out of the renders) and the mesh, then start the engine's
    texture job. An ``interactive`` job renders one camera per :meth:`SceneJob.step`; otherwise all
    are rendered here first."""
    scene_job.check_idle()
    obj = target_mesh(context, mesh_name)
    cameras = scene_job.scene_cameras(context, camera_names)
    settings = scene_job.job_settings(context, extra_options)
    name = scene_job.source_name(obj.name)
    renders = scene_job.camera_renders(context, cameras, name, hidden=(obj.name,))
    new_uvs = None if obj.data.uv_layers.active is not None else smart_project_uvs(context, obj)
    if not interactive:
        scene_job.render_all(context, renders, log)
    renders.folder.mkdir(parents=True, exist_ok=True)
    loops = len(obj.data.loops)
    mesh_file = write_mesh(obj, renders.folder / "mesh_to_texture.obj", new_uvs)
    job = scene_job.launch(context, name, renders.folder, settings, [renders.folder],
                           job_fields={"mesh": str(mesh_file)}, job_type=TextureJob,
                           renders=renders if interactive else None)
    job.warnings.extend(renders.warnings)
    object_name = obj.name

    def build(scene: bpy.types.Scene, files: dict[str, str]) -> bpy.types.Object:
        target = scene.objects.get(object_name)
        if target is None or target.type != "MESH" or len(target.data.loops) != loops:
            raise RuntimeError(f"the mesh '{object_name}' was removed or edited while it was textured")
        if new_uvs is not None and target.data.uv_layers:
            raise RuntimeError(f"the mesh '{object_name}' got a UV map while it was textured")
        result.apply_material(target, files["obj"], name, new_uvs)
        return target

    job.build, job.action = build, "Textured"
    return job


class MESHLIFT_OT_texture_selected(FromCameras, bpy.types.Operator):
    """Texture the active mesh from the selected cameras, keeping its shape and transform"""

    bl_description = ("Render the selected cameras with the active mesh hidden (or use their background images), "
                      "then bake a texture, or with the engine option material=pbr a PBR material, onto the mesh's "
                      "UVs (unwrapped first when it has none). Its shape and transform stay as they are")
    bl_idname = "meshlift.texture_selected"
    bl_label = "Texture Selected Mesh from Cameras"

    mesh: bpy.props.StringProperty(name="Mesh", description="The mesh object (default: the active object)",
                                   default="", options={"HIDDEN", "SKIP_SAVE"})

    def start(self, context: bpy.types.Context, interactive: bool) -> scene_job.SceneJob:
        return start_texture(context, self.mesh, self.camera_names(), parse_options(self.options), log=self.log(),
                             interactive=interactive)


CLASSES = (MESHLIFT_OT_texture_selected,)
