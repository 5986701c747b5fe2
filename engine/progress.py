"""Progress reporting and cooperative cancellation, shared by the command line and the worker."""

from __future__ import annotations

import time
from collections.abc import Callable

from . import protocol
from .errors import Cancelled
from .protocol import Event


class Progress:
    """Turns ``update(stage, step, total)`` calls into progress events and checks for cancellation.

    Events are the worker protocol's messages (:mod:`engine.protocol`, ``engine/README.md``):
    progress (``stage``, ``step``, ``total``, ``eta`` in seconds for the current stage or ``None``,
    and ``losses`` from optimizing stages) and log (``level``, ``message``). They go to ``emit``; progress
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

    def update(self, stage: str, step: int, total: int, losses: dict[str, float] | None = None) -> None:
        """Report that ``step`` of ``total`` steps of ``stage`` are done; an optimizing stage may
        add its current named ``losses`` (sent with the throttled progress events)."""
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
        self._emit(protocol.progress_event(stage, step, total, None if eta is None else round(eta, 1), losses))

    def stage(self, stage: str) -> Callable[[int, int], None]:
        """A ``(step, total)`` callback bound to ``stage``, for functions that take ``on_step``."""
        return lambda step, total: self.update(stage, step, total)

    def log(self, message: str, level: str = protocol.INFO) -> None:
        self._emit(protocol.log_event(message, level))

    def preview(self, path: str, fmt: str, step: int) -> None:
        """Announce a live-preview file (see :mod:`engine.preview`)."""
        self._emit(protocol.preview_event(path, fmt, step))

    def wants_update(self) -> bool:
        """Whether an :meth:`update` now would be sent (not throttled): lets a loop compute what
        it reports (e.g. loss values, which synchronize a GPU) only when it will be shown."""
        return time.monotonic() - self._last_emit >= self._min_interval
