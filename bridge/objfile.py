"""Read the meshes the engine writes into flat numpy arrays, ready for ``foreach_set``, and write
a mesh as an OBJ for the engine.

:func:`read_obj` reads the result's OBJ + MTL. It handles what the engine writes (triangles,
``f v/vt/vn``, one ``mtllib`` with ``map_Kd``, ``Ks`` and, for a PBR material, ``map_Pr``, ``map_Pm`` and
``norm``/``map_Bump``) and the general cases around it: n-gons, ``f v``, ``f v//vn``, negative
(relative) indices, comments. :func:`read_preview` reads a live-preview file
(``engine/protocol.py``: ``PREVIEW_NPZ``). :func:`write_obj` writes a mesh for the ``texture``
command. Positions are kept in the file's frame (the engine writes the dataset's world frame as is).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..engine.protocol import PREVIEW_NPZ


class ObjError(ValueError):
    """The file is not an OBJ this reader understands; the message names the file and line."""


@dataclass
class ObjMesh:
    """A polygon mesh as flat arrays.

    Attributes:
        vertices: ``[V, 3]`` float32 positions.
        face_sizes: ``[F]`` int32 corner count of each face.
        loop_vertices: ``[L]`` int32 vertex index of each face corner (``L = face_sizes.sum()``).
        loop_uvs: ``[L, 2]`` float32 UV of each corner, or ``None`` when the file has none.
        texture: the image the material's ``map_Kd`` names (absolute), or ``None``.
        loop_normals: ``[L, 3]`` float32 unit normal of each corner (``vn``), or ``None`` when the
            file has none for some corner.
        maps: the material's other images (absolute) by kind: ``roughness`` (``map_Pr``),
            ``metallic`` (``map_Pm``), ``normal`` (``norm``, else ``map_Bump``); only those present.
        specular_level: the material's Specular IOR Level, the mean of its ``Ks`` (as Blender's OBJ
            importer reads it), or ``None`` without one.
    """

    vertices: np.ndarray
    face_sizes: np.ndarray
    loop_vertices: np.ndarray
    loop_uvs: np.ndarray | None
    texture: Path | None
    loop_normals: np.ndarray | None = None
    maps: dict[str, Path] = field(default_factory=dict)
    specular_level: float | None = None

    @property
    def loop_starts(self) -> np.ndarray:
        return (np.cumsum(self.face_sizes) - self.face_sizes).astype(np.int32)

    @property
    def bounds(self) -> np.ndarray:
        """``[2, 3]`` min and max corner."""
        return np.stack([self.vertices.min(axis=0), self.vertices.max(axis=0)])


def _index(token: str, count: int, path: Path, number: int) -> int:
    value = int(token)
    index = value - 1 if value > 0 else count + value
    if not 0 <= index < count:
        raise ObjError(f"{path.name} line {number}: index {value} is out of range (1..{count})")
    return index


def read_obj(path: str | Path) -> ObjMesh:
    """Read ``path``; raises :class:`ObjError` (or ``OSError``) on bad input."""
    path = Path(path)
    positions: list[str] = []
    uvs: list[str] = []
    normals: list[str] = []
    face_sizes: list[int] = []
    corners_v: list[int] = []
    corners_t: list[int] = []
    corners_n: list[int] = []
    mtllibs: list[str] = []
    with path.open(encoding="utf-8", errors="replace") as file:
        for number, raw in enumerate(file, 1):
            line = raw.strip()
            if not line or line[0] == "#":
                continue
            tag, _, rest = line.partition(" ")
            if tag == "v":
                positions.append(rest)
            elif tag == "vt":
                uvs.append(rest)
            elif tag == "vn":
                normals.append(rest)
            elif tag == "f":
                tokens = rest.split()
                if len(tokens) < 3:
                    raise ObjError(f"{path.name} line {number}: a face needs at least 3 corners")
                try:
                    for token in tokens:
                        parts = token.split("/")
                        corners_v.append(_index(parts[0], len(positions), path, number))
                        has_uv = len(parts) > 1 and parts[1] != ""
                        corners_t.append(_index(parts[1], len(uvs), path, number) if has_uv else -1)
                        # (normal indices in a file without vn lines are ignored)
                        has_normal = len(parts) > 2 and parts[2] != "" and bool(normals)
                        corners_n.append(_index(parts[2], len(normals), path, number) if has_normal else -1)
                except ValueError as error:
                    if isinstance(error, ObjError):
                        raise
                    raise ObjError(f"{path.name} line {number}: bad face '{rest}'") from error
                face_sizes.append(len(tokens))
            elif tag == "mtllib":
                mtllibs.append(rest.strip())
    if not positions or not face_sizes:
        raise ObjError(f"{path.name} holds no mesh (no vertices or no faces)")
    try:
        vertices = np.array(" ".join(positions).split(), dtype=np.float64).reshape(len(positions), -1)[:, :3]
        uv_table = np.array(" ".join(uvs).split(), dtype=np.float64).reshape(len(uvs), -1)[:, :2] if uvs else None
        normal_table = np.array(" ".join(normals).split(), dtype=np.float64).reshape(-1, 3) if normals else None
    except ValueError as error:
        raise ObjError(f"{path.name} has vertex lines that are not numbers") from error
    corner_t = np.array(corners_t, dtype=np.int64)
    loop_uvs = None
    if uv_table is not None and (corner_t >= 0).all():
        loop_uvs = uv_table[corner_t].astype(np.float32)
    corner_n = np.array(corners_n, dtype=np.int64)
    loop_normals = None
    if normal_table is not None and (corner_n >= 0).all():
        loop_normals = normal_table[corner_n]
        loop_normals = (loop_normals / np.maximum(np.linalg.norm(loop_normals, axis=1, keepdims=True), 1e-12))
        loop_normals = loop_normals.astype(np.float32)
    maps: dict[str, Path] = {}
    specular_level = None
    for name in reversed(mtllibs):  # the first library's values win
        library_maps, library_level = _material_of(path.parent / name)
        maps = {**maps, **library_maps}
        specular_level = specular_level if library_level is None else library_level
    texture = maps.pop("color", None)
    return ObjMesh(vertices.astype(np.float32), np.array(face_sizes, dtype=np.int32),
                   np.array(corners_v, dtype=np.int32), loop_uvs, texture, loop_normals, maps, specular_level)


# MTL keys of the images the reader keeps, by kind (the first key of a kind found wins).
MAP_KEYS = {"map_Kd": "color", "map_Pr": "roughness", "map_Pm": "metallic", "norm": "normal", "map_Bump": "normal",
            "bump": "normal"}


def _material_of(mtl: Path) -> tuple[dict[str, Path], float | None]:
    """``(images, specular level)`` of ``mtl``'s first material: its images by kind (``MAP_KEYS``;
    options such as ``-bm 1`` are skipped), those whose files exist, and the mean of its ``Ks``
    (``None`` without one or a readable one)."""
    if not mtl.is_file():
        return {}, None
    maps: dict[str, Path] = {}
    specular_level = None
    materials = 0
    for raw in mtl.read_text(encoding="utf-8", errors="replace").splitlines():
        tag, _, rest = raw.strip().partition(" ")
        materials += tag == "newmtl"
        if materials > 1:
            break
        if tag == "Ks":
            try:
                specular_level = float(np.mean([float(value) for value in rest.split()]))
            except ValueError:
                specular_level = None
        kind = MAP_KEYS.get(tag)
        if kind is not None and kind not in maps and rest.strip():
            image = (mtl.parent / rest.strip().split()[-1]).resolve()
            if image.is_file():
                maps[kind] = image
    return maps, specular_level


def read_preview(path: str | Path, fmt: str) -> ObjMesh:
    """A live-preview file of format ``fmt`` (``npz``: ``vertices [V, 3]``, ``faces [F, 3]``) as
    triangles without UVs; raises :class:`ObjError` (or ``OSError``) on bad input."""
    path = Path(path)
    if fmt != PREVIEW_NPZ:
        raise ObjError(f"{path.name}: unknown preview format '{fmt}'")
    try:
        with np.load(path) as data:
            vertices = np.ascontiguousarray(data["vertices"], dtype=np.float32)
            faces = np.ascontiguousarray(data["faces"], dtype=np.int32)
    except (KeyError, ValueError) as error:
        raise ObjError(f"{path.name} is not a preview mesh: {error}") from error
    if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
        raise ObjError(f"{path.name}: expected vertices [V, 3] and faces [F, 3]")
    if len(faces) and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ObjError(f"{path.name}: a face index is out of range (0..{len(vertices) - 1})")
    return ObjMesh(vertices, np.full(len(faces), 3, np.int32), faces.ravel(), None, None, None, {})


def write_obj(path: str | Path, vertices: np.ndarray, triangles: np.ndarray, loop_uvs: np.ndarray | None,
              loop_normals: np.ndarray) -> Path:
    """Write a triangle mesh as an OBJ (``v``, ``vt``, ``vn`` and ``f v/vt/vn``, no material).

    Args:
        vertices: ``[V, 3]`` positions; ``triangles [T, 3]`` vertex indices (counter-clockwise from
            outside); ``loop_uvs [T, 3, 2]`` each corner's UV (or ``None``); ``loop_normals [T, 3, 3]``
            each corner's unit normal.
    Returns:
        ``path``.
    """
    path = Path(path)
    triangles = np.asarray(triangles, dtype=np.int64)
    # Equal UVs and equal normals are written once, so corners that share them share a vertex when read.
    normals, normal_index = np.unique(np.asarray(loop_normals, dtype=np.float32).reshape(-1, 3), axis=0,
                                      return_inverse=True)
    normal_index = normal_index.reshape(-1, 3) + 1  # [T, 3] 1-based
    with path.open("w") as file:
        file.write("# Meshlift: a mesh to texture\n")
        np.savetxt(file, np.asarray(vertices, dtype=np.float64).reshape(-1, 3), fmt="v %.9g %.9g %.9g")
        if loop_uvs is None:
            faces = np.stack([triangles + 1, normal_index], axis=-1).reshape(-1, 6)
            face_format = "f %d//%d %d//%d %d//%d"
        else:
            uvs, uv_index = np.unique(np.asarray(loop_uvs, dtype=np.float32).reshape(-1, 2), axis=0,
                                      return_inverse=True)
            np.savetxt(file, uvs, fmt="vt %.9g %.9g")
            faces = np.stack([triangles + 1, uv_index.reshape(-1, 3) + 1, normal_index], axis=-1).reshape(-1, 9)
            face_format = "f %d/%d/%d %d/%d/%d %d/%d/%d"
        np.savetxt(file, normals, fmt="vn %.7g %.7g %.7g")
        np.savetxt(file, faces, fmt=face_format)
    return path
