"""Decimation (quadric, via trimesh + fast_simplification) and UV unwrapping (xatlas)."""

from __future__ import annotations

import numpy as np
import trimesh
import xatlas

# Empty texels between charts, in texels of the final texture: room for the dilation that keeps
# bilinear filtering and the first mip levels from bleeding one chart into another.
CHART_PADDING = 4


def decimate(vertices: np.ndarray, faces: np.ndarray, target_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """Quadric-error decimation to about ``target_faces`` faces.

    Args:
        vertices: ``[V, 3]`` positions (any frame; unchanged by this function).
        faces: ``[F, 3]`` vertex indices.
        target_faces: the wanted face count; a mesh with no more faces is returned as is.
    Returns:
        ``vertices [V', 3]`` float32 and ``faces [F', 3]`` int32, same frame and units.
    """
    vertices = np.asarray(vertices, dtype=np.float32)
    faces = np.asarray(faces, dtype=np.int32)
    if len(faces) <= target_faces:
        return vertices, faces
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    simple = mesh.simplify_quadric_decimation(face_count=int(target_faces))
    return np.asarray(simple.vertices, dtype=np.float32), np.asarray(simple.faces, dtype=np.int32)


def unwrap(
    vertices: np.ndarray, faces: np.ndarray, texture_size: int = 1024
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cut the mesh into charts and pack them into one square texture with xatlas.

    Smooth vertex normals are computed on the input mesh and carried to the split vertices, so
    the UV seams do not show in shading.

    Args:
        vertices: ``[V, 3]`` positions (any frame; unchanged).
        faces: ``[F, 3]`` vertex indices.
        texture_size: the texture side in texels the charts are packed for (sets the padding).
    Returns:
        ``vertices [V', 3]`` float32 (copies of the input vertices, split along seams),
        ``faces [F, 3]`` int32, ``uvs [V', 2]`` float32 in [0, 1] (OBJ convention: v up) and
        ``normals [V', 3]`` float32 unit vectors.
    """
    vertices = np.asarray(vertices, dtype=np.float32)
    faces = np.asarray(faces, dtype=np.int64)
    normals = np.asarray(trimesh.Trimesh(vertices, faces, process=False).vertex_normals, dtype=np.float32)

    atlas = xatlas.Atlas()
    atlas.add_mesh(vertices, faces.astype(np.uint32), normals)
    pack = xatlas.PackOptions()
    pack.resolution = int(texture_size)
    pack.padding = CHART_PADDING
    pack.bilinear = True
    atlas.generate(xatlas.ChartOptions(), pack)
    if atlas.atlas_count != 1:
        raise RuntimeError(f"xatlas packed the charts into {atlas.atlas_count} atlases, expected one")
    vmapping, new_faces, uvs = atlas[0]  # [V'], [F, 3], [V', 2]
    return (vertices[vmapping], new_faces.astype(np.int32), np.ascontiguousarray(uvs, dtype=np.float32),
            normals[vmapping])
