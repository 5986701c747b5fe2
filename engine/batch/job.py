"""One job of a batch, and where its files go under the output root."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..protocol import ReconstructJob

LOGS = "_logs"
SUMMARY_FILES = ("summary.json", "summary.csv")


@dataclass(frozen=True)
class BatchJob:
    """One job of a batch.

    Attributes:
        name: the job's folder under the root (and its name in the summary and the logs).
        job: what its worker runs; ``out`` is ``ROOT/name``, ``dataset`` an absolute path.
    """

    name: str
    job: ReconstructJob

    @property
    def out(self) -> Path:
        return Path(self.job.out)

    @property
    def log(self) -> Path:
        """``ROOT/_logs/NAME.log``."""
        return self.out.parent / LOGS / f"{self.name}.log"

    @property
    def job_file(self) -> Path:
        """``ROOT/_logs/NAME.job.json``, the file its worker reads."""
        return self.out.parent / LOGS / f"{self.name}.job.json"

    def finished_report(self) -> dict[str, Any] | None:
        """The ``report.json`` of an earlier run's finished output (so the job is skipped), or
        ``None`` when it must run: no output yet, or the job asks for ``force``."""
        report = self.out / "report.json"
        if self.job.force or not report.is_file():
            return None
        try:
            return json.loads(report.read_text())
        except (OSError, json.JSONDecodeError):
            return None
