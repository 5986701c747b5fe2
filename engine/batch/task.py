"""The Ray task of one batch job, as it runs on a cluster's node (:mod:`.cluster` submits it).

Kept light (no torch): Ray imports it in every worker that runs a task, and the job itself runs in
an engine worker process of its own (:class:`~.attempt.EngineWorker`).
"""

from __future__ import annotations

import io
import shutil
import tarfile
import tempfile
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from .. import protocol
from .attempt import EngineWorker
from .job import BatchJob
from .resources import thread_env


class RetryableFailure(Exception):
    """Raised by a task whose try failed in a way another try may fix, so that Ray retries it;
    carries the try (:class:`Attempt` as a dict) and, when files are shipped, the job's log."""

    def __init__(self, attempt: dict[str, Any], log: str | None) -> None:
        super().__init__(attempt, log)
        self.attempt, self.log = attempt, log

    def __str__(self) -> str:
        return str(self.attempt.get("message"))


def pack(folder: Path) -> bytes:
    """``folder``'s files as an uncompressed tar archive (images are compressed already)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(folder, arcname=".")
    return buffer.getvalue()


def unpack(data: bytes, folder: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as archive:
        archive.extractall(folder, filter="data")


def run_task(job: dict[str, Any], name: str, *, threads: int, gpu: bool, dataset: bytes | None, relative: str,
             board: Any) -> dict[str, Any]:
    """The Ray task of one job: one try in a worker process on this node.

    Args:
        job: the job's fields (``ReconstructJob.to_dict``); paths on a shared file system unless
            ``dataset`` is given.
        name: the job's name (its folder under the root).
        threads: torch threads of a CPU job.
        gpu: whether Ray gave the task a GPU (``CUDA_VISIBLE_DEVICES`` shows the worker that one).
        dataset: with shipped files, the dataset's folder as a tar archive (``None``: a shared path).
        relative: with shipped files, the job's ``dataset`` relative to that folder (``.`` or the json's name).
        board: a ``ray.util.queue.Queue`` for the driver's display: ``(name, stage, step, total)``
            on each stage change.

    Returns:
        ``{"attempt": Attempt as a dict, "output": the result folder as a tar archive (shipped files,
        on success) or None, "log": the job's log text (shipped files) or None}``.

    Raises:
        RetryableFailure: the try failed in a way another one may fix (Ray retries the task).
    """
    work = Path(tempfile.mkdtemp(prefix=f"meshlift-{name}-")) if dataset is not None else None
    try:
        item = protocol.parse_job(job)
        if work is not None:
            unpack(dataset, work / "dataset")
            origin = str(Path(item.dataset) if relative == "." else Path(item.dataset).parent)
            item = replace(item, dataset=str(work / "dataset" / relative), out=str(work / "out" / name))
            log_path, job_file = work / f"{name}.log", work / f"{name}.job.json"
        else:
            log_path, job_file = BatchJob(name, item).log, BatchJob(name, item).job_file
        log_path.parent.mkdir(parents=True, exist_ok=True)
        stage_seen: list[str] = []

        def on_stage(stage: str, step: int, total: int) -> None:
            if stage_seen[-1:] != [stage]:
                stage_seen.append(stage)
                board.put((name, stage, step, total))

        with log_path.open("a", encoding="utf-8") as log:
            attempt = EngineWorker(item, job_file, log, {} if gpu else thread_env(threads), on_stage).run()
        log_text = None
        if work is not None:  # the user knows the dataset by its own path, not the node's copy
            log_text = log_path.read_text(encoding="utf-8")
            if attempt.message is not None:
                attempt.message = attempt.message.replace(str(work / "dataset"), origin)
        if attempt.retryable:
            raise RetryableFailure(asdict(attempt), log_text)
        output = pack(Path(item.out)) if work is not None and attempt.done else None
        return {"attempt": asdict(attempt), "output": output, "log": log_text}
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
