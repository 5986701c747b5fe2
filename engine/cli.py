"""``python -m engine``: the command line.

Commands: ``reconstruct`` (posed images, or a folder of plain photos -> textured mesh folder),
``texture`` (a mesh the user has, textured from posed images),
``relief`` (one image and its depth or normal map -> a textured relief mesh),
``batch`` (many such jobs, resumable, here or on a Ray cluster: :mod:`engine.batch`), ``poses``
(photos -> cameras by structure-from-motion), ``evaluate`` (score a mesh against a dataset's
ground truth), ``demo`` (generate a small dataset and reconstruct it),
``worker`` (the add-on's JSON-lines process), ``methods`` and ``check`` (what this install offers).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import protocol
from .batch.command import add_batch_arguments, command_batch
from .errors import InputError
from .job_log import terminal
from .output import REPLACE_WITH_FLAG
from .protocol import (
    DEFAULT_METHOD,
    DEFAULT_PRESET,
    EXIT_BAD_INPUT,
    EXIT_CANCELLED,
    EXIT_OK,
    PRESETS,
    Event,
    ReconstructJob,
    ReliefJob,
    TextureJob,
)

# No rate: steps differ in cost, so "it/s" would mislead; the remaining time comes from the engine.
BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n}/{total} [{elapsed}<{remaining}]"


class TerminalProgress:
    """Shows progress events as one tqdm bar per stage on the terminal (stderr), and log events as
    lines; library output meanwhile goes to the job's log (:mod:`engine.job_log`)."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._stage: str | None = None
        self._stream = terminal()

    def __call__(self, event: Event) -> None:
        from tqdm import tqdm  # noqa: PLC0415 (only the terminal front end needs it)

        if event["type"] == protocol.PROGRESS:
            if event["stage"] != self._stage:
                self.close()
                self._stage = event["stage"]
                self._bar = tqdm(total=event["total"], desc=event["stage"], file=self._stream, leave=True,
                                 dynamic_ncols=True, bar_format=BAR_FORMAT)
            self._bar.total = event["total"]
            self._bar.n = event["step"]
            self._bar.refresh()
        elif event["type"] == protocol.LOG:
            tqdm.write(f"[{event['level']}] {event['message']}", file=self._stream)
        elif event["type"] in protocol.FINAL_EVENTS:
            self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
            self._stage = None


def parse_options(pairs: list[str]) -> dict[str, str]:
    """``["resolution=256", ...]`` -> ``{"resolution": "256"}`` (values are typed by the preset)."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(f"Options are KEY=VALUE, got '{pair}'")
        options[key.strip()] = value.strip()
    return options


def print_result(event: Event) -> None:
    report = event["report"]
    print(f"Wrote {report['mesh']['faces']} faces, texture {report['texture']['size'][0]}px "
          f"({report['texture']['source']}) in {report['timings']['total']:.1f} s:")
    for kind, path in event["files"].items():
        print(f"  {kind:11s} {path}")
    for key, value in report.get("metrics", {}).items():
        print(f"  {key:22s} {value:.4f}")


def run_in_terminal(run: Callable[[Callable[[Event], None]], int], show_result: Callable[[Event], None]) -> int:
    """``run(emit)`` (a job's runner) with its progress on the terminal, its result shown by
    ``show_result`` or its error as one line as soon as it comes (a job stuck in a native call at
    a cancel ends the process right after); returns the runner's exit code."""
    terminal_progress = TerminalProgress()

    def emit(event: Event) -> None:
        terminal_progress(event)
        if event["type"] == protocol.RESULT:
            show_result(event)
        elif event["type"] == protocol.ERROR:
            print(f"meshlift: {event['message']}", file=sys.stderr)

    return run(emit)


def command_reconstruct(args: argparse.Namespace) -> int:
    from .jobs import run_job  # noqa: PLC0415 (keeps `methods`/`check` fast)

    job = ReconstructJob(
        dataset=args.dataset, out=args.out, method=args.method, preset=args.preset, device=args.device,
        options=parse_options(args.option), name=args.name, force=args.force, evaluate=args.evaluate,
        image_scale=args.image_scale, max_views=args.max_views,
    )
    return run_in_terminal(
        lambda emit: run_job(job, emit, replace_hint=REPLACE_WITH_FLAG, echo_library_output=args.verbose),
        lambda event: print(json.dumps(event)) if args.json else print_result(event))


def command_texture(args: argparse.Namespace) -> int:
    from .jobs import run_job  # noqa: PLC0415

    job = TextureJob(
        dataset=args.dataset, out=args.out, mesh=args.mesh, method=args.method, preset=args.preset,
        device=args.device, options=parse_options(args.option), name=args.name, force=args.force,
        evaluate=args.evaluate, image_scale=args.image_scale, max_views=args.max_views,
    )
    return run_in_terminal(
        lambda emit: run_job(job, emit, replace_hint=REPLACE_WITH_FLAG, echo_library_output=args.verbose),
        lambda event: print(json.dumps(event)) if args.json else print_result(event))


def command_relief(args: argparse.Namespace) -> int:
    from .jobs import run_job  # noqa: PLC0415

    job = ReliefJob(image=args.image, out=args.out, depth=args.depth, normals=args.normals,
                    options=parse_options(args.option), name=args.name, force=args.force)
    return run_in_terminal(
        lambda emit: run_job(job, emit, replace_hint=REPLACE_WITH_FLAG, echo_library_output=False),
        lambda event: print(json.dumps(event)) if args.json else print_result(event))


def command_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_mesh_file  # noqa: PLC0415
    from .job_log import JobLog  # noqa: PLC0415

    with JobLog(echo=args.verbose):  # Warp's driver probe and the like stay off the terminal
        metrics = evaluate_mesh_file(args.mesh, args.dataset, samples=args.samples, relight=not args.no_relight,
                                     warn=lambda message: print(f"[warning] {message}", file=terminal()))
    if args.json:
        print(json.dumps(metrics))
    else:
        for key, value in metrics.items():
            print(f"{key:22s} {value:.4f}")
    return 0


def command_demo(args: argparse.Namespace) -> int:
    from .demo import make_demo_dataset  # noqa: PLC0415

    out = Path(args.out)
    dataset = out / "dataset"
    if not dataset.exists():
        from .job_log import JobLog  # noqa: PLC0415

        print(f"Rendering the demo dataset into {dataset} ...", file=sys.stderr)
        with JobLog(echo=args.verbose):
            make_demo_dataset(dataset)
    args.dataset, args.out = str(dataset), str(out / "result")
    args.force, args.evaluate, args.name = True, True, "demo"
    return command_reconstruct(args)


def command_worker(args: argparse.Namespace) -> int:
    from .worker import main  # noqa: PLC0415

    return main(args.job)


def command_poses(args: argparse.Namespace) -> int:
    from .jobs import run_task  # noqa: PLC0415
    from .sfm.poses import poses_task  # noqa: PLC0415

    def show_result(event: Event) -> None:
        summary = event["report"]
        print(f"{summary['registered']} of {summary['images']} images registered; masks: {summary['masks']}; "
              f"wrote {event['files']['transforms']}")

    inputs = [path for path in (args.images, args.masks, args.sparse) if path not in (None, "auto", "none")]
    return run_in_terminal(
        lambda emit: run_task(poses_task(args.images, masks=args.masks, sparse=args.sparse), emit, out=args.out,
                              force=args.force, inputs=inputs, replace_hint=REPLACE_WITH_FLAG,
                              echo_library_output=args.verbose),
        show_result)


def command_methods(args: argparse.Namespace) -> int:
    from .method_listing import format_methods  # noqa: PLC0415
    from .methods import describe_methods  # noqa: PLC0415

    methods = describe_methods()
    print(json.dumps(methods) if args.json else format_methods(methods))
    return 0


def command_check(_args: argparse.Namespace) -> int:
    from .devices import describe_environment  # noqa: PLC0415

    print(json.dumps(describe_environment()))
    return 0


def add_job_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", default=DEFAULT_METHOD,
                        help=f"reconstruction method (see `methods`; default {DEFAULT_METHOD})")
    parser.add_argument("--preset", default=DEFAULT_PRESET, choices=PRESETS, help="speed/quality trade-off")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    parser.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                        help="override a preset option, e.g. -o resolution=256 -o faces=50000")
    parser.add_argument("--image-scale", type=float, default=1.0, help="resize the images by this factor")
    parser.add_argument("--max-views", type=int, default=None, help="use at most this many views")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    add_verbose_argument(parser)


def add_verbose_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="show the libraries' own log lines (COLMAP, Warp) on the terminal too; "
                             "a finished output keeps them in log.txt either way")


def add_output_job_arguments(parser: argparse.ArgumentParser, default_name: str) -> None:
    """The dataset, the output folder and the job's settings of a command that writes an asset."""
    parser.add_argument("dataset", help="folder with transforms_train.json or transforms.json, or a folder of photos")
    parser.add_argument("--out", required=True, help="output folder (must not exist unless --force)")
    parser.add_argument("--name", default=None, help=f"base name of the output files (default: {default_name})")
    parser.add_argument("--force", action="store_true", help="replace an existing output folder")
    parser.add_argument("--evaluate", action="store_true", help="score against gt_mesh.ply and test views")
    add_job_arguments(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine", description="Meshlift reconstruction engine")
    commands = parser.add_subparsers(dest="command", required=True)

    rec = commands.add_parser("reconstruct", help="posed images -> textured mesh (OBJ+MTL+PNG, GLB)")
    add_output_job_arguments(rec, "dataset name")
    rec.set_defaults(run=command_reconstruct)

    batch = commands.add_parser("batch", help="many jobs (a folder of datasets or a JSON Lines file), resumable")
    add_batch_arguments(batch)
    add_job_arguments(batch)
    batch.set_defaults(run=command_batch)

    rel = commands.add_parser("relief", help="one image + its depth or normal map -> a textured relief mesh")
    rel.add_argument("image", help="the image (its colours are the texture; transparent pixels are left out)")
    source = rel.add_mutually_exclusive_group(required=True)
    source.add_argument("--depth", help="its depth map (.png 16-bit, .exr or .npy; nearer is higher)")
    source.add_argument("--normals", help="its camera-space normal map (.png, .exr or .npy), integrated into heights")
    rel.add_argument("--out", required=True, help="output folder (must not exist unless --force)")
    rel.add_argument("--name", default=None, help="base name of the output files (default: the image's name)")
    rel.add_argument("--force", action="store_true", help="replace an existing output folder")
    rel.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                     help="width, scale, resolution, field_of_view, normal_y, texture_size (see engine/relief.py)")
    rel.add_argument("--json", action="store_true", help="print the result as one JSON object")
    rel.set_defaults(run=command_relief)

    tex = commands.add_parser("texture", help="texture a mesh you have from posed images (baked or PBR)")
    tex.add_argument("mesh", help="OBJ, GLB/glTF or PLY in the dataset's frame; its own UVs are kept when it has them")
    add_output_job_arguments(tex, "the mesh's name")
    tex.set_defaults(run=command_texture)

    ev = commands.add_parser("evaluate", help="Chamfer, NC, F-score, test, albedo and relit PSNR of a mesh")
    ev.add_argument("mesh", help="OBJ or GLB as written by reconstruct (textured for PSNR)")
    ev.add_argument("--dataset", required=True, help="dataset folder with gt_mesh.ply and/or test views")
    ev.add_argument("--samples", type=int, default=200_000, help="surface samples per mesh")
    ev.add_argument("--no-relight", action="store_true",
                    help="skip the relit PSNR (a Cycles render through bpy, on datasets with relit_light.json)")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    add_verbose_argument(ev)
    ev.set_defaults(run=command_evaluate)

    demo = commands.add_parser("demo", help="render a small built-in dataset and reconstruct it")
    demo.add_argument("--out", default="demo-output", help="folder for the dataset and the result")
    add_job_arguments(demo)
    demo.set_defaults(run=command_demo)

    worker = commands.add_parser("worker", help="run JOB.json, speaking JSON lines on stdout")
    worker.add_argument("job", help="path of the job file")
    worker.set_defaults(run=command_worker)

    poses = commands.add_parser("poses", help="photos without poses -> transforms.json (structure-from-motion)")
    poses.add_argument("images", help="folder of JPEG/PNG photos of one object (or a COLMAP project folder)")
    poses.add_argument("--out", required=True, help="folder for transforms.json, sparse/0 and masks/ "
                       "(must not exist unless --force)")
    poses.add_argument("--force", action="store_true", help="replace an existing output folder")
    poses.add_argument("--masks", default="auto", help="auto (estimate), none, or a folder of masks (white = object)")
    poses.add_argument("--sparse", default=None, help="an existing COLMAP model folder for these images (skips SfM)")
    add_verbose_argument(poses)
    poses.set_defaults(run=command_poses)

    methods = commands.add_parser("methods", help="list the methods, their presets and every option with its doc")
    methods.add_argument("--json", action="store_true", help="print one JSON object (for front ends)")
    methods.set_defaults(run=command_methods)

    check = commands.add_parser("check", help="print torch version and CUDA availability as JSON")
    check.set_defaults(run=command_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except InputError as error:
        print(f"meshlift: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:  # commands without an output folder (evaluate, demo's rendering) stop here
        print("meshlift: Cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    except BrokenPipeError:  # `methods | head`: the reader has gone, and so has any use for the rest
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
