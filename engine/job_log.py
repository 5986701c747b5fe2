"""The job's log: what libraries print while a job runs, kept out of the terminal.

COLMAP logs through glog from its own threads and Warp reports its CUDA driver probe, both
straight to file descriptor 2; other libraries print to stdout or stderr. Left on the terminal,
hundreds of such lines bury the progress bars. While a :class:`JobLog` is active, file descriptors
1 and 2 point into a pipe whose reader thread copies everything into the log, and, when ``echo``,
to the terminal as well (``--verbose``; the worker always, its stderr being its log). The front
end writes its progress bars and messages to :func:`terminal`, a handle on the stderr the process
started with. The log also records the engine's own log events and stage changes, so that the file
tells the whole story; :meth:`JobLog.copy_into` writes it into the output folder as ``log.txt``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, TextIO

from . import protocol
from .protocol import Event

LOG_FILE = "log.txt"
# Sent through the pipe by JobLog.copy_into; the reader takes it out and says it has come.
SYNC = b"\0meshlift-log-sync\0"
# Library output without a newline is held back at most this long (bytes) before it is written anyway.
PARTIAL_LINE_LIMIT = 65536
READER_JOIN_SECONDS = 2.0

_terminal: TextIO | None = None


def terminal() -> TextIO:
    """The terminal: a text stream on the stderr this process started with, which no
    :class:`JobLog` redirects (for progress bars and messages to the user)."""
    global _terminal  # noqa: PLW0603 -- one handle per process, made before any redirection
    if _terminal is None:
        sys.stderr.flush()
        _terminal = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")
    return _terminal


class JobLog:
    """A context in which everything written to file descriptors 1 and 2 goes into this log.

    Args:
        echo: also copy the library output to the terminal as it comes.
    """

    def __init__(self, echo: bool = False) -> None:
        self.echo = echo
        self._file: IO[bytes] = tempfile.TemporaryFile(prefix="meshlift-log-")  # noqa: SIM115 (closed on exit)
        self._lock = threading.Lock()
        self._saved: dict[int, int] = {}
        self._echo_fd = -1
        self._sync_fd = -1
        self._synced = threading.Event()
        self._reader: threading.Thread | None = None
        self._stage: str | None = None

    def __enter__(self) -> JobLog:
        terminal()  # the terminal handle must be a copy of the real stderr, made before redirecting it
        sys.stdout.flush()
        sys.stderr.flush()
        self._echo_fd = os.dup(2)
        read_end, write_end = os.pipe()
        for fd in (1, 2):
            self._saved[fd] = os.dup(fd)
            os.dup2(write_end, fd)
        self._sync_fd = write_end
        self._reader = threading.Thread(target=self._copy, args=(read_end,), name="meshlift-log", daemon=True)
        self._reader.start()
        return self

    def __exit__(self, *_: object) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, saved in self._saved.items():
            os.dup2(saved, fd)
            os.close(saved)
        self._saved.clear()
        os.close(self._sync_fd)  # the pipe's last write end: the reader sees its end
        assert self._reader is not None
        self._reader.join(READER_JOIN_SECONDS)
        if not self._reader.is_alive():  # else a child process still holds the pipe: leave both open
            os.close(self._echo_fd)
            self._file.close()

    def _copy(self, read_end: int) -> None:
        """Copy the pipe into the log (and the terminal when echoing) until every writer closed it,
        taking out the :data:`SYNC` marks of :meth:`copy_into` (a mark may arrive in two reads).
        Whole lines only: the end of a line still on its way waits for its newline (or a mark, or
        the end), so that an engine line :meth:`record` writes meanwhile never lands inside it.

        It never stops early: a writer to a full pipe nobody reads would block for good. A terminal
        that went away ends the echo, a log that cannot be written loses the chunk.
        """
        pending = b""
        with os.fdopen(read_end, "rb", buffering=0) as pipe:
            while chunk := pipe.read(65536):
                pending += chunk
                while (index := pending.find(SYNC)) >= 0:
                    self._keep(pending[:index])
                    pending = pending[index + len(SYNC):]
                    self._synced.set()
                held = next((k for k in range(min(len(SYNC) - 1, len(pending)), 0, -1)
                             if pending.endswith(SYNC[:k])), 0)  # the start of a mark still on its way
                ready = len(pending) - held
                if ready < PARTIAL_LINE_LIMIT:
                    ready = pending.rfind(b"\n", 0, ready) + 1  # a line's end still on its way waits for it
                self._keep(pending[:ready])
                pending = pending[ready:]
        self._keep(pending)

    def _keep(self, data: bytes) -> None:
        """Write library output into the log, and to the terminal when echoing."""
        if not data:
            return
        with self._lock, contextlib.suppress(OSError, ValueError):
            self._file.write(data)
        if self.echo:
            try:
                while data:
                    data = data[os.write(self._echo_fd, data):]
            except OSError:
                self.echo = False

    def record(self, event: Event) -> None:
        """Add an engine event to the log: every log message, and each stage as it starts."""
        if event["type"] == protocol.LOG:
            line = f"[{event['level']}] {event['message']}"
        elif event["type"] == protocol.PROGRESS and event["stage"] != self._stage:
            self._stage = event["stage"]
            line = f"stage: {self._stage}"
        else:
            return
        with self._lock:
            self._file.write(f"{time.strftime('%H:%M:%S')} meshlift {line}\n".encode())

    def copy_into(self, folder: Path) -> None:
        """Write the log so far into ``folder`` as :data:`LOG_FILE`, with everything libraries
        wrote before this call (a mark sent through the pipe says when the reader has it all)."""
        self._synced.clear()
        os.write(self._sync_fd, SYNC)
        self._synced.wait(READER_JOIN_SECONDS)
        with self._lock:
            self._file.flush()
            self._file.seek(0)
            with (folder / LOG_FILE).open("wb") as out:
                shutil.copyfileobj(self._file, out)
            self._file.seek(0, os.SEEK_END)
