"""The plain-text listing of ``python -m engine methods``: each method, its presets, and every
option with its value in each preset, its type, unit and range, and its doc.

It formats what :func:`engine.methods.describe_methods` gives the front ends as JSON, so the
terminal and the add-on show the same options. Torch-free.
"""

from __future__ import annotations

import textwrap
from typing import Any

DOC_INDENT = " " * 6
DOC_WIDTH = 100


def format_methods(methods: list[dict[str, Any]]) -> str:
    """``methods`` (as :func:`engine.methods.describe_methods` describes them) as text: per method
    a heading, its presets, then a table of its options (one column per preset) with each
    option's doc under its row."""
    return "\n\n".join(format_method(method) for method in methods)


def format_method(method: dict[str, Any]) -> str:
    """One method's block of :func:`format_methods`."""
    presets = list(method["presets"])
    named = [f"{name} (default)" if name == method["default_preset"] else name for name in presets]
    lines = [textwrap.fill(f"{method['name']}: {method['title']}. {method['description']}", DOC_WIDTH,
                           subsequent_indent="  "),
             f"  presets: {', '.join(named)}{'; needs object masks' if method['needs_masks'] else ''}"]
    options = method["options"]
    rows = [["option", *presets, "type", "unit, range"]]
    rows += [[name, *(format_value(method["presets"][preset][name]) for preset in presets), entry["type"],
              limits(entry)] for name, entry in options.items()]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row, name in zip(rows, [None, *options], strict=True):
        lines.append("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if name is not None:
            lines.append(textwrap.fill(options[name]["doc"], DOC_WIDTH, initial_indent=DOC_INDENT,
                                       subsequent_indent=DOC_INDENT))
    return "\n".join(lines)


def format_value(value: Any) -> str:
    """An option value as typed on the command line (``-o KEY=VALUE``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def limits(entry: dict[str, Any]) -> str:
    """``"cells, 16–1024"``: an option's unit and its range or choices (``-`` when it has none)."""
    low, high = entry.get("min"), entry.get("max")
    if "choices" in entry:
        valid = "one of " + "/".join(entry["choices"])
    elif low is not None and high is not None:
        valid = f"{format_value(low)}–{format_value(high)}"
    elif low is not None:
        valid = f"≥ {format_value(low)}"
    elif high is not None:
        valid = f"≤ {format_value(high)}"
    else:
        valid = ""
    return ", ".join(part for part in (entry.get("unit"), valid) if part) or "-"
