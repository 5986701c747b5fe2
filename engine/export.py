"""Write (and read back) textured meshes: OBJ + MTL + PNG, and binary glTF (GLB).

A mesh with a PBR material (``TexturedMesh.orm`` set) gets its maps in both formats:

* **GLB**: glTF 2.0 ``pbrMetallicRoughness`` (``baseColorTexture`` = the base colour,
  ``metallicRoughnessTexture`` = the ORM image, whose green is roughness and blue metallic),
  ``occlusionTexture`` (the same ORM image, red) and ``normalTexture`` (tangent space; glTF viewers and
  Blender's importer rebuild the MikkTSpace tangents the map was baked in), and the specular level as
  ``KHR_materials_specular``'s ``specularFactor`` (Blender's importer sets Specular IOR Level to half of it).
* **OBJ/MTL**: the PBR keys Blender's OBJ importer reads: ``map_Kd`` (base colour), ``map_Pr``
  (roughness) and ``map_Pm`` (metallic) as greyscale images of their own (MTL has no channel
  packing that Blender reads), the normal map under ``norm`` (the PBR extension's key) and
  ``map_Bump`` (the key Blender reads and writes for a normal map), and the ORM image beside them
  (``NAME_orm.png``) for game engines; ``Ks`` is the specular level as Blender's Specular IOR Level (half
  the glTF factor: Blender's OBJ importer reads ``Ks``'s mean into that socket, its exporter writes it
  back). Blender's OBJ importer marks every image sRGB; the Meshlift
  add-on sets roughness, metallic and the normal map to non-colour data.

Frames:

* **OBJ** is written in the dataset's world frame, exactly as given (Blender's Z-up world for the
  shared datasets). Blender's OBJ importer assumes Y-up by default: import with
  ``up_axis='Z', forward_axis='Y'`` to keep the frame.
* **GLB** follows the glTF standard, +Y up: a dataset point ``(x, y, z)`` is stored as
  ``(x, z, -y)``, the same conversion Blender's glTF exporter applies, so Blender's glTF importer
  (and any glTF viewer) shows the object upright and puts it back in the dataset frame.
  :func:`read_textured` undoes the conversion.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import trimesh
from PIL import Image

from .errors import InputError
from .texture import TexturedMesh

# Dataset frame (Z up) -> glTF frame (Y up): (x, y, z) -> (x, z, -y). A rotation: inverse = transpose.
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]], dtype=np.float32)
MATERIAL = "meshlift_texture"
SPECULAR_EXTENSION = "KHR_materials_specular"
# File name suffixes of the PBR maps (``NAME_<suffix>.png``), also their keys in a result's ``files``.
PBR_MAPS = ("orm", "roughness", "metallic", "normal")


def file_kind(path: Path, name: str) -> str:
    """The key of an output file in a result's ``files``: ``obj``, ``mtl``, ``png`` (the colour
    texture), ``glb``, or for ``NAME_<kind>.<ext>`` that ``kind`` (``orm``, ``normal``, ...)."""
    return path.stem[len(name) + 1:] if path.stem.startswith(f"{name}_") else path.suffix.lstrip(".")


def write_obj(mesh: TexturedMesh, folder: str | Path, name: str) -> list[Path]:
    """Write ``NAME.obj``, ``NAME.mtl`` and the texture ``NAME.png`` into ``folder`` (and with a PBR
    material ``NAME_orm.png``, ``NAME_roughness.png``, ``NAME_metallic.png``, ``NAME_normal.png``).

    The OBJ has one ``v``/``vt``/``vn`` per mesh vertex (positions in the dataset's world frame and
    units, UVs in the OBJ convention) and ``f a/a/a ...`` faces (1-based), with ``mtllib`` and
    ``usemtl``; the MTL's ``map_Kd`` names the PNG (see the module docstring for the PBR keys).

    Returns:
        The paths written: OBJ, MTL, PNG, then the PBR maps if any.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    obj, mtl, png = (folder / f"{name}.{suffix}" for suffix in ("obj", "mtl", "png"))
    Image.fromarray(np.ascontiguousarray(mesh.texture, dtype=np.uint8), "RGB").save(png)
    maps = _pbr_images(mesh)
    for kind, image in maps.items():
        image.save(folder / f"{name}_{kind}.png")
    if maps:
        level = f"{0.5 * mesh.specular:.6f}"
        material = (f"Kd 1.000000 1.000000 1.000000\nKs {level} {level} {level}\nPr 1.000000\nPm 1.000000\n"
                    f"d 1.0\nillum 2\nmap_Kd {png.name}\nmap_Pr {name}_roughness.png\nmap_Pm {name}_metallic.png\n"
                    f"norm {name}_normal.png\nmap_Bump -bm 1.000000 {name}_normal.png\n")
    else:
        material = (f"Ka 1.000000 1.000000 1.000000\nKd 1.000000 1.000000 1.000000\nKs 0.000000 0.000000 0.000000\n"
                    f"d 1.0\nillum 1\nmap_Kd {png.name}\n")
    mtl.write_text(f"newmtl {MATERIAL}\n{material}")
    faces = np.repeat(np.asarray(mesh.faces, dtype=np.int64) + 1, 3, axis=1)  # [F, 9] a a a b b b c c c
    with obj.open("w") as file:
        file.write(f"# Meshlift textured mesh ({mesh.source})\nmtllib {mtl.name}\n")
        np.savetxt(file, mesh.vertices, fmt="v %.7g %.7g %.7g")
        np.savetxt(file, mesh.uvs, fmt="vt %.7g %.7g")
        np.savetxt(file, mesh.normals, fmt="vn %.6g %.6g %.6g")
        file.write(f"usemtl {MATERIAL}\n")
        np.savetxt(file, faces, fmt="f %d/%d/%d %d/%d/%d %d/%d/%d")
    return [obj, mtl, png, *(folder / f"{name}_{kind}.png" for kind in maps)]


def _pbr_images(mesh: TexturedMesh) -> dict[str, Image.Image]:
    """The PBR maps of ``mesh`` as images keyed by :data:`PBR_MAPS` (empty without a PBR material)."""
    if mesh.orm is None or mesh.normal_map is None:
        return {}
    orm = np.ascontiguousarray(mesh.orm, dtype=np.uint8)
    return {"orm": Image.fromarray(orm, "RGB"), "roughness": Image.fromarray(np.ascontiguousarray(orm[..., 1]), "L"),
            "metallic": Image.fromarray(np.ascontiguousarray(orm[..., 2]), "L"),
            "normal": Image.fromarray(np.ascontiguousarray(mesh.normal_map, dtype=np.uint8), "RGB")}


def write_glb(mesh: TexturedMesh, path: str | Path) -> Path:
    """Write a binary glTF with positions, normals, UVs and a PBR material.

    The GLB is in glTF's +Y-up frame: dataset point ``(x, y, z)`` -> ``(x, z, -y)`` (see the module
    docstring); tangent-space normal maps are unchanged by that rotation. Without PBR maps the
    material is rough and non-metallic, as the texture holds lit colours; with them, the factors are
    1 and the ORM and normal maps carry the values (see the module docstring).

    Returns:
        ``path``.
    """
    path = Path(path)
    image = Image.fromarray(np.ascontiguousarray(mesh.texture, dtype=np.uint8), "RGB")
    maps = _pbr_images(mesh)
    if maps:
        material = trimesh.visual.material.PBRMaterial(
            name=MATERIAL, baseColorTexture=image, metallicFactor=1.0, roughnessFactor=1.0,
            metallicRoughnessTexture=maps["orm"], occlusionTexture=maps["orm"], normalTexture=maps["normal"],
        )
    else:
        material = trimesh.visual.material.PBRMaterial(
            name=MATERIAL, baseColorTexture=image, metallicFactor=0.0, roughnessFactor=1.0
        )
    out = trimesh.Trimesh(
        vertices=mesh.vertices @ Z_UP_TO_Y_UP.T, faces=mesh.faces,
        vertex_normals=mesh.normals @ Z_UP_TO_Y_UP.T,
        visual=trimesh.visual.TextureVisuals(uv=mesh.uvs, material=material), process=False,
    )
    glb = trimesh.exchange.gltf.export_glb(trimesh.Scene(out), include_normals=True)
    path.write_bytes(_with_specular(glb, mesh.specular) if maps else glb)
    return path


def _glb_document(glb: bytes) -> tuple[dict, bytes]:
    """``(the glTF JSON, the rest of the file after the JSON chunk)`` of a binary glTF."""
    (length,) = struct.unpack_from("<I", glb, 12)
    return json.loads(glb[20:20 + length]), glb[20 + length:]


def _with_specular(glb: bytes, specular: float) -> bytes:
    """``glb`` with every material's ``KHR_materials_specular`` ``specularFactor`` set to ``specular``."""
    document, rest = _glb_document(glb)
    for material in document.get("materials", []):
        material.setdefault("extensions", {})[SPECULAR_EXTENSION] = {"specularFactor": float(specular)}
    used = document.setdefault("extensionsUsed", [])
    if SPECULAR_EXTENSION not in used:
        used.append(SPECULAR_EXTENSION)
    text = json.dumps(document, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)  # chunks are 4-byte aligned; JSON pads with spaces
    body = struct.pack("<I", len(text)) + b"JSON" + text + rest
    return struct.pack("<4sII", b"glTF", 2, 12 + len(body)) + body


def _glb_specular(path: Path) -> float:
    """The first material's ``KHR_materials_specular`` ``specularFactor`` of a GLB (1, glTF's default,
    without one)."""
    try:
        document, _ = _glb_document(path.read_bytes())
    except (ValueError, struct.error):
        return 1.0
    materials = document.get("materials") or [{}]
    return float(materials[0].get("extensions", {}).get(SPECULAR_EXTENSION, {}).get("specularFactor", 1.0))


def read_textured(path: str | Path) -> TexturedMesh:
    """Read an OBJ or GLB written by :func:`write_obj` / :func:`write_glb` (or any textured one).

    A GLB is brought back from glTF's Y-up frame to the dataset frame (the inverse of
    :func:`write_glb`), with its ORM and normal maps and its specular level when it has them; an OBJ is
    taken as it is (its colour texture only). Meshes without UVs or texture get zero UVs and a 1x1 grey texture.

    Returns:
        The mesh in the dataset's world frame.
    Raises:
        InputError: the file is missing, a folder, unreadable, or holds no triangles.
    """
    return read_mesh(path)[0]


def read_mesh(path: str | Path) -> tuple[TexturedMesh, bool]:
    """:func:`read_textured` for any mesh file trimesh reads (OBJ, GLB/glTF, PLY, ...), and whether
    the file had UVs."""
    path = Path(path)
    loaded = load_mesh_file(path)
    transform = np.eye(4)
    if isinstance(loaded, trimesh.Scene):
        if len(loaded.graph.nodes_geometry) == 1:  # keep the file's normals (concatenating drops them)
            transform, name = loaded.graph[loaded.graph.nodes_geometry[0]]
            loaded = loaded.geometry[name]
        else:
            loaded = loaded.to_mesh()
    if len(getattr(loaded, "faces", ())) == 0:
        raise InputError(f"{path} holds no triangles")
    vertices = trimesh.transform_points(loaded.vertices, transform).astype(np.float32)
    normals = trimesh.util.unitize(np.asarray(loaded.vertex_normals) @ transform[:3, :3].T).astype(np.float32)
    specular = 1.0
    if path.suffix.lower() in (".glb", ".gltf"):
        vertices, normals = vertices @ Z_UP_TO_Y_UP, normals @ Z_UP_TO_Y_UP
        specular = _glb_specular(path) if path.suffix.lower() == ".glb" else 1.0
    uvs = getattr(loaded.visual, "uv", None)
    material = getattr(loaded.visual, "material", None)
    image = getattr(material, "baseColorTexture", None)  # PBRMaterial (GLB)
    if image is None:
        image = getattr(material, "image", None)  # SimpleMaterial (OBJ)
    texture = np.full((1, 1, 3), 128, np.uint8) if image is None else np.array(image.convert("RGB"))
    orm, normal_map = (getattr(material, key, None) for key in ("metallicRoughnessTexture", "normalTexture"))
    mesh = TexturedMesh(
        vertices=vertices, faces=np.asarray(loaded.faces, dtype=np.int32),
        uvs=np.zeros((len(vertices), 2), np.float32) if uvs is None else np.asarray(uvs, dtype=np.float32),
        normals=normals, texture=texture, source=f"read from {path.name}",
        orm=None if orm is None else np.array(orm.convert("RGB")),
        normal_map=None if normal_map is None else np.array(normal_map.convert("RGB")), specular=specular,
    )
    return mesh, uvs is not None


def load_mesh_file(path: Path) -> trimesh.Trimesh | trimesh.Scene:
    """``trimesh.load`` of a mesh file, with a plain message for anything that is not one."""
    if path.is_dir():
        meshes = sorted(p.name for p in path.iterdir() if p.suffix.lower() in (".obj", ".glb"))
        example = f" ({', '.join(meshes[:3])} in it)" if meshes else ""
        raise InputError(f"{path} is a folder; give the mesh file{example}")
    if not path.is_file():
        raise InputError(f"Mesh not found: {path}")
    try:
        loaded = trimesh.load(path, process=False)
    except Exception as error:  # trimesh raises anything from ValueError to struct.error on bad files
        raise InputError(f"Cannot read {path} as a mesh (OBJ, GLB, PLY, ...): {error}") from error
    return loaded
