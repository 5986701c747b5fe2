"""Running a batch's jobs on this machine: several CPU jobs at once with a few threads each, and
one job per GPU; a failed try is retried when trying again may help; Ctrl+C stops every worker."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from .attempt import Attempt, EngineWorker
from .display import BatchDisplay
from .job import BatchJob
from .resources import place, thread_env, visible_gpus
from .summary import FAILED, NOT_STARTED, STOPPED, JobRecord


class LocalRunner:
    """Runs jobs in worker processes here: ``cpu_jobs`` CPU jobs at once with ``threads`` torch threads
    each, one job per visible GPU; each job is tried up to ``1 + retries`` times."""

    def __init__(self, cpu_jobs: int, threads: int, retries: int, display: BatchDisplay) -> None:
        self.cpu_jobs, self.threads, self.retries, self.display = cpu_jobs, threads, retries, display
        self.stop = threading.Event()
        self._running: set[EngineWorker] = set()
        self._lock = threading.Lock()

    def run(self, jobs: list[BatchJob], on_record: Callable[[JobRecord], None]) -> bool:
        """Run ``jobs``, passing each one's record to ``on_record`` as it ends; returns whether the
        batch was interrupted (Ctrl+C or SIGTERM: every running worker is stopped, and the jobs
        that had not finished are recorded as failed with the reason)."""
        gpus = visible_gpus()
        free_gpus: queue.Queue[str] = queue.Queue()
        for gpu in gpus:
            free_gpus.put(gpu)
        with ThreadPoolExecutor(self.cpu_jobs, "meshlift-batch-cpu") as cpu_pool, \
                ThreadPoolExecutor(max(1, len(gpus)), "meshlift-batch-gpu") as gpu_pool:
            futures: dict[Future, str] = {}
            for item in jobs:
                placed, gpu = place(item, bool(gpus))
                pool = gpu_pool if gpu else cpu_pool
                futures[pool.submit(self.run_job, placed, free_gpus if gpu else None)] = item.name
            try:
                while futures:
                    done, _ = wait(futures, timeout=0.2, return_when=FIRST_COMPLETED)
                    for future in done:
                        on_record(future.result())
                        del futures[future]
            except KeyboardInterrupt:
                self.interrupt()
                for future in futures:
                    future.cancel()
                for future, name in futures.items():
                    on_record(JobRecord(name, FAILED, error=NOT_STARTED) if future.cancelled() else future.result())
                return True
        return False

    def interrupt(self) -> None:
        """Start no new job or try, and stop the running workers."""
        self.stop.set()
        with self._lock:
            running = list(self._running)
        for worker in running:
            worker.terminate()

    def run_job(self, item: BatchJob, free_gpus: queue.Queue[str] | None) -> JobRecord:
        """All tries of one job (on a GPU taken from ``free_gpus`` when given); its record."""
        if self.stop.is_set():
            return JobRecord(item.name, FAILED, error=NOT_STARTED)
        gpu = free_gpus.get() if free_gpus is not None else None
        env = thread_env(self.threads) if gpu is None else {"CUDA_VISIBLE_DEVICES": gpu}
        tries: list[Attempt] = []
        self.display.started(item.name)
        try:
            item.log.parent.mkdir(parents=True, exist_ok=True)
            with item.log.open("a", encoding="utf-8") as log:
                while len(tries) <= self.retries and not self.stop.is_set():
                    worker = EngineWorker(item.job, item.job_file, log, env,
                                          lambda stage, step, total: self.display.stage(item.name, stage, step, total))
                    with self._lock:
                        self._running.add(worker)
                    try:
                        tries.append(worker.run())
                    finally:
                        with self._lock:
                            self._running.discard(worker)
                    if tries[-1].done or not tries[-1].retryable:
                        break
        finally:
            if free_gpus is not None and gpu is not None:
                free_gpus.put(gpu)
        if not tries:
            record = JobRecord(item.name, FAILED, error=NOT_STARTED)
        else:
            record = JobRecord.from_tries(item.name, tries)
            if self.stop.is_set() and not tries[-1].done:  # stopped, whether in its job or still starting
                record.error = STOPPED
        return record
