"""A batch's jobs: from a folder of datasets or a JSON Lines file, each with its folder under the root."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..data.transforms import find_transforms
from ..errors import InputError
from ..pipeline import output_name
from ..protocol import parse_job
from .job import SUMMARY_FILES, BatchJob


def read_jobs(source: str | Path, root: str | Path, defaults: dict[str, Any]) -> list[BatchJob]:
    """The jobs of ``source``, each writing into ``root / name``.

    ``source`` is a folder whose sub-folders are one dataset each (hidden ones and ``root`` itself
    are left out), or a JSON Lines file: one JSON object per line with the fields of a worker's
    job file (``engine/README.md``) except ``out``; a relative ``dataset`` is relative to the
    file's folder. ``defaults`` (``ReconstructJob`` fields such as ``method``, ``preset``,
    ``options``) fill what a line leaves out; a line's ``options`` override the defaults' one by one.

    Raises:
        InputError: a missing source, a line that is not a valid job, a source with no job, or two
            jobs with the same name.
    """
    source, root = Path(source).absolute(), Path(root).absolute()
    if source == root:
        raise InputError("The output root must not be the source folder")
    if source.is_dir():
        if find_transforms(source, "train") is not None:
            raise InputError(f"{source} is one dataset (it has a transforms json): give the folder that holds "
                             "the datasets, or use `reconstruct`")
        entries = [({"dataset": str(path)}, path.name) for path in sorted(source.iterdir())
                   if path.is_dir() and not path.name.startswith(".") and path != root]
    elif source.is_file():
        entries = list(read_lines(source))
    else:
        raise InputError(f"The batch source {source} does not exist")
    if not entries:
        raise InputError(f"{source} holds no job")
    jobs = [batch_job(entry, where, root, defaults) for entry, where in entries]
    names: dict[str, str] = {}
    for item, (_, where) in zip(jobs, entries, strict=True):
        if item.name in SUMMARY_FILES:
            raise InputError(f"{where}: the job name '{item.name}' is the summary's file name; give it another 'name'")
        if item.name in names:
            raise InputError(f"{names[item.name]} and {where} are both named '{item.name}'; give them distinct 'name's")
        names[item.name] = where
    return jobs


def read_lines(path: Path) -> list[tuple[dict[str, Any], str]]:
    """The job objects of a JSON Lines file with where each came from (``FILE line N``), relative
    datasets made absolute; blank lines are skipped."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"Cannot read the job list {path}: {error}") from error
    entries = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path.name} line {number}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(f"{where} is not valid JSON: {error}") from error
        if not isinstance(data, dict):
            raise InputError(f"{where} must be a JSON object (a job), got {type(data).__name__}")
        if "out" in data:
            raise InputError(f"{where}: a batch job has no 'out' (it writes into the output root); "
                             "use 'name' to choose its folder")
        if isinstance(data.get("dataset"), str):
            data["dataset"] = str((path.parent / data["dataset"]).absolute())
        entries.append((data, where))
    return entries


def batch_job(entry: dict[str, Any], where: str, root: Path, defaults: dict[str, Any]) -> BatchJob:
    """``entry`` over ``defaults`` as a checked job writing into ``root / its name``."""
    data = {**defaults, **entry}
    if isinstance(entry.get("options"), dict):
        data["options"] = {**defaults.get("options", {}), **entry["options"]}
    try:
        job = parse_job({**data, "out": ""})
    except InputError as error:
        raise InputError(f"{where}: {error}") from error
    name = output_name(job)
    return BatchJob(name, replace(job, out=str(root / name), name=name))
