"""A whole batch: skip what is done, run the rest here or on a Ray cluster, keep the summary current."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .display import BatchDisplay
from .job import LOGS, BatchJob
from .resources import cpu_count, default_threads
from .summary import SKIPPED, JobRecord, write_summary


@dataclass(frozen=True)
class BatchSettings:
    """How a batch runs.

    Attributes:
        retries: tries after the first for a job that failed in a way another try may fix (the worker
            crashed or was killed, ran out of memory, or hit an internal error; never bad input).
        jobs: CPU jobs at once on this machine (default: the cores divided by ``threads``).
        threads: torch threads per CPU job (default: :func:`~.resources.default_threads` of the cores).
        ray: ``None`` to run here, else the Ray cluster to submit to (``auto`` or an address).
        ship_files: with ``ray``, move each dataset to its task and the result back as files through
            Ray, for clusters whose nodes do not share a file system.
    """

    retries: int = 0
    jobs: int | None = None
    threads: int | None = None
    ray: str | None = None
    ship_files: bool = False

    @property
    def cpu_threads(self) -> int:
        return self.threads or default_threads(cpu_count())

    @property
    def cpu_jobs(self) -> int:
        return self.jobs or max(1, cpu_count() // self.cpu_threads)


@dataclass
class BatchResult:
    """The records of every job, in the order of the source, and whether the batch was interrupted."""

    records: list[JobRecord]
    interrupted: bool


def run_batch(jobs: list[BatchJob], root: str | Path, settings: BatchSettings,
              stream: IO[str] | None = None) -> BatchResult:
    """Run ``jobs`` (from :func:`~.source.read_jobs` with this ``root``): those whose output is
    already in ``root`` are skipped, the others run in worker processes, here or (``settings.ray``)
    on a Ray cluster. ``root/summary.json`` and ``summary.csv`` are rewritten as each job ends, so a
    killed batch leaves the summary of what it finished. Progress goes to ``stream`` (stderr)."""
    root = Path(root).absolute()
    (root / LOGS).mkdir(parents=True, exist_ok=True)
    records: dict[str, JobRecord] = {}
    order = [item.name for item in jobs]
    todo = []
    for item in jobs:
        report = item.finished_report()
        if report is None:
            todo.append(item)
        else:
            records[item.name] = JobRecord.finished(item.name, report, SKIPPED)
    display = BatchDisplay(len(jobs), len(records), stream)
    lock = threading.Lock()

    def on_record(record: JobRecord) -> None:
        with lock:
            display.ended(record)
            records[record.name] = record
            write_summary(root, [records[name] for name in order if name in records])

    write_summary(root, [records[name] for name in order if name in records])
    try:
        with interrupt_on_sigterm():
            if settings.ray is None:
                from .local import LocalRunner  # noqa: PLC0415

                runner: Any = LocalRunner(settings.cpu_jobs, settings.cpu_threads, settings.retries, display)
                interrupted = runner.run(todo, on_record)
            else:
                from .cluster import RayRunner  # noqa: PLC0415 (Ray is imported only for --ray)

                interrupted = RayRunner(settings, display).run(todo, on_record)
    finally:
        display.close()
    return BatchResult([records[name] for name in order if name in records], interrupted)


@contextmanager
def interrupt_on_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM stops the batch the way Ctrl+C does (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
