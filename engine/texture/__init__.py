"""Textured meshes: decimation, UV unwrapping, baking the training images into a texture, rendering."""

from .bake import bake_from_field, bake_from_images
from .rendering import render_textured
from .textured_mesh import TexturedMesh, texture_mesh
from .unwrap import decimate, unwrap

__all__ = ["TexturedMesh", "bake_from_field", "bake_from_images", "decimate", "render_textured", "texture_mesh",
           "unwrap"]
