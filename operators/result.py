# SPDX-License-Identifier: GPL-3.0-or-later
"""The engine's OBJ + textures -> a new object in the scene, built with ``bpy.data`` only.

No importer operator, no selection change, no context needed (it runs from a modal operator's
timer tick as well as from a blocking loop). New datablocks only: the mesh, its material, the
packed texture images, the object, and the output collection if it does not exist yet. The object
keeps an identity transform: the engine writes the cameras' world frame, so it overlays the source.

The material is a Principled BSDF: the colour texture (sRGB) into Base Color; with a PBR result
(the MTL has ``map_Pr``, ``map_Pm``, ``norm``) the roughness and metallic images (non-colour data)
into Roughness and Metallic, and the tangent-space normal map (non-colour) through a Normal Map node
on the mesh's UV map into Normal. Its Specular IOR Level is the MTL's ``Ks``, as Blender's OBJ importer
reads it (the engine writes half the learned specular level for a PBR result, 0 for a baked texture,
whose colours already hold the highlights). The mesh gets the OBJ's normals as custom normals, the ones the
normal map was baked against. ``set_world`` makes the estimated environment (an equirectangular HDR)
the scene's world; ``apply_material`` puts a texture job's material on an existing object.
"""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np

from ..bridge.objfile import ObjMesh, read_obj

UV_MAP = "UVMap"


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
        uv_layer = mesh.uv_layers.new(name=UV_MAP)
        uv_layer.data.foreach_set("uv", np.ascontiguousarray(data.loop_uvs, dtype=np.float32).ravel())
    mesh.update(calc_edges=True)
    if validate:
        mesh.validate(clean_customdata=False)
    mesh.shade_smooth()
    if data.loop_normals is not None:
        mesh.normals_split_custom_set(np.ascontiguousarray(data.loop_normals, dtype=np.float32))
    return mesh


def build_mesh(name: str, data: ObjMesh) -> bpy.types.Mesh:
    return fill_mesh(bpy.data.meshes.new(name), data)


def build_material(name: str, image: bpy.types.Image | None,
                   maps: dict[str, bpy.types.Image] | None = None, uv_map: str = "UVMap",
                   specular_level: float | None = None) -> bpy.types.Material:
    """Principled BSDF fed by the colour texture; fully rough and not metallic when that is all (it
    holds lit colours), else fed by the PBR ``maps`` (``roughness``, ``metallic``, ``normal``; their
    images are set to non-colour data), the normal map through a tangent-space Normal Map node on
    ``uv_map``; its Specular IOR Level ``specular_level`` (the MTL's ``Ks``) when given."""
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
    if specular_level is not None:
        bsdf.inputs["Specular IOR Level"].default_value = specular_level
    if image is not None:
        texture = nodes.new("ShaderNodeTexImage")
        texture.name = texture.label = "Meshlift Texture"
        texture.image = image
        texture.location = (bsdf.location.x - 320, bsdf.location.y)
        links.new(texture.outputs["Color"], bsdf.inputs["Base Color"])
    for row, (kind, socket) in enumerate((("roughness", "Roughness"), ("metallic", "Metallic"), ("normal", "Normal"))):
        map_image = (maps or {}).get(kind)
        if map_image is None:
            continue
        map_image.colorspace_settings.name = "Non-Color"
        node = nodes.new("ShaderNodeTexImage")
        node.name = node.label = f"Meshlift {kind.title()}"
        node.image = map_image
        node.location = (bsdf.location.x - 320 - 200 * (kind == "normal"), bsdf.location.y - 300 * (row + 1))
        if kind == "normal":
            normal_map = nodes.new("ShaderNodeNormalMap")
            normal_map.space = "TANGENT"
            normal_map.uv_map = uv_map
            normal_map.location = (bsdf.location.x - 200, node.location.y)
            links.new(node.outputs["Color"], normal_map.inputs["Color"])
            links.new(normal_map.outputs["Normal"], bsdf.inputs["Normal"])
        else:
            links.new(node.outputs["Color"], bsdf.inputs[socket])
    return material


def load_images(data: ObjMesh, name: str, created: list[tuple[object, bpy.types.ID]]
                ) -> tuple[bpy.types.Image | None, dict[str, bpy.types.Image]]:
    """The OBJ's colour texture and PBR maps as packed images (recorded in ``created``)."""
    def load(path: Path, suffix: str) -> bpy.types.Image:
        image = bpy.data.images.load(str(path), check_existing=False)
        created.append((bpy.data.images, image))
        image.name = f"{name}_{suffix}"
        image.pack()
        return image

    image = None if data.texture is None else load(data.texture, "texture")
    return image, {kind: load(path, kind) for kind, path in data.maps.items()}


def build_result(scene: bpy.types.Scene, obj_path: str | Path, name: str, collection_name: str) -> bpy.types.Object:
    """Create the result object from the engine's OBJ (textures packed into the .blend).

    On any failure the datablocks created so far are removed again, so the file is unchanged.
    """
    data = read_obj(obj_path)  # before touching bpy.data: a bad file changes nothing
    created: list[tuple[object, bpy.types.ID]] = []
    try:
        image, maps = load_images(data, name, created)
        mesh = build_mesh(name, data)
        created.append((bpy.data.meshes, mesh))
        material = build_material(name, image, maps, UV_MAP, data.specular_level)
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


def apply_material(obj: bpy.types.Object, obj_path: str | Path, name: str,
                   uvs: np.ndarray | None = None) -> bpy.types.Material:
    """Give the existing mesh object ``obj`` the material of a texture job's OBJ (textures packed),
    as its only material; with ``uvs`` (``[L, 2]``, one per loop of its mesh; only for a mesh without
    UV maps) first as a new UV map. Shape, transform and everything else of ``obj`` stay as they are.

    On any failure the datablocks created so far are removed again and ``obj`` is unchanged.
    """
    data = read_obj(obj_path)
    mesh = obj.data
    created: list[tuple[object, bpy.types.ID]] = []
    try:
        image, maps = load_images(data, name, created)
        uv_map = mesh.uv_layers.active.name if uvs is None and mesh.uv_layers.active else UV_MAP
        material = build_material(name, image, maps, uv_map, data.specular_level)
        created.append((bpy.data.materials, material))
    except Exception:
        for collection, block in reversed(created):
            collection.remove(block)
        raise
    if uvs is not None:
        layer = mesh.uv_layers.new(name=UV_MAP)
        layer.data.foreach_set("uv", np.ascontiguousarray(uvs, dtype=np.float32).ravel())
        mesh.uv_layers.active = layer
    mesh.materials.clear()
    mesh.materials.append(material)
    return material


def set_world(scene: bpy.types.Scene, hdr_path: str | Path, name: str) -> bpy.types.World:
    """A new world that emits the equirectangular HDR at ``hdr_path`` (packed), made ``scene``'s world."""
    image = bpy.data.images.load(str(hdr_path), check_existing=False)
    image.name = f"{name}_environment"
    image.pack()
    world = bpy.data.worlds.new(f"{name} Light")
    world.use_nodes = True
    nodes = world.node_tree.nodes
    background = next(n for n in nodes if n.type == "BACKGROUND")
    texture = nodes.new("ShaderNodeTexEnvironment")
    texture.name = texture.label = "Meshlift Environment"
    texture.image = image
    texture.location = (background.location.x - 320, background.location.y)
    world.node_tree.links.new(texture.outputs["Color"], background.inputs["Color"])
    background.inputs["Strength"].default_value = 1.0
    scene.world = world
    return world
