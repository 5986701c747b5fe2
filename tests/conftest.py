"""Fixtures for every test layer: the shared datasets (and the ``datasets`` marker that every test
using them gets), the object located on spot-tabletop's table, and the torch devices.

It also makes the extension's folder importable as the package ``meshlift`` without running its
``__init__`` (which needs ``bpy``): ``meshlift.bridge`` is the bridge as the add-on sees it, a
subpackage whose relative import of the engine's torch-free protocol (``..engine.protocol``)
resolves as in Blender.
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import pytest

from tests.support import DATASETS, DEVICES, ROOT

if "meshlift" not in sys.modules:
    _package = types.ModuleType("meshlift", "The extension's folder as a namespace (no bpy).")
    _package.__path__ = [str(ROOT)]
    sys.modules["meshlift"] = _package

# Fixtures that read ../shared/datasets: a test that requests one is marked ``datasets``
# (``pytest -m "not datasets"`` runs the rest on a machine without them).
DATASET_FIXTURES = {"datasets", "tabletop_hints"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "datasets: needs the shared datasets in ../shared/datasets")


EXIT_STATUS = pytest.StashKey[int]()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Leave with pytest's exit status once everything is reported, without the interpreter's own
    shutdown: bpy 4.5.15 deadlocks there when any add-on class is still registered (see
    ``../shared/docs/blender-testing.md``), and a session that ran Ray keeps gRPC threads. Without
    bpy and Ray imported, the normal exit is kept."""
    if "bpy" not in sys.modules and "ray" not in sys.modules:
        return
    status = config.stash.get(EXIT_STATUS, 1)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(status))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[EXIT_STATUS] = int(exitstatus)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if DATASET_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.datasets)


@pytest.fixture(scope="session")
def datasets() -> Path:
    assert DATASETS.is_dir(), f"the shared datasets are missing at {DATASETS}"
    return DATASETS


@pytest.fixture(scope="session")
def tabletop_hints(datasets: Path):
    """``(split, hints)``: 30 of spot-tabletop's photos with their given cameras and no masks, and
    the object located on its table (``engine.sfm.object_hints``), shared by the SfM and NeuS tests."""
    from engine.data.transforms import load_split
    from engine.progress import Progress
    from engine.sfm.object_hints import find_object_hints

    split = load_split(datasets / "spot-tabletop", "train", max_views=30)
    return split, find_object_hints(split, Progress(lambda event: None))


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> str:
    """Each torch device this machine has: the CPU always, CUDA when torch sees a GPU."""
    return request.param
