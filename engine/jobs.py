"""Run a job (reconstruct, or texture a mesh) so that SIGINT/SIGTERM stop it within a second, leaving nothing behind.

The job runs in a background thread; the main thread waits on it and handles the signals (Python
runs signal handlers only in the main thread, and only between bytecodes, so a main thread busy
in a long C call could not react in time). On a signal the job is asked to stop at its next
progress step; if it has not stopped within ``CANCEL_GRACE_SECONDS`` the staged output is deleted
and the process exits at once.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

import torch

from . import protocol
from .errors import Cancelled, InputError
from .output import OutputDir
from .pipeline import reconstruct
from .progress import Progress
from .protocol import EXIT_BAD_INPUT, EXIT_CANCELLED, EXIT_FAILED, EXIT_OK, Event, ReconstructJob, TextureJob
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


def run_job(job: ReconstructJob, emit: Callable[[Event], None]) -> int:
    """Run ``job``, sending progress/log events and finally one ``result`` or ``error`` event to
    ``emit``; returns the process exit code (0 done, 1 failed, 2 bad input, 130 cancelled)."""
    cancel = threading.Event()
    progress = Progress(emit, cancel.is_set)
    try:
        output = OutputDir(job.out, job.force)
    except InputError as error:
        event, code = error_event(error)
        emit(event)
        return code
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            run = texture_existing if isinstance(job, TextureJob) else reconstruct
            outcome["result"] = run(job, progress, output)
        except BaseException as error:  # reported to the user by the main thread
            outcome["error"] = error

    def on_signal(_signum: int, _frame: Any) -> None:
        cancel.set()

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

    if "result" in outcome:
        emit(protocol.result_event(**outcome["result"]))
        return EXIT_OK
    event, code = error_event(Cancelled() if cancel.is_set() else outcome["error"])
    emit(event)
    if thread.is_alive():  # stuck in a long native call: leave now, the output is already discarded
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
