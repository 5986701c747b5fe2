"""Typed method options: one frozen dataclass per method, one field per option.

Each field is declared with :func:`option`, which records what the option does (``doc``), its unit
and its valid range next to its default. A method's presets are instances of its options class;
:func:`resolve_options` applies a user's overrides (strings from the command line, JSON values from
a job file) to a preset, checking each against its field, and :func:`describe_options` turns the
class into the JSON that front ends show (``python -m engine methods --json``; the add-on's
tooltips).

Torch-free, so the add-on side could read it too.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any

from .errors import InputError

# Option types front ends may see: the JSON names of the Python types.
TYPE_NAMES = {bool: "bool", int: "int", float: "float", str: "str"}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def option(default: Any, doc: str, *, unit: str | None = None, min: float | None = None,
           max: float | None = None, choices: tuple[str, ...] | None = None) -> Any:
    """A dataclass field for an option.

    Args:
        default: the value when neither a preset nor the user sets one.
        doc: one sentence for ``--help``, ``methods`` and tooltips: what the option does.
        unit: what the number counts (``"steps"``, ``"cells"``, ``"texels"``, ``"unit-volume units"``);
            ``None`` for plain factors.
        min, max: the inclusive range, ``None`` for unbounded.
        choices: the allowed values of a string option.
    """
    return dataclasses.field(default=default, metadata={"doc": doc, "unit": unit, "min": min, "max": max,
                                                        "choices": choices})


@dataclasses.dataclass(frozen=True)
class MeshOptions:
    """Options every method has: the size of the exported asset."""

    faces: int = option(20_000, "Faces of the exported mesh after quadric decimation.", unit="faces", min=100)
    texture_size: int = option(1024, "Side of the square colour texture.", unit="texels", min=16, max=16384)


def option_types(cls: type) -> dict[str, type]:
    """``{name: type}`` of the option fields of ``cls`` (annotations resolved)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def describe_options(cls: type) -> dict[str, dict[str, Any]]:
    """JSON-ready ``{name: {"doc", "type", "default", "unit", "min", "max", "choices"}}`` of ``cls``
    (keys whose value is ``None`` are left out)."""
    types = option_types(cls)
    described = {}
    for f in dataclasses.fields(cls):
        entry = {"doc": f.metadata.get("doc", ""), "type": TYPE_NAMES[types[f.name]], "default": f.default}
        for key in ("unit", "min", "max", "choices"):
            if f.metadata.get(key) is not None:
                entry[key] = list(f.metadata[key]) if key == "choices" else f.metadata[key]
        described[f.name] = entry
    return described


def resolve_options(preset: Any, overrides: dict[str, Any], method: str) -> Any:
    """``preset`` (an options instance) with ``overrides`` applied, each converted and checked.

    Values may be strings (``-o iterations=3000`` on the command line) or JSON values (a job file);
    an ``int`` is accepted for a ``float`` option, never a ``bool`` for a number.

    Raises:
        InputError: an unknown option, a value of the wrong type or out of range; the message
            names the option (and the method).
    """
    cls = type(preset)
    types = option_types(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    changes = {}
    for name, value in overrides.items():
        if name not in fields:
            raise InputError(f"Unknown option '{name}' for {method}. Available: {', '.join(sorted(fields))}")
        changes[name] = check_value(name, convert(name, types[name], value), fields[name].metadata)
    return dataclasses.replace(preset, **changes)


def convert(name: str, kind: type, value: Any) -> Any:
    """``value`` as a ``kind`` (``bool``, ``int``, ``float`` or ``str``); raises :class:`InputError`."""
    expected = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}[kind]
    converted = value
    if isinstance(value, str) and kind is not str:
        converted = parse_text(value.strip().lower(), kind)
    elif kind is float and isinstance(value, int) and not isinstance(value, bool):
        converted = float(value)
    elif kind is int and isinstance(value, float) and value.is_integer():
        converted = int(value)
    if not isinstance(converted, kind) or (kind is not bool and isinstance(converted, bool)):
        raise InputError(f"Option '{name}' must be {expected}, got {value!r}")
    return converted


def parse_text(text: str, kind: type) -> Any:
    """``text`` (lower case) read as a ``bool``, ``int`` or ``float``; ``None`` when it is not one."""
    try:
        if kind is bool:
            return True if text in _TRUE else False if text in _FALSE else None
        number = float(text)
    except ValueError:
        return None
    if kind is int:
        return int(number) if number.is_integer() else None
    return number


def check_value(name: str, value: Any, metadata: typing.Mapping[str, Any]) -> Any:
    """``value`` when it lies in the option's range (and choices); raises :class:`InputError`."""
    low, high, choices = metadata.get("min"), metadata.get("max"), metadata.get("choices")
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(f"Option '{name}' must be a finite number, got {value}")
    if choices is not None and value not in choices:
        raise InputError(f"Option '{name}' must be one of {', '.join(choices)}, got {value!r}")
    if low is not None and value < low:
        raise InputError(f"Option '{name}' must be at least {low}, got {value}")
    if high is not None and value > high:
        raise InputError(f"Option '{name}' must be at most {high}, got {value}")
    return value


def check_presets(presets: dict[str, Any], method: str) -> dict[str, Any]:
    """``presets`` after checking every value of every preset against its field's range (a
    preset out of range is a programming error, caught at import)."""
    for preset in presets.values():
        for f in dataclasses.fields(preset):
            try:
                check_value(f.name, getattr(preset, f.name), f.metadata)
            except InputError as error:
                raise ValueError(f"{method}: {error}") from error
    return presets
