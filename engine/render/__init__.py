"""Differentiable rendering of triangle meshes: rasterize -> interpolate -> texture -> antialias.

Visibility comes from BVH ray casting (Warp); everything that needs gradients is plain torch. All
functions follow the device of their inputs (CPU or CUDA).
"""

from .antialias import antialias
from .interpolate import interpolate
from .rasterize import Fragments, rasterize
from .raycast import RayCaster
from .texture import sample_texture

__all__ = ["Fragments", "RayCaster", "antialias", "interpolate", "rasterize", "sample_texture"]
