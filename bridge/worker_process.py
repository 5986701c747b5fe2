"""Run one engine job in a worker subprocess and follow it without blocking.

``python -m engine worker JOB.json`` (``engine/protocol.py``, ``engine/README.md``) writes one JSON
object per line on stdout: ``progress``, ``log`` and ``preview`` events, then one ``result`` or
``error``. :class:`WorkerProcess` starts it with the extension root as working directory; a daemon
thread reads stdout and only pushes parsed lines into a :class:`queue.Queue` (another keeps the
tail of stderr for crash reports). The caller — a Blender timer, a modal operator or a blocking
loop — calls :meth:`WorkerProcess.poll` whenever it likes; nothing here touches Blender.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import queue
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine import protocol
from . import EXTENSION_ROOT
from .errors import UserError

STDERR_LINES = 40


@dataclass
class Progress:
    """The latest ``progress`` event, for a progress bar."""

    stage: str = "starting the engine"
    step: int = 0
    total: int = 0
    eta: float | None = None

    @property
    def fraction(self) -> float:
        return min(max(self.step / self.total, 0.0), 1.0) if self.total > 0 else 0.0

    def describe(self) -> str:
        """``"carving 12/64, about 8 s left"``."""
        text = self.stage
        if self.total > 1:
            text += f" {self.step}/{self.total}"
        if self.eta is not None and self.eta >= 1:
            text += f", {format_seconds(self.eta)} left"
        return text


@dataclass
class Outcome:
    """How a job ended.

    Attributes:
        status: ``done``, ``failed`` or ``cancelled``.
        kind: ``result``, or the worker's error kind (``input``, ``cancelled``, ``out_of_memory``,
            ``internal``), or ``crashed`` when the process ended without saying why.
        message: plain words for the user.
        result: the worker's ``result`` event (``files``, ``report``) when ``status == "done"``.
        exit_code: the process exit code (negative: killed by that signal), when known.
    """

    status: str
    kind: str
    message: str
    result: dict[str, Any] | None = None
    exit_code: int | None = None


@dataclass
class WorkerProcess:
    """One ``python -m engine worker`` run.

    Args:
        python: the interpreter that runs the engine.
        job: the job object (``engine/README.md``); written to ``job_file``.
        job_file: where to write the job.
        cwd: the folder that holds ``engine/`` (the extension root).
    """

    python: str
    job: dict[str, Any]
    job_file: Path
    cwd: Path = EXTENSION_ROOT
    progress: Progress = field(default_factory=Progress)
    logs: list[str] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)
    outcome: Outcome | None = None
    preview: dict[str, Any] | None = None
    started_at: float = 0.0
    ended_at: float | None = None

    def __post_init__(self) -> None:
        self._process: subprocess.Popen | None = None
        self._events: queue.Queue = queue.Queue()
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        self._final: dict[str, Any] | None = None
        self._eof = False
        self._cancelled = False
        self._threads: list[threading.Thread] = []

    # -- lifetime ---------------------------------------------------------------------------
    def start(self) -> WorkerProcess:
        """Write the job file and start the worker; raises :class:`UserError`."""
        self.job_file = Path(self.job_file)
        self.job_file.parent.mkdir(parents=True, exist_ok=True)
        self.job_file.write_text(json.dumps(self.job, indent=2))
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        try:
            self._process = subprocess.Popen(
                [self.python, "-m", "engine", "worker", str(self.job_file)], cwd=str(self.cwd),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                encoding="utf-8", errors="replace", bufsize=1, env=env,
                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
            )
        except OSError as error:
            raise UserError(f"Cannot start the engine with {self.python}: {error.strerror or error}") from error
        self.started_at = time.monotonic()
        self._threads = [
            threading.Thread(target=self._read_stdout, name="meshlift-worker-stdout", daemon=True),
            threading.Thread(target=self._read_stderr, name="meshlift-worker-stderr", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self.outcome is None

    @property
    def elapsed(self) -> float:
        if not self.started_at:
            return 0.0
        return (self.ended_at or time.monotonic()) - self.started_at

    @property
    def stderr_tail(self) -> list[str]:
        return list(self._stderr)

    # -- reading (threads: no Blender, no state but the queue and the deque) -------------------
    def _read_stdout(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for raw in self._process.stdout:
            line = raw.strip()
            if not line:
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                event = None
            if isinstance(event, dict) and "type" in event:
                self._events.put(event)
            else:  # not the protocol: keep it as a log line rather than fail
                self._events.put(protocol.log_event(line, protocol.WARNING))
        self._events.put(None)  # end of stream

    def _read_stderr(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        for raw in self._process.stderr:
            if raw.strip():
                self._stderr.append(raw.rstrip())

    # -- polling (the caller's thread) ------------------------------------------------------
    def poll(self) -> list[dict[str, Any]]:
        """Take the events that arrived since the last call (never blocks); sets :attr:`outcome`
        once the worker has ended. Returns the new events."""
        new: list[dict[str, Any]] = []
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                break
            if event is None:
                self._eof = True
                continue
            new.append(event)
            self._apply(event)
        if self.outcome is None and self._process is not None and self._eof:
            code = self._process.poll()
            if code is None:  # stdout closed just before the exit: look again at the next poll
                return new
            self._finish(code)
        return new

    def _apply(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == protocol.PROGRESS:
            if not self.stages or self.stages[-1] != event.get("stage"):
                self.stages.append(str(event.get("stage", "")))
            self.progress = Progress(str(event.get("stage", "")), int(event.get("step", 0)),
                                     int(event.get("total", 0)), event.get("eta"))
        elif kind == protocol.LOG:
            self.logs.append(str(event.get("message", "")))
        elif kind == protocol.PREVIEW:
            if self.preview is not None:  # superseded before anyone took it: its file is ours to delete
                Path(str(self.preview.get("path", ""))).unlink(missing_ok=True)
            self.preview = event
        elif kind in protocol.FINAL_EVENTS:
            self._final = event

    def _finish(self, code: int) -> None:
        for thread in self._threads:  # the process has ended: what is left in the pipes is read at once
            thread.join(timeout=0.5)
        self.ended_at = time.monotonic()
        final = self._final
        if self._cancelled or (final is not None and final.get("kind") == protocol.CANCELLED):
            self.outcome = Outcome("cancelled", "cancelled", "Cancelled; the scene was not changed.", None, code)
        elif final is not None and final["type"] == protocol.RESULT and code == protocol.EXIT_OK:
            self.outcome = Outcome("done", "result", "Done.", final, code)
        elif final is not None and final["type"] == protocol.ERROR:
            self.outcome = Outcome("failed", str(final.get("kind", "internal")),
                                   str(final.get("message", "The engine failed.")), None, code)
        else:
            self.outcome = Outcome("failed", "crashed", self._crash_message(code), None, code)
        self._close_pipes()

    def _crash_message(self, code: int) -> str:
        if code < 0:
            try:
                how = f"was killed by signal {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        else:
            how = f"exited with code {code}"
        message = f"The engine process {how} before it finished"
        last = next((line for line in reversed(self._stderr) if line.strip()), None)
        if last:
            message += f". Its last message: {last.strip()[:300]}"
        return message + "."

    def _close_pipes(self) -> None:
        if self._process is None:
            return
        for stream in (self._process.stdout, self._process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def take_preview(self) -> dict[str, Any] | None:
        """The latest ``preview`` event not taken yet (``path``, ``format``, ``step``), or ``None``;
        the taker owns its file (older ones that nobody took are already deleted)."""
        event, self.preview = self.preview, None
        return event

    # -- control ----------------------------------------------------------------------------
    def cancel(self, timeout: float = 5.0) -> None:
        """Stop the worker: SIGTERM (the engine stops within a second and deletes its partial
        output), then SIGKILL if it is still alive after ``timeout`` seconds. Blocks until the
        process is gone; :attr:`outcome` is ``cancelled`` afterwards (unless it had already ended)."""
        if self._process is None or self.outcome is not None:
            return
        self._cancelled = True
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=timeout)
        self.poll()
        if self.outcome is None:  # stdout still open (a grandchild holds it): do not wait for it
            self._finish(self._process.returncode)

    def wait(self, timeout: float | None = None, interval: float = 0.1, on_events: Any = None) -> Outcome | None:
        """Poll until the job ends (or ``timeout`` seconds pass); ``on_events(worker, events)`` is
        called after each poll that brought something. Returns :attr:`outcome`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.outcome is None:
            events = self.poll()
            if events and on_events is not None:
                on_events(self, events)
            if self.outcome is not None or (deadline is not None and time.monotonic() > deadline):
                break
            time.sleep(interval)
        return self.outcome


def format_seconds(seconds: float) -> str:
    """``5 s``, ``2 min 05 s``, ``1 h 02 min``."""
    seconds = max(float(seconds), 0.0)
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
