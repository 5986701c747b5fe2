"""``python -m engine batch SOURCE --out ROOT``: the command line of a batch (torch-free until it runs)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..protocol import EXIT_CANCELLED, EXIT_FAILED, EXIT_OK


def add_batch_arguments(parser: argparse.ArgumentParser) -> None:
    """The batch's own arguments (the job defaults come from the command line's job arguments)."""
    parser.add_argument("source", help="a folder of datasets (one job each) or a JSON Lines file of jobs")
    parser.add_argument("--out", required=True, help="the output root: one folder per job, logs and the summary")
    parser.add_argument("--evaluate", action="store_true", help="score each result against its ground truth")
    parser.add_argument("--retries", type=int, default=0, metavar="N",
                        help="try a job that crashed, ran out of memory or failed internally up to N more times")
    parser.add_argument("--jobs", type=int, default=None, metavar="N",
                        help="CPU jobs at once on this machine (default: the cores / --threads)")
    parser.add_argument("--threads", type=int, default=None, metavar="T",
                        help="torch threads per CPU job (default: a quarter of the cores, 1 to 4)")
    parser.add_argument("--ray", default=None, metavar="auto|ADDRESS",
                        help="submit each job as a task to this Ray cluster (needs meshlift[cluster])")
    parser.add_argument("--ship-files", action="store_true",
                        help="with --ray: move datasets and results through Ray (nodes share no file system)")


def job_defaults(args: argparse.Namespace) -> dict[str, Any]:
    """The job fields the command line sets, for the lines of the source that leave them out."""
    from ..cli import parse_options  # noqa: PLC0415 (cli imports this module)

    return {"method": args.method, "preset": args.preset, "device": args.device, "options": parse_options(args.option),
            "evaluate": args.evaluate, "image_scale": args.image_scale, "max_views": args.max_views}


def check_defaults(defaults: dict[str, Any]) -> None:
    """Refuse a batch whose command-line method, preset or options are wrong (every job would fail)."""
    from ..methods import get_method, resolve_options  # noqa: PLC0415

    resolve_options(get_method(defaults["method"]), defaults["preset"], defaults["options"])


def command_batch(args: argparse.Namespace) -> int:
    """Run the batch; exit 0 when every job is done or skipped, 1 when one failed, 130 when
    interrupted (2 for bad arguments or a bad source, through :class:`~engine.errors.InputError`)."""
    from ..errors import InputError  # noqa: PLC0415
    from .runner import BatchSettings, run_batch  # noqa: PLC0415
    from .source import read_jobs  # noqa: PLC0415
    from .summary import FAILED, format_table  # noqa: PLC0415

    if args.retries < 0 or (args.jobs is not None and args.jobs < 1) or (args.threads is not None and args.threads < 1):
        raise InputError("--retries must be 0 or more, --jobs and --threads 1 or more")
    if args.ship_files and args.ray is None:
        raise InputError("--ship-files moves files through Ray: it needs --ray")
    defaults = job_defaults(args)
    try:
        check_defaults(defaults)
        jobs = read_jobs(args.source, args.out, defaults)
        settings = BatchSettings(args.retries, args.jobs, args.threads, args.ray, args.ship_files)
        result = run_batch(jobs, args.out, settings)
    except KeyboardInterrupt:  # before any job started (the runners handle it once they run)
        print("meshlift: interrupted before the batch started", file=sys.stderr)
        return EXIT_CANCELLED
    if args.json:
        print(json.dumps({"jobs": [record.row() for record in result.records]}))
    else:
        print(format_table(result.records))
    if result.interrupted:
        print("meshlift: the batch was interrupted; run the same command again to finish it", file=sys.stderr)
        return EXIT_CANCELLED
    return EXIT_FAILED if any(record.status == FAILED for record in result.records) else EXIT_OK
