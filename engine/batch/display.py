"""The batch's progress on stderr: one bar for the batch and a line per running job with its stage.

On a terminal these are tqdm bars (the batch's at the top, the running jobs' below it); when stderr
is not a terminal (a log file, CI), plain lines: a job's start, each of its stage changes and its end.
Every method may be called from any thread.
"""

from __future__ import annotations

import sys
import threading
from typing import IO, Any

from .summary import FAILED, JobRecord

BATCH_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n}/{total} jobs [{elapsed}<{remaining}]"


class BatchDisplay:
    """Shows a batch of ``total`` jobs, ``skipped`` of which were already done."""

    def __init__(self, total: int, skipped: int = 0, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.total, self.finished = total, skipped
        self.tty = self.stream.isatty()
        self._lock = threading.RLock()
        self._lines: dict[str, Any] = {}  # running job -> its tqdm line (terminal) or last stage (plain)
        self._positions: dict[str, int] = {}  # running job -> its line's row under the batch bar
        self._free: list[int] = []
        self._bar: Any = None
        if self.tty:
            from tqdm import tqdm  # noqa: PLC0415 (only a terminal needs it)

            self._tqdm = tqdm
            self._bar = tqdm(total=total, initial=skipped, desc="batch", file=self.stream, position=0,
                             dynamic_ncols=True, bar_format=BATCH_FORMAT)
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
            if self._bar is None:
                self._lines[name] = None
                self.message(f"[{self.finished}/{self.total}] {name}: started")
                return
            position = self._free.pop(0) if self._free else len(self._positions) + 1
            self._positions[name] = position
            self._lines[name] = self._tqdm(total=0, desc=f"  {name}: starting", file=self.stream,
                                           position=position, leave=False, bar_format="{desc}")

    def stage(self, name: str, stage: str, step: int, total: int) -> None:
        """``name`` is at ``step`` of ``total`` in ``stage``."""
        with self._lock:
            if name not in self._lines:
                return
            if self._bar is None:
                if self._lines[name] != stage:
                    self._lines[name] = stage
                    self.message(f"[{self.finished}/{self.total}] {name}: {stage}")
                return
            line = self._lines[name]
            line.set_description_str(f"  {name}: {stage} {step}/{total}" if total > 1 else f"  {name}: {stage}")

    def ended(self, record: JobRecord) -> None:
        """A job that ran (or was meant to) has its record."""
        with self._lock:
            line = self._lines.pop(record.name, None)
            self.finished += 1
            if self._bar is not None:
                if line is not None:
                    self._free.append(self._positions.pop(record.name))
                    self._free.sort()
                    line.close()
                self._bar.update(1)
            seconds = "" if record.seconds is None else f" in {record.seconds:.1f} s"
            tries = f" after {record.tries} tries" if record.tries > 1 else ""
            why = f": {record.error}" if record.status == FAILED else ""
            self.message(f"[{self.finished}/{self.total}] {record.name}: {record.status}{seconds}{tries}{why}")

    def close(self) -> None:
        with self._lock:
            for line in self._lines.values():
                if self._bar is not None and line is not None:
                    line.close()
            self._lines.clear()
            if self._bar is not None:
                self._bar.close()
                self._bar = None
