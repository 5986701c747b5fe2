"""Neural fields over the unit volume: multi-resolution grid encodings and small MLPs."""

from .albedo import AlbedoField, albedo_colours
from .hash_grid import HashGrid

__all__ = ["AlbedoField", "HashGrid", "albedo_colours"]
