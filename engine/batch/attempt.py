"""One try of one job: ``python -m engine worker JOB.json`` in a child process, followed to its end.

The child speaks the worker protocol (:mod:`engine.protocol`) on stdout; its stage changes go to a
callback (the batch's progress display), and its log messages, its stderr and how the try ended go
to the job's log. A worker that dies without its last event (killed, out of memory) is a failure
like any other, and the staging folder it may leave beside the output is removed. On Linux the
child gets SIGTERM when the thread that started it dies, so a killed batch leaves no worker behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .. import protocol
from ..output import staging_folder
from ..protocol import ReconstructJob

# The folder that holds the ``engine`` package: the child runs from there, so it runs this engine.
ENGINE_ROOT = Path(__file__).resolve().parents[2]
CRASHED = "crashed"  # the kind of a try whose worker ended without a result or an error event
RETRYABLE = (protocol.OUT_OF_MEMORY, protocol.INTERNAL, CRASHED)  # a bad input fails the same way again
TERMINATE_GRACE_SECONDS = 5.0
PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


@dataclass
class Attempt:
    """How one try of a job ended.

    Attributes:
        kind: ``result`` when it succeeded, else the worker's error kind (``input``, ``cancelled``,
            ``out_of_memory``, ``internal``) or ``crashed``.
        message: the sentence for the user (``None`` on success).
        seconds: wall-clock seconds of the worker process, start-up included.
        report: the worker's ``report.json`` content on success.
        exit_code: the worker's exit status (negative: killed by that signal).
    """

    kind: str
    message: str | None
    seconds: float
    report: dict[str, Any] | None = None
    exit_code: int | None = None

    @property
    def done(self) -> bool:
        return self.kind == protocol.RESULT

    @property
    def retryable(self) -> bool:
        """Whether trying again may help (not for bad input or a cancel)."""
        return self.kind in RETRYABLE


def die_with_parent() -> None:
    """Ask the kernel to send this (child) process SIGTERM when its parent thread ends (Linux)."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def crash_message(code: int, stderr_tail: str | None) -> str:
    """Why a worker that ended without its last event failed, in one sentence."""
    if code < 0:
        try:
            how = f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"was killed by signal {-code}"
        if code == -signal.SIGKILL:
            how += " (out of memory?)"
    else:
        how = f"exited with code {code}"
    message = f"The worker {how} before it finished"
    return message + (f"; its last words: {stderr_tail[:300]}" if stderr_tail else "")


class EngineWorker:
    """Runs one try of ``job`` in a worker process (:meth:`run`, blocking); :meth:`terminate` stops it
    from another thread.

    Args:
        job: the job; its file is written to ``job_file``.
        log: the job's log (text, appended to; shared by the tries of one job).
        env: extra environment variables for the worker (threads, visible GPUs).
        on_stage: called with ``(stage, step, total)`` for every progress event.
    """

    def __init__(self, job: ReconstructJob, job_file: Path, log: IO[str], env: dict[str, str] | None = None,
                 on_stage: Callable[[str, int, int], None] | None = None) -> None:
        self.job, self.job_file, self.log = job, Path(job_file), log
        self.env = env or {}
        self.on_stage = on_stage or (lambda stage, step, total: None)
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._terminated = False

    def write(self, line: str) -> None:
        with self._lock:
            self.log.write(line.rstrip("\n") + "\n")
            self.log.flush()

    def run(self) -> Attempt:
        """Start the worker and follow it to its end; returns how the try ended."""
        self.job_file.parent.mkdir(parents=True, exist_ok=True)
        self.job_file.write_text(json.dumps(self.job.to_dict(), indent=2))
        command = [sys.executable, "-m", "engine", "worker", str(self.job_file)]
        self.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} try: {' '.join(command)}")
        started = time.monotonic()
        with self._lock:
            if self._terminated:
                return Attempt(protocol.CANCELLED, "Cancelled before it started.", 0.0)
            self._process = subprocess.Popen(
                command, cwd=ENGINE_ROOT, env={**os.environ, **self.env, "PYTHONUNBUFFERED": "1"},
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                encoding="utf-8", errors="replace", bufsize=1, preexec_fn=die_with_parent,  # noqa: PLW1509
            )
        process = self._process
        last_stderr: list[str] = []
        reader = threading.Thread(target=self._read_stderr, args=(process, last_stderr), daemon=True)
        reader.start()
        try:
            final = self._read_events(process)
            code = process.wait()
        except BaseException:  # an interrupt (Ctrl+C, a cancelled Ray task): stop the worker first
            self.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=TERMINATE_GRACE_SECONDS + 1)
            raise
        finally:
            reader.join(timeout=2.0)
        seconds = round(time.monotonic() - started, 3)
        if final is None or (final["type"] == protocol.RESULT and code != protocol.EXIT_OK):
            shutil.rmtree(staging_folder(self.job.out, process.pid), ignore_errors=True)
            message = crash_message(code, last_stderr[0] if last_stderr else None)
            attempt = Attempt(CRASHED, message, seconds, None, code)
        elif final["type"] == protocol.RESULT:
            attempt = Attempt(protocol.RESULT, None, seconds, final["report"], code)
        else:
            attempt = Attempt(str(final.get("kind", protocol.INTERNAL)), str(final.get("message")), seconds, None, code)
        self.write(f"# {'done' if attempt.done else 'failed (' + attempt.kind + ')'} in {seconds:.1f} s, "
                   f"exit code {code}" + (f": {attempt.message}" if attempt.message else ""))
        return attempt

    def terminate(self) -> None:
        """Ask the worker to stop (SIGTERM: it discards its staged output and exits), and kill it if
        it is still there :data:`TERMINATE_GRACE_SECONDS` later; returns at once. A :meth:`run`
        that has not started its worker yet does not start it."""
        with self._lock:
            self._terminated = True
            process = self._process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        killer = threading.Timer(TERMINATE_GRACE_SECONDS, lambda: process.poll() is None and process.kill())
        killer.daemon = True
        killer.start()

    def _read_events(self, process: subprocess.Popen) -> protocol.Event | None:
        """Follow the worker's stdout to its end; returns its result or error event, if it sent one."""
        assert process.stdout is not None
        final, stage = None, None
        for line in process.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                event = None
            if not isinstance(event, dict):
                self.write(f"(not the protocol) {line}")
                continue
            kind = event.get("type")
            if kind == protocol.PROGRESS:
                if event["stage"] != stage:
                    stage = event["stage"]
                    self.write(f"stage: {stage}")
                self.on_stage(stage, int(event["step"]), int(event["total"]))
            elif kind == protocol.LOG:
                self.write(f"[{event.get('level')}] {event.get('message')}")
            elif kind in protocol.FINAL_EVENTS:
                final = event
        return final

    def _read_stderr(self, process: subprocess.Popen, last: list[str]) -> None:
        """Copy the worker's stderr into the log, keeping its last non-empty line in ``last``."""
        assert process.stderr is not None
        for line in process.stderr:
            if line.strip():
                self.write(line)
                last[:] = [line.strip()]
