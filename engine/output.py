"""Output folders that appear whole or not at all."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

from .errors import Cancelled, InputError


def staging_folder(path: str | Path, pid: int) -> Path:
    """The hidden folder beside ``path`` where process ``pid`` stages its files
    (``.<name>.partial-<pid>``); a process killed outright may leave it behind."""
    path = Path(path).absolute()
    return path.parent / f".{path.name}.partial-{pid}"


class OutputDir:
    """Files are written into a hidden staging folder beside ``path`` and moved into place by
    :meth:`commit` in one rename, so a crash or a cancel never leaves a half-written result.

    :meth:`discard` may be called from another thread (the one that handles a cancel); after it,
    :meth:`commit` raises :class:`Cancelled`. Both hold one lock, so exactly one of them wins.
    """

    def __init__(self, path: str | Path, force: bool = False) -> None:
        self.path = Path(path).absolute()
        self.force = force
        if self.path.exists() and not force:
            raise InputError(f"The output folder {self.path} already exists; choose another or pass --force")
        self.staging = staging_folder(self.path, os.getpid())
        self._lock = threading.Lock()
        self._done = False

    def __enter__(self) -> Path:
        try:
            if self.staging.exists():
                shutil.rmtree(self.staging)
            self.staging.mkdir(parents=True)
        except OSError as error:
            raise InputError(f"Cannot create the output folder {self.path}: {error.strerror}") from error
        return self.staging

    def __exit__(self, kind: type | None, *_: object) -> None:
        if kind is not None:
            self.discard()

    def commit(self) -> Path:
        """Move the staged files to ``path`` (replacing it when ``force``); returns ``path``."""
        with self._lock:
            if self._done:
                raise Cancelled()
            if self.path.exists():
                if not self.force:
                    raise InputError(f"The output folder {self.path} appeared while the job ran; not overwriting it")
                old = self.path.parent / f".{self.path.name}.old-{os.getpid()}"
                os.replace(self.path, old)
                os.replace(self.staging, self.path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(self.staging, self.path)
            self._done = True
        return self.path

    def discard(self) -> None:
        """Delete the staged files; a later :meth:`commit` raises :class:`Cancelled`."""
        with self._lock:
            if not self._done:
                shutil.rmtree(self.staging, ignore_errors=True)
            self._done = True
