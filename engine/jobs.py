"""Run a job (reconstruct, texture a mesh, a relief) so that SIGINT/SIGTERM stop it within a second,
leaving nothing behind.

:func:`run_task` runs any task that writes an output folder (the reconstruction of
:func:`run_job`, the ``poses`` command) the same way. The task runs in a background thread; the
main thread waits on it and handles the signals (Python runs signal handlers only in the main
thread, and only between bytecodes, so a main thread busy in a long C call could not react in
time). On a signal the task is asked to stop at its next progress step; if it has not stopped
within ``CANCEL_GRACE_SECONDS`` the staged output is deleted and the process exits at once. What
libraries print meanwhile goes to the job's log (:mod:`engine.job_log`), which a completed output
holds as ``log.txt``.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from . import protocol
from .errors import Cancelled, InputError
from .job_log import LOG_FILE, JobLog
from .output import REPLACE_WITH_FIELD, OutputDir
from .pipeline import reconstruct
from .progress import Progress
from .protocol import (
    EXIT_BAD_INPUT,
    EXIT_CANCELLED,
    EXIT_FAILED,
    EXIT_OK,
    Event,
    ReconstructJob,
    ReliefJob,
    TextureJob,
)
from .relief import relief
from .texturing import texture_existing

CANCEL_GRACE_SECONDS = 0.5


def error_event(error: BaseException) -> tuple[Event, int]:
    """The protocol's ``error`` message for ``error`` and the matching exit code."""
    if isinstance(error, Cancelled):
        return protocol.error_event(protocol.CANCELLED, "Cancelled; nothing was written."), EXIT_CANCELLED
    if isinstance(error, InputError):
        return protocol.error_event(protocol.INPUT, str(error)), EXIT_BAD_INPUT
    if isinstance(error, torch.OutOfMemoryError):
        message = ("The device ran out of memory. Try the 'fast' preset, fewer or smaller images "
                   "(image_scale), or the CPU.")
        return protocol.error_event(protocol.OUT_OF_MEMORY, message), EXIT_FAILED
    print("".join(traceback.format_exception(error)), file=sys.stderr, flush=True)
    message = f"Internal error ({type(error).__name__}: {error}). The details are on the worker's stderr."
    return protocol.error_event(protocol.INTERNAL, message), EXIT_FAILED


# A task writes its files into the staging folder of the OutputDir it is given, commits it, and
# returns the result event's payload: ``{"files": {kind: absolute path}, "report": {...}}``.
Task = Callable[[Progress, OutputDir], dict[str, Any]]


def run_job(job: ReconstructJob | ReliefJob, emit: Callable[[Event], None], *, replace_hint: str = REPLACE_WITH_FIELD,
            echo_library_output: bool = True) -> int:
    """Run ``job``, sending progress/log events and finally one ``result`` or ``error`` event to
    ``emit``; returns the process exit code (0 done, 1 failed, 2 bad input, 130 cancelled).
    ``replace_hint`` and ``echo_library_output`` are the front end's (see :func:`run_task`)."""
    if isinstance(job, ReliefJob):
        inputs = [path for path in (job.image, job.depth, job.normals) if path]
        return run_task(lambda progress, output: relief(job, progress, output), emit, out=job.out, force=job.force,
                        inputs=inputs, replace_hint=replace_hint, echo_library_output=echo_library_output)
    run = texture_existing if isinstance(job, TextureJob) else reconstruct
    inputs = [job.dataset, job.mesh] if isinstance(job, TextureJob) else [job.dataset]
    return run_task(lambda progress, output: run(job, progress, output), emit, out=job.out, force=job.force,
                    inputs=inputs, replace_hint=replace_hint, echo_library_output=echo_library_output)


def run_task(task: Task, emit: Callable[[Event], None], *, out: str | Path, force: bool = False,
             inputs: Iterable[str | Path] = (), replace_hint: str = REPLACE_WITH_FIELD,
             echo_library_output: bool = True) -> int:
    """Run ``task`` into the output folder ``out`` (see :class:`~engine.output.OutputDir` for
    ``force``, ``inputs`` and ``replace_hint``) in a thread that SIGINT/SIGTERM cancel, sending
    its events and finally one ``result`` (its files plus ``log``) or ``error`` event to ``emit``.

    Library output goes to the job's log, and to the terminal too when ``echo_library_output``.
    Returns the process exit code (0 done, 1 failed, 2 bad input, 130 cancelled).
    """
    cancel = threading.Event()
    try:
        output = OutputDir(out, force, replace_hint=replace_hint, inputs=inputs)
    except InputError as error:
        event, code = error_event(error)
        emit(event)
        return code
    outcome: dict[str, Any] = {}

    def on_signal(_signum: int, _frame: Any) -> None:
        cancel.set()

    with JobLog(echo=echo_library_output) as log:
        output.on_commit.append(log.copy_into)

        def record_and_emit(event: Event) -> None:
            log.record(event)
            emit(event)

        progress = Progress(record_and_emit, cancel.is_set)

        def work() -> None:
            try:
                outcome["result"] = task(progress, output)
            except BaseException as error:  # reported to the user by the main thread
                outcome["error"] = error

        thread = threading.Thread(target=work, name="meshlift-job", daemon=True)
        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            thread.start()
            while thread.is_alive() and not cancel.is_set():
                thread.join(0.05)
            if cancel.is_set():
                thread.join(CANCEL_GRACE_SECONDS)
                output.discard()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    if "result" in outcome:  # done, even if a signal came after the commit
        result = outcome["result"]
        emit(protocol.result_event({**result["files"], "log": str(output.path / LOG_FILE)}, result["report"]))
        return EXIT_OK
    output.discard()  # a task that failed before its own commit may have left a staging folder
    event, code = error_event(Cancelled() if cancel.is_set() else outcome["error"])
    emit(event)
    if thread.is_alive():  # stuck in a long native call: leave now, the output is already discarded
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
