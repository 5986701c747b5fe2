"""``python -m engine worker JOB.json``: the process the Blender add-on starts.

It reads one job, writes one JSON object per line to stdout and nothing else (anything a library
prints goes to stderr, and into the job's ``log.txt``), and exits with the codes of
:mod:`engine.protocol`. See ``engine/README.md``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import IO

from .errors import InputError
from .jobs import error_event, run_job
from .protocol import EXIT_BAD_INPUT, Event, ReconstructJob, ReliefJob, parse_job


class JsonLines:
    """Writes events as JSON lines to a private handle on the real stdout; thread-safe."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        line = json.dumps(event, allow_nan=False, default=str)
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()


def claim_stdout() -> IO[str]:
    """Keep the real stdout for protocol messages and point file descriptor 1 (and ``sys.stdout``)
    at stderr, so that no print in any library (Python or native) can corrupt the protocol."""
    sys.stdout.flush()
    private = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return private


def read_job(path: str | Path) -> ReconstructJob | ReliefJob:
    """Parse ``JOB.json``: ``{"command": "reconstruct" or "relief", <the job's fields>}``."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as error:
        raise InputError(f"Cannot read the job file {path}: {error.strerror}") from error
    except json.JSONDecodeError as error:
        raise InputError(f"The job file {path} is not valid JSON: {error}") from error
    return parse_job(data)


def main(job_path: str) -> int:
    emit = JsonLines(claim_stdout())
    try:
        job = read_job(job_path)
    except InputError as error:
        emit(error_event(error)[0])
        return EXIT_BAD_INPUT
    return run_job(job, emit)
