"""Which Python runs the engine, and what it offers.

The add-on never imports torch or the engine inside Blender. It runs them in a separate
interpreter: the one the user set in the preferences, or else Blender's own Python when that can
import torch. Answers are cached per interpreter path (each question costs a process start).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

from . import EXTENSION_ROOT
from .errors import UserError

HOW_TO = ("Press Set Up Engine in Edit > Preferences > Add-ons > Meshlift, or set 'Engine Python' there to a Python "
          "3.11 that has PyTorch and the engine's requirements (see the README section 'A Python for the engine').")
TIMEOUT = 120.0

_lock = threading.Lock()
_torch_cache: dict[str, bool] = {}
_methods_cache: dict[str, list[dict[str, Any]]] = {}


def run_python(python: str, args: list[str], timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    """``python ARGS`` in the extension root (where ``engine/`` lives), capturing text output."""
    return subprocess.run([python, *args], cwd=str(EXTENSION_ROOT), capture_output=True, text=True,
                          encoding="utf-8", errors="replace", timeout=timeout, check=False,
                          stdin=subprocess.DEVNULL, creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))


def executable(python: str) -> str | None:
    """The absolute path of ``python`` when it names a runnable file (or a command on PATH)."""
    if not python:
        return None
    path = Path(os.path.expanduser(python))
    if path.is_file() and os.access(path, os.X_OK):
        return str(path)
    return shutil.which(python)


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def can_import_torch(python: str) -> bool:
    """Whether ``python -c "import torch"`` succeeds (cached)."""
    with _lock:
        if python in _torch_cache:
            return _torch_cache[python]
    try:
        ok = run_python(python, ["-c", "import torch"]).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    with _lock:
        _torch_cache[python] = ok
    return ok


def resolve_python(preferred: str, blender_python: str) -> str:
    """The interpreter for the engine: ``preferred`` (the preferences' path) when set, otherwise
    ``blender_python`` when it can import torch.

    Raises:
        UserError: with what is wrong and how to fix it.
    """
    if preferred.strip():
        path = executable(preferred.strip())
        if path is None:
            raise UserError(f"The engine Python '{preferred}' does not exist or is not executable. {HOW_TO}")
        if not can_import_torch(path):
            raise UserError(f"The engine Python {path} cannot import torch. {HOW_TO}")
        return path
    if blender_python and executable(blender_python) and can_import_torch(blender_python):
        return blender_python
    raise UserError(f"Blender's own Python ({blender_python or 'unknown'}) cannot import torch. {HOW_TO}")


def check(python: str) -> dict[str, Any]:
    """``python -m engine check``: ``{"torch": version, "cuda_available": bool, "cuda_devices": [...]}``.

    Raises:
        UserError: the interpreter cannot run the engine.
    """
    path = executable(python)
    if path is None:
        raise UserError(f"'{python}' does not exist or is not executable. {HOW_TO}")
    try:
        done = run_python(path, ["-m", "engine", "check"])
    except (OSError, subprocess.TimeoutExpired) as error:
        raise UserError(f"Running the engine with {path} failed: {error}") from error
    if done.returncode != 0:
        reason = last_line(done.stderr) or f"exit code {done.returncode}"
        if "No module named 'torch'" in done.stderr:
            raise UserError(f"{path} cannot import torch. {HOW_TO}")
        raise UserError(f"{path} cannot run the engine: {reason}")
    try:
        return json.loads(last_line(done.stdout))
    except json.JSONDecodeError as error:
        raise UserError(f"{path} gave an unexpected answer to 'engine check': {done.stdout[:200]!r}") from error


def describe_check(info: dict[str, Any]) -> str:
    """``"torch 2.13.0+cpu; CUDA not available"`` or ``"torch 2.13.0; CUDA: NVIDIA H200"``."""
    if info.get("cuda_available"):
        devices = ", ".join(info.get("cuda_devices") or []) or "available"
        return f"torch {info.get('torch')}; CUDA: {devices}"
    return f"torch {info.get('torch')}; CUDA not available (the engine will use the CPU)"


def query_methods(python: str, refresh: bool = False) -> list[dict[str, Any]]:
    """``python -m engine methods --json`` (cached per interpreter): the methods, their presets and
    options. Raises :class:`UserError`."""
    with _lock:
        if not refresh and python in _methods_cache:
            return _methods_cache[python]
    try:
        done = run_python(python, ["-m", "engine", "methods", "--json"])
    except (OSError, subprocess.TimeoutExpired) as error:
        raise UserError(f"Asking the engine for its methods with {python} failed: {error}") from error
    if done.returncode != 0:
        raise UserError(f"{python} cannot run the engine: {last_line(done.stderr) or done.returncode}")
    try:
        methods = json.loads(last_line(done.stdout))
    except json.JSONDecodeError as error:
        raise UserError(f"The engine's method list is not JSON: {done.stdout[:200]!r}") from error
    with _lock:
        _methods_cache[python] = methods
    return methods


def cached_methods(python: str) -> list[dict[str, Any]] | None:
    with _lock:
        return _methods_cache.get(python)


def clear_cache() -> None:
    """Forget every answer (after the user changed the interpreter or installed torch)."""
    with _lock:
        _torch_cache.clear()
        _methods_cache.clear()


class Catalog:
    """The engine's method list for the UI, loaded once in a background thread (the thread only
    runs subprocesses and stores plain data) or on demand in the caller's thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.key: tuple[str, str] | None = None
        self.python: str | None = None
        self.methods: list[dict[str, Any]] | None = None
        self.error: str | None = None

    def _load(self, key: tuple[str, str]) -> None:
        try:
            python = resolve_python(*key)
            methods, error = query_methods(python), None
        except UserError as failure:
            python, methods, error = None, None, str(failure)
        with self._lock:
            if self.key == key:
                self.python, self.methods, self.error = python, methods, error

    def prefetch(self, preferred: str, blender_python: str) -> None:
        """Start loading in the background unless it is loaded or loading for these settings."""
        key = (preferred, blender_python)
        with self._lock:
            if self.key == key:
                return
            self.key, self.python, self.methods, self.error = key, None, None, None
            self._thread = threading.Thread(target=self._load, args=(key,), name="meshlift-methods", daemon=True)
            self._thread.start()

    def load(self, preferred: str, blender_python: str) -> list[dict[str, Any]]:
        """The methods, loading them now if needed; raises :class:`UserError`."""
        self.prefetch(preferred, blender_python)
        thread = self._thread
        if thread is not None:
            thread.join(TIMEOUT)
        with self._lock:
            if self.methods is None:
                raise UserError(self.error or "The engine did not list its methods in time.")
            return self.methods

    def reset(self) -> None:
        with self._lock:
            self.key, self.python, self.methods, self.error = None, None, None, None


CATALOG = Catalog()
