"""The textured mesh the engine writes, and the decimate → unwrap → bake chain that makes it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..data.dataset import DatasetSplit
from .bake import bake_from_images
from .unwrap import decimate, unwrap


@dataclass
class TexturedMesh:
    """A triangle mesh with one UV layout and one colour texture, in the dataset's world frame.

    Attributes:
        vertices: ``[V, 3]`` float32 positions (world frame of the cameras, world units).
        faces: ``[F, 3]`` int32 vertex indices, counter-clockwise seen from outside.
        uvs: ``[V, 2]`` float32 texture coordinates, OBJ/Blender convention (origin at the
            bottom-left of the texture image, v up). Vertices are split along UV seams.
        normals: ``[V, 3]`` float32 unit smooth vertex normals, computed before the UV seams split
            the vertices, so seams do not show in shading.
        texture: ``[Ht, Wt, 3]`` uint8 sRGB colour image, row 0 at the top (v = 1): the colours the
            images showed, or with a PBR material (``orm`` set) its de-lit base colour.
        source: how the texture was made, in words (for reports).
        orm: for a PBR material, ``[Ht, Wt, 3]`` uint8 linear occlusion, roughness and metallic in
            the red, green and blue channels (glTF's packing), same layout as ``texture``.
        normal_map: for a PBR material, ``[Ht, Wt, 3]`` uint8 tangent-space normal map (MikkTSpace
            frame of this mesh's UVs and ``normals``, OpenGL convention: green towards +v), linear.
        specular: for a PBR material, its specular level in [0, 1] (glTF's ``KHR_materials_specular``
            ``specularFactor``; Blender's Specular IOR Level is half of it; :mod:`engine.shading.brdf`).
    """

    vertices: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray
    normals: np.ndarray
    texture: np.ndarray
    source: str
    orm: np.ndarray | None = None
    normal_map: np.ndarray | None = None
    specular: float = 1.0


def texture_mesh(
    vertices: np.ndarray,
    faces: np.ndarray,
    split: DatasetSplit,
    *,
    target_faces: int = 20_000,
    texture_size: int = 1024,
    on_step: Callable[[int, int], None] | None = None,
) -> TexturedMesh:
    """Decimate, UV-unwrap and texture a mesh from the training views.

    Args:
        vertices: ``[V, 3]`` positions in the world frame of ``split.cameras``.
        faces: ``[F, 3]`` vertex indices.
        split: the posed training views whose colours are baked into the texture.
        target_faces: decimate to about this many faces (no-op when the mesh is smaller).
        texture_size: side of the square texture in texels.
        on_step: ``(views_done, n_views)`` progress callback; it may raise to cancel.
    Returns:
        The textured mesh, in the same world frame.
    """
    vertices, faces = decimate(vertices, faces, target_faces)
    vertices, faces, uvs, normals = unwrap(vertices, faces, texture_size)
    texture = bake_from_images(vertices, faces, uvs, normals, split=split, texture_size=texture_size,
                               on_step=on_step)
    return TexturedMesh(vertices, faces, uvs, normals, texture, "projected training images")
