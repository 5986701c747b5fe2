# SPDX-License-Identifier: GPL-3.0-or-later
"""The engine's OBJ + texture -> a new object in the scene, built with ``bpy.data`` only.

No importer operator, no selection change, no context needed (it runs from a modal operator's
timer tick as well as from a blocking loop). New datablocks only: the mesh, its material, the
packed texture image, the object, and the output collection if it does not exist yet. The object
keeps an identity transform: the engine writes the cameras' world frame, so it overlays the source.
"""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np

from ..bridge.objfile import ObjMesh, read_obj


def output_collection(scene: bpy.types.Scene, name: str) -> bpy.types.Collection:
    """The collection called ``name`` in ``scene`` (created under the scene collection if needed)."""
    name = name.strip() or "Meshlift"
    for collection in scene.collection.children_recursive:
        if collection.name == name:
            return collection
    collection = bpy.data.collections.new(name)
    scene.collection.children.link(collection)
    return collection


def fill_mesh(mesh: bpy.types.Mesh, data: ObjMesh, validate: bool = True) -> bpy.types.Mesh:
    """Give the empty ``mesh`` the polygons (and UVs) of ``data``, smooth-shaded; returns it.
    ``validate=False`` skips Blender's check of the result (a third of the time; for data whose
    indices were checked already)."""
    mesh.vertices.add(len(data.vertices))
    mesh.vertices.foreach_set("co", np.ascontiguousarray(data.vertices, dtype=np.float32).ravel())
    mesh.loops.add(len(data.loop_vertices))
    mesh.loops.foreach_set("vertex_index", np.ascontiguousarray(data.loop_vertices, dtype=np.int32))
    mesh.polygons.add(len(data.face_sizes))
    mesh.polygons.foreach_set("loop_start", data.loop_starts)
    if data.loop_uvs is not None:
        uv_layer = mesh.uv_layers.new(name="UVMap")
        uv_layer.data.foreach_set("uv", np.ascontiguousarray(data.loop_uvs, dtype=np.float32).ravel())
    mesh.update(calc_edges=True)
    if validate:
        mesh.validate(clean_customdata=False)
    mesh.shade_smooth()
    return mesh


def build_mesh(name: str, data: ObjMesh) -> bpy.types.Mesh:
    return fill_mesh(bpy.data.meshes.new(name), data)


def build_material(name: str, image: bpy.types.Image | None) -> bpy.types.Material:
    """Principled BSDF fed by the baked texture (which holds lit colours: fully rough, no metal)."""
    material = bpy.data.materials.new(name)
    material.use_nodes = True
    nodes, links = material.node_tree.nodes, material.node_tree.links
    bsdf = next((n for n in nodes if n.type == "BSDF_PRINCIPLED"), None)
    if bsdf is None:
        bsdf = nodes.new("ShaderNodeBsdfPrincipled")
        output = next(n for n in nodes if n.type == "OUTPUT_MATERIAL")
        links.new(bsdf.outputs["BSDF"], output.inputs["Surface"])
    bsdf.inputs["Roughness"].default_value = 1.0
    bsdf.inputs["Metallic"].default_value = 0.0
    if image is not None:
        texture = nodes.new("ShaderNodeTexImage")
        texture.name = texture.label = "Meshlift Texture"
        texture.image = image
        texture.location = (bsdf.location.x - 320, bsdf.location.y)
        links.new(texture.outputs["Color"], bsdf.inputs["Base Color"])
    return material


def build_result(scene: bpy.types.Scene, obj_path: str | Path, name: str, collection_name: str) -> bpy.types.Object:
    """Create the result object from the engine's OBJ (texture packed into the .blend).

    On any failure the datablocks created so far are removed again, so the file is unchanged.
    """
    data = read_obj(obj_path)  # before touching bpy.data: a bad file changes nothing
    created: list[tuple[object, bpy.types.ID]] = []
    try:
        image = None
        if data.texture is not None:
            image = bpy.data.images.load(str(data.texture), check_existing=False)
            created.append((bpy.data.images, image))
            image.name = f"{name}_texture"
            image.pack()
        mesh = build_mesh(name, data)
        created.append((bpy.data.meshes, mesh))
        material = build_material(name, image)
        created.append((bpy.data.materials, material))
        mesh.materials.append(material)
        obj = bpy.data.objects.new(name, mesh)
        created.append((bpy.data.objects, obj))
        collection = output_collection(scene, collection_name)
        collection.objects.link(obj)
    except Exception:
        for collection, block in reversed(created):
            collection.remove(block)
        raise
    return obj
