"""Running a batch's jobs as Ray tasks on a cluster (``--ray auto|ADDRESS``; ``meshlift[cluster]``).

Ray is the scheduler: each job is one task that asks for one GPU when the cluster has GPUs (and the
job may use one), else for ``threads`` CPUs, and Ray places it, retries it (``max_retries``; a try
that failed in a retryable way raises :class:`RetryableFailure` so that Ray tries again) and cancels
it (Ctrl+C). A task runs the job the way a local batch does, in a worker process on its node
(:class:`~.attempt.EngineWorker`), so an engine crash does not take the Ray worker with it.

Files: by default the dataset, the output root and the logs are paths every node sees (a shared
file system). With ``ship_files`` the driver sends each dataset to its task as a tar archive, the
task works in a temporary folder on its node and sends the result and its log back, and the driver
writes them under the root.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..output import OutputDir
from .attempt import Attempt
from .display import BatchDisplay
from .job import BatchJob
from .resources import place
from .summary import FAILED, NOT_STARTED, STOPPED, JobRecord
from .task import RetryableFailure, pack, run_task, unpack

POLL_SECONDS = 0.2
CANCEL_WAIT_SECONDS = 15.0


class RayRunner:
    """Submits a batch's jobs to the Ray cluster ``settings.ray`` and follows them."""

    def __init__(self, settings: Any, display: BatchDisplay) -> None:
        self.settings, self.display = settings, display
        self._shown: set[str] = set()

    def run(self, jobs: list[BatchJob], on_record: Callable[[JobRecord], None]) -> bool:
        """Run ``jobs`` as Ray tasks, passing each record to ``on_record``; returns whether the batch
        was interrupted (every task still running is cancelled, its worker stopped)."""
        import ray  # noqa: PLC0415 (the optional dependency, only for --ray)
        from ray.util.queue import Queue  # noqa: PLC0415

        connected_here = not ray.is_initialized()
        if connected_here:
            connect(ray, self.settings.ray)
        try:
            board = Queue(actor_options={"num_cpus": 0})
            have_gpus = ray.cluster_resources().get("GPU", 0) > 0
            task = ray.remote(run_task)
            refs: dict[Any, BatchJob] = {}
            for item in jobs:
                placed, gpu = place(item, have_gpus)
                refs[self.submit(ray, task, placed, gpu, board)] = placed
            try:
                while refs:
                    ready, _ = ray.wait(list(refs), num_returns=1, timeout=POLL_SECONDS)
                    self.show(board)
                    for ref in ready:
                        on_record(self.collect(ray, ref, refs.pop(ref)))
            except KeyboardInterrupt:
                for ref in refs:
                    ray.cancel(ref)
                ray.wait(list(refs), num_returns=len(refs), timeout=CANCEL_WAIT_SECONDS)
                for ref, item in refs.items():
                    on_record(self.collect(ray, ref, item, stopped=True))
                return True
            return False
        finally:
            if connected_here:
                ray.shutdown()

    def submit(self, ray: Any, task: Any, item: BatchJob, gpu: bool, board: Any) -> Any:
        """One task for ``item``: one GPU, or ``threads`` CPUs; Ray retries it ``retries`` times."""
        threads = self.settings.cpu_threads
        job = item.job.to_dict()
        dataset, relative = None, "."
        if self.settings.ship_files:
            source = Path(item.job.dataset)
            folder = source if source.is_dir() else source.parent  # a camera file ships its folder
            dataset = ray.put(pack(folder))
            relative = "." if source == folder else source.name
        resources = {"num_gpus": 1, "num_cpus": 1} if gpu else {"num_cpus": threads}
        return task.options(name=f"meshlift:{item.name}", max_retries=self.settings.retries,
                            retry_exceptions=[RetryableFailure], **resources).remote(
            job, item.name, threads=threads, gpu=gpu, dataset=dataset, relative=relative, board=board)

    def show(self, board: Any) -> None:
        """Pass the stage changes the tasks reported to the display (a job shows from its first)."""
        for name, stage, step, total in board.get_nowait_batch(board.qsize()):
            if name not in self._shown:
                self._shown.add(name)
                self.display.started(name)
            self.display.stage(name, stage, step, total)

    def collect(self, ray: Any, ref: Any, item: BatchJob, stopped: bool = False) -> JobRecord:
        """The record of a finished (or cancelled) task; shipped results are written under the root."""
        try:
            value = ray.get(ref, timeout=0 if stopped else None)
        except ray.exceptions.RayTaskError as error:
            cause = error.cause
            if isinstance(cause, RetryableFailure):
                self.write_log(item, cause.log)
                return JobRecord.from_tries(item.name, [Attempt(**cause.attempt)])
            if stopped or isinstance(cause, KeyboardInterrupt):
                return JobRecord(item.name, FAILED, error=STOPPED)
            return JobRecord(item.name, FAILED, error=f"The Ray task failed: {first_line(error)}")
        except (ray.exceptions.TaskCancelledError, ray.exceptions.GetTimeoutError):
            return JobRecord(item.name, FAILED, error=STOPPED if item.name in self._shown else NOT_STARTED)
        except ray.exceptions.RayError as error:  # the Ray worker or its node died, after Ray's retries
            return JobRecord(item.name, FAILED, error=f"The Ray task failed: {first_line(error)}")
        attempt = Attempt(**value["attempt"])
        self.write_log(item, value["log"])
        record = JobRecord.from_tries(item.name, [attempt])
        if value["output"] is not None:
            try:
                keep_output(item, value["output"])
            except InputError as error:  # e.g. the folder appeared meanwhile: this result is not kept
                record = JobRecord(item.name, FAILED, attempt.seconds, error=str(error), tries=1)
        if stopped and not attempt.done:
            record.error = STOPPED
        return record

    def write_log(self, item: BatchJob, text: str | None) -> None:
        """Append a shipped log to the job's log under the root."""
        if text is not None:
            item.log.parent.mkdir(parents=True, exist_ok=True)
            with item.log.open("a", encoding="utf-8") as log:
                log.write(text)


def keep_output(item: BatchJob, archive: bytes) -> None:
    """Write a shipped result (a tar archive of its folder) to the job's folder, whole or not at all."""
    output = OutputDir(item.out, item.job.force)
    with output as folder:
        unpack(archive, folder)
        output.commit()


def connect(ray: Any, address: str) -> None:
    """Join the Ray cluster at ``address`` (``auto``: the one started on this machine by ``ray start``)."""
    try:
        ray.init(address=address, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise InputError(f"Cannot reach the Ray cluster '{address}' ({first_line(error)}); start one with "
                         "`ray start --head` or give its address") from error


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
