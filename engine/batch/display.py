"""The batch's progress on stderr: one bar for the batch, with the current stage of each running job.

On a terminal this is one tqdm line (``batch: 40%|████| 4/10 jobs [...] disc-e: carving 12/32 ·
disc-f: texturing``) with a line above it for each job that ends; when stderr is not a terminal
(a log file, CI), plain lines: a job's start, each of its stage changes and its end. Every
method may be called from any thread.
"""

from __future__ import annotations

import shutil
import sys
import threading
from typing import IO, Any

from .summary import FAILED, JobRecord

BATCH_FORMAT = "{desc}: {percentage:3.0f}%|{bar:20}| {n}/{total} jobs [{elapsed}<{remaining}]{postfix}"
BAR_WIDTH = 60  # columns the batch bar takes before the running jobs' stages


class BatchDisplay:
    """Shows a batch of ``total`` jobs, ``skipped`` of which were already done."""

    def __init__(self, total: int, skipped: int = 0, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.total, self.finished = total, skipped
        self._lock = threading.RLock()
        self._stages: dict[str, str] = {}  # running job -> its current stage (with steps on a terminal)
        self._bar: Any = None
        if self.stream.isatty():
            from tqdm import tqdm  # noqa: PLC0415 (only a terminal needs it)

            self._bar = tqdm(total=total, initial=skipped, desc="batch", file=self.stream, bar_format=BATCH_FORMAT)
        if skipped:
            self.message(f"{skipped} of {total} jobs already done: skipped")

    def message(self, text: str) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.write(text, file=self.stream)
            else:
                print(text, file=self.stream, flush=True)

    def started(self, name: str) -> None:
        with self._lock:
            self._stages[name] = "starting"
            if self._bar is None:
                self.message(f"[{self.finished}/{self.total}] {name}: started")
            else:
                self._show_stages()

    def stage(self, name: str, stage: str, step: int, total: int) -> None:
        """``name`` is at ``step`` of ``total`` in ``stage``."""
        with self._lock:
            if name not in self._stages:
                return
            if self._bar is None:
                if self._stages[name] != stage:
                    self._stages[name] = stage
                    self.message(f"[{self.finished}/{self.total}] {name}: {stage}")
                return
            self._stages[name] = f"{stage} {step}/{total}" if total > 1 else stage
            self._show_stages()

    def ended(self, record: JobRecord) -> None:
        """A job that ran (or was meant to) has its record."""
        with self._lock:
            self._stages.pop(record.name, None)
            self.finished += 1
            seconds = "" if record.seconds is None else f" in {record.seconds:.1f} s"
            tries = f" after {record.tries} tries" if record.tries > 1 else ""
            why = f": {record.error}" if record.status == FAILED else ""
            self.message(f"[{self.finished}/{self.total}] {record.name}: {record.status}{seconds}{tries}{why}")
            if self._bar is not None:
                self._bar.update(1)
                self._show_stages()

    def _show_stages(self) -> None:
        """The running jobs' stages after the bar, cut to the terminal's width."""
        text = " · ".join(f"{name}: {stage}" for name, stage in self._stages.items())
        room = max(10, shutil.get_terminal_size().columns - BAR_WIDTH)
        text = text if len(text) <= room else text[:room - 1] + "…"
        self._bar.set_postfix_str(text, refresh=True)

    def close(self) -> None:
        with self._lock:
            self._stages.clear()
            if self._bar is not None:
                self._bar.close()
                self._bar = None
