"""Live previews: a coarse mesh of the surface while a method optimizes it, for a front end to show.

A job with a ``preview`` folder (:class:`engine.protocol.ReconstructJob`) gets a :class:`Preview`
in its :class:`~engine.methods.base.MethodInput`. An optimizing method asks
``data.preview_due()`` in its loop and, when it is, hands its current surface to
``data.send_preview(step, vertices, faces)``; nothing is computed or written otherwise. The
surface goes to a new file ``preview-NNNN.npz`` (written under a temporary name, then renamed, so
a reader never sees half a file) and a ``preview`` event names it; the reader owns the file from
then on (the Blender add-on deletes each one once it has shown it).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch

from . import protocol
from .progress import Progress
from .roi import Normalization

# Seconds between two previews: often enough to watch the surface form, rare enough to cost little.
PREVIEW_INTERVAL = 3.0


class Preview:
    """Writes the forming surface into ``folder`` at most every ``interval`` seconds (the first
    time at once) and announces each file through ``progress``.

    Args:
        folder: where the files go (created if missing).
        normalization: maps the methods' unit volume to the dataset frame the files are in.
        progress: sends the ``preview`` events.
        interval: seconds between two previews.
    """

    def __init__(self, folder: str | Path, normalization: Normalization, progress: Progress,
                 interval: float = PREVIEW_INTERVAL) -> None:
        self.folder = Path(folder).absolute()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.normalization = normalization
        self.progress = progress
        self.interval = interval
        self.count = 0
        self._last: float | None = None

    def due(self) -> bool:
        """Whether a preview sent now would be shown (the interval has passed)."""
        return self._last is None or time.monotonic() - self._last >= self.interval

    def send(self, step: int, vertices: torch.Tensor | np.ndarray, faces: torch.Tensor | np.ndarray) -> None:
        """Write ``vertices [M, 3]`` (unit volume) and ``faces [K, 3]`` as the preview of ``step``."""
        self._last = time.monotonic()
        if len(faces) == 0:
            return
        points = torch.from_numpy(np.ascontiguousarray(as_numpy(vertices), dtype=np.float32))
        world = self.normalization.to_world(points).numpy()
        triangles = np.ascontiguousarray(as_numpy(faces), dtype=np.int32)
        path = self.folder / f"preview-{self.count:04d}.npz"
        partial = path.with_name(path.name + ".partial")
        with partial.open("wb") as file:
            np.savez(file, vertices=world, faces=triangles)
        os.replace(partial, path)
        self.count += 1
        self.progress.preview(str(path), protocol.PREVIEW_NPZ, step)


def as_numpy(array: torch.Tensor | np.ndarray) -> np.ndarray:
    """``array`` as a numpy array (a tensor is detached and brought to the CPU)."""
    return array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else np.asarray(array)
