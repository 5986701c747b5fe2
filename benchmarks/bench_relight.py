"""Relightable materials (issue 21) on bunny-studio: relit PSNR, albedo PSNR, Chamfer-L1 and time per
method and material mode, and a picture of the assets under the capture light and under the new one.

    .venv/bin/python benchmarks/bench_relight.py [--methods dmtet neus] [--materials baked pbr]
        [--preset balanced] [--device cpu] [--dataset ../shared/datasets/bunny-studio] [-o KEY=VALUE ...]
        [--rescore] [--picture docs/images/materials-bunny-studio.png]

Each run is ``python -m engine reconstruct --evaluate`` in-process (Chamfer-L1 against gt_mesh.ply,
test PSNR, the albedo PSNR against test_albedo, and for PBR the lit PSNR of the engine's own shading),
then the relit PSNR of its GLB: Blender's glTF importer, the light of relit_light.json, Cycles at the
test cameras (``engine.evaluate.relit_psnr``; on a dataset without a relighting test, such as the
uniformly lit shared objects, only the other scores). "time s" is the job without its evaluation. With
``--rescore`` the assets already in benchmarks/out/relight/<dataset>/<method>-<material>/ (any folder
``reconstruct`` wrote) are scored again without rebuilding.
The picture: for each method and mode, three test views under the capture light and under the new
light (Cycles), beside the truth (test/ and test_relit/).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from engine.cli import parse_options
from engine.data.transforms import load_split
from engine.evaluate import can_relight, relit_psnr
from engine.pipeline import reconstruct
from engine.progress import Progress
from engine.protocol import ReconstructJob
from engine.relight import relight_command

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT.parent / "shared" / "datasets" / "bunny-studio"
OUT = ROOT / "benchmarks" / "out" / "relight"
# The light bunny-studio's train/ and test/ images were rendered under (../shared/datasets/README.md).
CAPTURE_LIGHT = ROOT / "benchmarks" / "bunny_studio_capture_light.json"
PICTURE_VIEWS = (0, 4, 7)
PICTURE_SAMPLES = 16  # Cycles samples per pixel of the picture (denoised; the scores use 64)


def run(method: str, material: str, args: argparse.Namespace) -> dict:
    """Build (unless ``--rescore``) and score one asset; returns its report with the relit score."""
    tag = f"{method}-{material}"
    folder = OUT / args.dataset.name / tag
    if not args.rescore:
        job = ReconstructJob(dataset=str(args.dataset), out=str(folder), method=method, preset=args.preset,
                             device=args.device, options={**parse_options(args.option), "material": material},
                             force=True, evaluate=True, name="bunny")
        reconstruct(job, Progress(lambda _event: None))
    report = json.loads((folder / "report.json").read_text())
    if can_relight(args.dataset):
        report["metrics"].update(relit_psnr(next(folder.glob("*.glb")), args.dataset))
    (OUT / args.dataset.name / f"{tag}.json").write_text(json.dumps(report, indent=2))
    return report


def row(method: str, material: str, report: dict) -> str:
    metrics = report["metrics"]
    seconds = report["timings"]["total"] - report["timings"].get("evaluate", 0.0)
    def score(key: str) -> str:
        return f"{metrics[key]:.2f}" if key in metrics else "–"

    return (f"| {method} | {material} | {score('relit_psnr')} | {score('albedo_psnr')} | {score('psnr')} | "
            f"{score('psnr_lit')} | {metrics['chamfer_l1']:.5f} | {seconds:.0f} |")


def cycles_views(asset: Path, light: Path, split: str, folder: Path) -> list[np.ndarray]:
    """The picture's test views of ``asset`` under ``light``, rendered by Cycles, over white."""
    command = relight_command(asset, DATASET, folder, split=split, light=light, samples=PICTURE_SAMPLES)
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
    names = load_split(DATASET, split).names
    views = []
    for index in PICTURE_VIEWS:
        rgba = np.asarray(Image.open(folder / f"{Path(names[index]).stem}.png").convert("RGBA"), np.float32) / 255
        views.append(rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:]))
    return views


def truth_views(split: str) -> list[np.ndarray]:
    images = load_split(DATASET, split).composited(1.0)
    return [images[i].numpy() for i in PICTURE_VIEWS]


def save_picture(tags: list[str], path: Path) -> None:
    """Rows: the truth, then each asset; columns: three views under the capture light, then the same
    three under relit_light.json."""
    rows = [np.concatenate(truth_views("test") + truth_views("test_relit"), axis=1)]
    with tempfile.TemporaryDirectory() as folder:
        for tag in tags:
            asset = next((OUT / DATASET.name / tag).glob("*.glb"))
            captured = cycles_views(asset, CAPTURE_LIGHT, "test", Path(folder) / f"{tag}-capture")
            relit = cycles_views(asset, DATASET / "relit_light.json", "test_relit", Path(folder) / f"{tag}-relit")
            rows.append(np.concatenate(captured + relit, axis=1))
    image = Image.fromarray((np.concatenate(rows, axis=0).clip(0, 1) * 255 + 0.5).astype(np.uint8))
    image = image.resize((image.width // 2, image.height // 2), Image.LANCZOS)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="+", default=["dmtet", "neus"])
    parser.add_argument("--materials", nargs="+", default=["baked", "pbr"])
    parser.add_argument("--preset", default="balanced")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--rescore", action="store_true", help="score the assets already built, do not rebuild")
    parser.add_argument("--picture", type=Path, default=None, help="also save the comparison picture here")
    args = parser.parse_args()
    (OUT / args.dataset.name).mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M")
    print(f"{started}, machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch "
          f"threads, device {args.device}, preset {args.preset}, options {args.option}\n")
    print("| method | material | relit PSNR dB | albedo PSNR dB | test PSNR dB (unlit texture) | lit PSNR dB "
          "(engine shading) | Chamfer-L1 | time s |")
    print("|---|---|---|---|---|---|---|---|")
    tags = []
    for method in args.methods:
        for material in args.materials:
            print(row(method, material, run(method, material, args)), flush=True)
            tags.append(f"{method}-{material}")
    if args.picture is not None:
        save_picture(tags, args.picture)
        print(f"\npicture: {args.picture}")


if __name__ == "__main__":
    main()
