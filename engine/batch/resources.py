"""What a batch job runs on: the CPU with some threads, or one GPU of its own."""

from __future__ import annotations

import os
from dataclasses import replace

from .job import BatchJob


def cpu_count() -> int:
    """The CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_threads(cores: int) -> int:
    """Torch threads per CPU job on a machine with ``cores`` cores: one on small machines (several
    single-threaded jobs keep the cores busier than one job's threads do), up to four on big ones."""
    return max(1, min(4, cores // 4))


def thread_env(threads: int) -> dict[str, str]:
    """Environment variables that give a worker ``threads`` CPU threads (torch reads them at start-up)."""
    return {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def visible_gpus() -> list[str]:
    """The CUDA devices torch sees here, each as the ``CUDA_VISIBLE_DEVICES`` entry that shows a
    worker that device alone."""
    import torch  # noqa: PLC0415 (the batch's own modules stay torch-free until it runs)

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    listed = [entry.strip() for entry in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if entry.strip()]
    return listed[:count] if listed else [str(index) for index in range(count)]


def place(item: BatchJob, have_gpus: bool) -> tuple[BatchJob, bool]:
    """``item`` with its device settled, and whether it takes a GPU: ``auto`` and ``cuda[:N]`` jobs
    take one when there are GPUs (their worker sees that one alone, as ``cuda``); ``auto`` runs on
    the CPU otherwise, and a ``cuda`` job without GPUs keeps its device and fails with the worker's
    sentence."""
    device = item.job.device
    gpu = have_gpus and (device == "auto" or device.startswith("cuda"))
    if gpu:
        device = "cuda"
    elif device == "auto":
        device = "cpu"
    return BatchJob(item.name, replace(item.job, device=device)), gpu
