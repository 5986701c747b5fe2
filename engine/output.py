"""Output folders that appear whole or not at all."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from .errors import Cancelled, InputError

# The end of the refusal to replace an existing output folder, in each front end's words.
REPLACE_WITH_FLAG = "pass --force to replace it"
REPLACE_WITH_FIELD = 'set "force": true in the job to replace it'


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

    Args:
        path: the output folder.
        force: replace ``path`` when it exists.
        replace_hint: how the user asks for ``force`` in the front end that runs the job (the end
            of the refusal's sentence: :data:`REPLACE_WITH_FLAG`, :data:`REPLACE_WITH_FIELD`).
        inputs: the job's input paths; an existing ``path`` that is or holds one of them is never
            replaced, even with ``force``.

    Attributes:
        on_commit: callables run with the staging folder just before it is moved into place (to add
            files that are written until the end, such as the job's log).
    """

    def __init__(self, path: str | Path, force: bool = False, *, replace_hint: str = REPLACE_WITH_FIELD,
                 inputs: Iterable[str | Path] = ()) -> None:
        self.path = Path(path).absolute()
        self.force = force
        if self.path.exists():
            if not force:
                raise InputError(f"The output folder {self.path} already exists; choose another or {replace_hint}")
            inside = [Path(p) for p in inputs if Path(p).exists()]
            held = [p for p in inside if p.resolve().is_relative_to(self.path.resolve())]
            if held:
                raise InputError(f"The output folder {self.path} holds the input {held[0]}; replacing it would "
                                 "delete it: choose another output folder")
        self.staging = staging_folder(self.path, os.getpid())
        self.on_commit: list[Callable[[Path], None]] = []
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
        """Run :attr:`on_commit`, then move the staged files to ``path`` (replacing it when
        ``force``); returns ``path``."""
        with self._lock:
            if self._done:
                raise Cancelled()
            for add_files in self.on_commit:
                add_files(self.staging)
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
