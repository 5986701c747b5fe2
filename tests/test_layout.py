"""The design card's rule, checked on the source: ``engine/`` and ``bridge/`` never import Blender
(``bpy``, ``mathutils`` or any of Blender's own modules), not even inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLENDER_MODULES = {"bpy", "mathutils", "bmesh", "gpu", "bgl", "blf", "bpy_extras", "aud", "idprop"}


def blender_imports(path: Path) -> list[str]:
    """``"line: module"`` for every import of a Blender module in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [f"{node.lineno}: {name}" for name in names if name.split(".")[0] in BLENDER_MODULES]
    return found


@pytest.mark.parametrize("package", ["engine", "bridge"])
def test_package_never_imports_blender(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files
    offenders = {str(f.relative_to(ROOT)): hits for f in files if (hits := blender_imports(f))}
    assert not offenders, offenders


def test_the_check_sees_an_import_inside_a_function(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    import mathutils\n    from bpy.types import Operator\n")
    assert blender_imports(source) == ["2: mathutils", "3: bpy.types"]
