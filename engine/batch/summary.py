"""The batch's summary: one record per job, as ``summary.json``, ``summary.csv`` and a terminal table."""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .attempt import Attempt

DONE, SKIPPED, FAILED = "done", "skipped", "failed"
NOT_STARTED = "Not started: the batch was stopped first; run it again to do this job."
STOPPED = "Stopped: the batch was interrupted while this job ran; run it again to do this job."
ERROR_WIDTH = 90  # characters of an error shown in the terminal table (the files keep it whole)


@dataclass
class JobRecord:
    """How one job of the batch went.

    Attributes:
        name: the job's name (its folder under the root).
        status: ``done`` (run now), ``skipped`` (its output was already there) or ``failed``.
        seconds: wall-clock seconds its worker(s) ran, all tries together (``None`` when skipped).
        faces: the mesh's face count (done or skipped).
        metrics: the scores against ground truth, with ``--evaluate`` (else ``None``).
        error: the last try's sentence for a failed job (else ``None``).
        tries: how many times it ran now (not in the summary files: the log has each try).
    """

    name: str
    status: str
    seconds: float | None = None
    faces: int | None = None
    metrics: dict[str, float] | None = None
    error: str | None = None
    tries: int = 0

    @staticmethod
    def finished(name: str, report: dict[str, Any], status: str, seconds: float | None = None,
                 tries: int = 0) -> JobRecord:
        """A job with a result: its ``report.json`` content gives faces and metrics."""
        return JobRecord(name, status, seconds, int(report["mesh"]["faces"]), report.get("metrics"), None, tries)

    @staticmethod
    def from_tries(name: str, tries: list[Attempt]) -> JobRecord:
        """The record of a job that ran now: done if its last try succeeded, else failed with its sentence."""
        seconds = round(sum(attempt.seconds for attempt in tries), 3)
        last = tries[-1]
        if last.done and last.report is not None:
            return JobRecord.finished(name, last.report, DONE, seconds, len(tries))
        return JobRecord(name, FAILED, seconds, error=last.message, tries=len(tries))

    def row(self) -> dict[str, Any]:
        """The summary's fields (``summary.json``)."""
        data = asdict(self)
        del data["tries"]
        return data


def write_summary(root: Path, records: list[JobRecord]) -> None:
    """``root/summary.json`` (``{"jobs": [rows]}``) and ``root/summary.csv`` (one column per metric),
    each replaced in one rename."""
    rows = [record.row() for record in records]
    write_atomically(root / "summary.json", json.dumps({"jobs": rows}, indent=2) + "\n")
    metric_names = sorted({key for row in rows for key in (row["metrics"] or {})})
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["name", "status", "seconds", "faces", *metric_names, "error"])
    for row in rows:
        metrics = row["metrics"] or {}
        writer.writerow([row["name"], row["status"], blank(row["seconds"]), blank(row["faces"]),
                         *(blank(metrics.get(key)) for key in metric_names), blank(row["error"])])
    write_atomically(root / "summary.csv", text.getvalue())


def write_atomically(path: Path, text: str) -> None:
    staged = path.with_name(f".{path.name}.{os.getpid()}")
    staged.write_text(text)
    os.replace(staged, path)


def blank(value: Any) -> Any:
    return "" if value is None else value


def format_table(records: list[JobRecord]) -> str:
    """The records as an aligned text table with a closing count line, for the terminal."""
    metric_names = sorted({key for record in records for key in (record.metrics or {})})
    header = ["name", "status", "seconds", "faces", *metric_names, "error"]
    lines = [header]
    for record in records:
        metrics = record.metrics or {}
        error = record.error or ""
        lines.append([
            record.name, record.status, "" if record.seconds is None else f"{record.seconds:.1f}",
            "" if record.faces is None else str(record.faces),
            *("" if metrics.get(key) is None else f"{metrics[key]:.4f}" for key in metric_names),
            error if len(error) <= ERROR_WIDTH else error[:ERROR_WIDTH - 1] + "…",
        ])
    widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
    numeric = set(range(2, len(header) - 1))
    text = ["  ".join(cell.rjust(width) if column in numeric else cell.ljust(width)
                      for column, (cell, width) in enumerate(zip(line, widths, strict=True))).rstrip()
            for line in lines]
    counts = {status: sum(record.status == status for record in records) for status in (DONE, SKIPPED, FAILED)}
    text.append(f"{len(records)} jobs: {counts[DONE]} done, {counts[SKIPPED]} skipped, {counts[FAILED]} failed")
    return "\n".join(text)
