"""The registry of reconstruction methods. Add a method here and every front end offers it."""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from .base import DEFAULT_PRESET, Method, MethodInput, MethodOutput
from .dmtet import DMTET
from .hull import HULL
from .neus import NEUS

METHODS: dict[str, Method] = {m.name: m for m in (HULL, DMTET, NEUS)}

__all__ = ["DEFAULT_PRESET", "METHODS", "Method", "MethodInput", "MethodOutput", "describe_methods", "get_method",
           "resolve_options"]


def get_method(name: str) -> Method:
    """The method called ``name``; raises :class:`InputError` listing the choices otherwise."""
    if name not in METHODS:
        raise InputError(f"Unknown method '{name}'. Available: {', '.join(METHODS)}")
    return METHODS[name]


def resolve_options(method: Method, preset: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The preset's options with ``overrides`` applied, each converted to the preset value's type."""
    if preset not in method.presets:
        raise InputError(f"Unknown preset '{preset}' for {method.name}. Available: {', '.join(method.presets)}")
    options = dict(method.presets[preset])
    for key, value in overrides.items():
        if key not in options:
            raise InputError(f"Unknown option '{key}' for {method.name}. Available: {', '.join(sorted(options))}")
        kind = type(options[key])
        try:
            options[key] = kind(value)
        except (TypeError, ValueError) as error:
            raise InputError(f"Option '{key}' must be a {kind.__name__}, got {value!r}") from error
    return options


def describe_methods() -> list[dict[str, Any]]:
    """A JSON-ready list of the methods, their presets and options, for front ends."""
    return [
        {"name": m.name, "title": m.title, "description": m.description, "needs_masks": m.needs_masks,
         "default_preset": DEFAULT_PRESET, "presets": m.presets}
        for m in METHODS.values()
    ]
