"""The extension package: validated and built by Blender's own extension tooling (shipped in the
bpy wheel), then installed from the zip into a fresh user profile and enabled."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.support import ROOT


@pytest.fixture(scope="module")
def scripts_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("bpy")  # the wheel's files; importing bpy is not needed
    assert spec is not None and spec.origin is not None
    folder = next(Path(spec.origin).parent.glob("4.*/scripts"))
    return folder


def blender_ext(scripts_dir: Path, *args: str) -> subprocess.CompletedProcess:
    cli = scripts_dir / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
    tags = scripts_dir / "modules" / "_bpy_internal" / "extensions" / "tags.py"
    command, *rest = args
    return subprocess.run([sys.executable, str(cli), command, "--valid-tags", str(tags), *rest],
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def built_zip(scripts_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("build")
    done = blender_ext(scripts_dir, "build", "--source-dir", str(ROOT), "--output-dir", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    (path,) = out.glob("meshlift-*.zip")
    return path


def test_manifest_is_valid(scripts_dir):
    done = blender_ext(scripts_dir, "validate", str(ROOT))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success" in done.stdout
    permissions = tomllib.loads((ROOT / "blender_manifest.toml").read_text())["permissions"]
    assert "PyTorch" in permissions["network"]  # Set Up Engine downloads; Blender's rules want the reason


def test_built_zip_holds_the_addon_and_nothing_else(built_zip):
    names = zipfile.ZipFile(built_zip).namelist()
    assert built_zip.name == "meshlift-0.1.0.zip"
    for required in ("blender_manifest.toml", "__init__.py", "operators/reconstruct.py", "panels/sidebar.py",
                     "bridge/worker_process.py", "engine/__main__.py", "engine/methods/hull.py", "engine/protocol.py",
                     "bridge/engine_setup.py", "engine/requirements.txt", "LICENSE", "README.md"):
        assert required in names, required
    for name in names:
        top = name.split("/")[0]
        assert top not in {"tests", "benchmarks", "scripts", ".venv", ".ci", ".git", "demo-output", "docs"}, name
        assert "__pycache__" not in name and not name.endswith(".pyc"), name
    assert built_zip.stat().st_size < 2_000_000


def test_zip_installs_into_a_fresh_profile_and_enables(built_zip, tmp_path):
    script = textwrap.dedent(f'''
        import os, sys
        import bpy, addon_utils
        result = bpy.ops.extensions.package_install_files(filepath={str(built_zip)!r}, repo="user_default",
                                                         enable_on_install=True)
        assert result == {{"FINISHED"}}, result
        name = "bl_ext.user_default.meshlift"
        assert addon_utils.check(name) == (True, True), addon_utils.check(name)
        module = sys.modules[name]
        assert hasattr(bpy.types, "MESHLIFT_PT_main") and hasattr(bpy.types.Scene, "meshlift")
        print("installed at", os.path.dirname(module.__file__))
        cache = bpy.utils.extension_path_user(name, path="cache", create=True)
        print("cache at", cache)
        addon_utils.disable(name, default_set=True)
        assert not hasattr(bpy.types, "MESHLIFT_PT_main")
        print("OK")
    ''')
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "profile"))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env,
                          cwd=tmp_path, check=False)
    assert done.returncode == 0 and "OK" in done.stdout, done.stdout + done.stderr
    installed = Path(done.stdout.split("installed at ")[1].split("\n")[0])
    assert installed.is_relative_to(tmp_path / "profile") and (installed / "engine" / "worker.py").is_file()
    assert not (installed / "tests").exists()
    # user data lives outside the add-on folder
    cache = Path(done.stdout.split("cache at ")[1].split("\n")[0])
    assert not cache.is_relative_to(installed)
