"""Progress reporting and cooperative cancellation, shared by the command line and the worker."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .errors import Cancelled

Event = dict[str, Any]


class Progress:
    """Turns ``update(stage, step, total)`` calls into progress events and checks for cancellation.

    Events are the worker protocol's messages (see ``engine/README.md``):
    ``{"type": "progress", "stage", "step", "total", "eta"}`` (``eta`` in seconds for the current
    stage, or ``None``) and ``{"type": "log", "level", "message"}``. They go to ``emit``; progress
    events are throttled to one every ``min_interval`` seconds, except a stage's first and last.

    Every ``update`` raises :class:`~engine.errors.Cancelled` once ``is_cancelled()`` is true, so
    long loops stop at their next step.
    """

    def __init__(self, emit: Callable[[Event], None], is_cancelled: Callable[[], bool] = lambda: False,
                 min_interval: float = 0.1) -> None:
        self._emit = emit
        self._is_cancelled = is_cancelled
        self._min_interval = min_interval
        self._stage: str | None = None
        self._stage_start = 0.0
        self._last_emit = 0.0

    def check(self) -> None:
        """Raise :class:`Cancelled` if the job was cancelled."""
        if self._is_cancelled():
            raise Cancelled()

    def update(self, stage: str, step: int, total: int) -> None:
        """Report that ``step`` of ``total`` steps of ``stage`` are done."""
        self.check()
        now = time.monotonic()
        first = stage != self._stage
        if first:
            self._stage, self._stage_start = stage, now
        if not first and step < total and now - self._last_emit < self._min_interval:
            return
        elapsed = now - self._stage_start
        eta = elapsed / step * (total - step) if step > 0 and elapsed > 0 else None
        self._last_emit = now
        self._emit({"type": "progress", "stage": stage, "step": step, "total": total,
                    "eta": None if eta is None else round(eta, 1)})

    def stage(self, stage: str) -> Callable[[int, int], None]:
        """A ``(step, total)`` callback bound to ``stage``, for functions that take ``on_step``."""
        return lambda step, total: self.update(stage, step, total)

    def log(self, message: str, level: str = "info") -> None:
        self._emit({"type": "log", "level": level, "message": message})
