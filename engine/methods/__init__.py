"""The registry of reconstruction methods. Add a method here and every front end offers it."""

from __future__ import annotations

import dataclasses
from typing import Any

from .. import options as typed_options
from ..errors import InputError
from .base import DEFAULT_PRESET, Method, MethodInput, MethodOutput
from .depth import DEPTH
from .dmtet import DMTET
from .hull import HULL
from .neus import NEUS

METHODS: dict[str, Method] = {m.name: m for m in (HULL, DMTET, NEUS, DEPTH)}

__all__ = ["DEFAULT_PRESET", "METHODS", "Method", "MethodInput", "MethodOutput", "describe_methods", "get_method",
           "resolve_options"]


def get_method(name: str) -> Method:
    """The method called ``name``; raises :class:`InputError` listing the choices otherwise."""
    if name not in METHODS:
        raise InputError(f"Unknown method '{name}'. Available: {', '.join(METHODS)}")
    return METHODS[name]


def resolve_options(method: Method, preset: str, overrides: dict[str, Any]) -> Any:
    """The preset's options (an instance of ``method.options``) with ``overrides`` applied and
    checked (see :func:`engine.options.resolve_options`); raises :class:`InputError`."""
    if preset not in method.presets:
        raise InputError(f"Unknown preset '{preset}' for {method.name}. Available: {', '.join(method.presets)}")
    return typed_options.resolve_options(method.presets[preset], overrides, method.name)


def describe_methods() -> list[dict[str, Any]]:
    """A JSON-ready list of the methods: name, title, description, whether they need masks, their
    presets (name -> every option's value) and their ``options`` (name -> doc, type, default,
    unit, range), for front ends."""
    return [
        {"name": m.name, "title": m.title, "description": m.description, "needs_masks": m.needs_masks,
         "default_preset": DEFAULT_PRESET,
         "presets": {name: dataclasses.asdict(preset) for name, preset in m.presets.items()},
         "options": typed_options.describe_options(m.options)}
        for m in METHODS.values()
    ]
