"""Read the meshes the engine writes into flat numpy arrays, ready for ``foreach_set``.

:func:`read_obj` reads the result's OBJ + MTL. It handles what the engine writes (triangles,
``f v/vt/vn``, one ``mtllib``/``map_Kd``) and the general cases around it: n-gons, ``f v``,
``f v//vn``, negative (relative) indices, comments. :func:`read_preview` reads a live-preview
file (``engine/protocol.py``: ``PREVIEW_NPZ``). Positions are kept in the file's frame (the engine
writes the dataset's world frame as is).
"""

from __future__ import annotations

from dataclasses import dataclass
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
    """

    vertices: np.ndarray
    face_sizes: np.ndarray
    loop_vertices: np.ndarray
    loop_uvs: np.ndarray | None
    texture: Path | None

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
    face_sizes: list[int] = []
    corners_v: list[int] = []
    corners_t: list[int] = []
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
    except ValueError as error:
        raise ObjError(f"{path.name} has vertex lines that are not numbers") from error
    corner_t = np.array(corners_t, dtype=np.int64)
    loop_uvs = None
    if uv_table is not None and (corner_t >= 0).all():
        loop_uvs = uv_table[corner_t].astype(np.float32)
    texture = None
    for name in mtllibs:
        texture = texture or _texture_of(path.parent / name)
    return ObjMesh(vertices.astype(np.float32), np.array(face_sizes, dtype=np.int32),
                   np.array(corners_v, dtype=np.int32), loop_uvs, texture)


def _texture_of(mtl: Path) -> Path | None:
    """The first ``map_Kd`` of ``mtl`` (options such as ``-s 1 1 1`` are skipped), if the file exists."""
    if not mtl.is_file():
        return None
    for raw in mtl.read_text(encoding="utf-8", errors="replace").splitlines():
        tag, _, rest = raw.strip().partition(" ")
        if tag == "map_Kd" and rest.strip():
            name = rest.strip().split()[-1]
            image = (mtl.parent / name).resolve()
            return image if image.is_file() else None
    return None


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
    return ObjMesh(vertices, np.full(len(faces), 3, np.int32), faces.ravel(), None, None)
