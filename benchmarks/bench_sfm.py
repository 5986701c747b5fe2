"""Photos without poses on a tabletop dataset: SfM registration, pose accuracy, and the hull from the photos.

    .venv/bin/python benchmarks/bench_sfm.py [--dataset spot-tabletop] [--method hull] [--preset balanced]
        [--work benchmarks/out/sfm] [--sparse benchmarks/out/sfm/poses/sparse/0] [--masks-only] [-o KEY=VALUE ...]

Treats ``DATASET/train`` (a folder of ``shared/datasets``) as plain photos (its transforms are only used for scoring):
``recover_poses`` (COLMAP SfM, upright frame, automatic box and masks), then the reconstruction
(``--method``: the ``hull`` of the automatic masks, or ``neus`` started from them and fitted to
the photos without them) through the pipeline on the recovered ``transforms.json``. The recovered cameras
are aligned to the given ones by the similarity of their centres (Umeyama); the same similarity
brings the mesh into the ground-truth frame for ``geometry_metrics``. "Upright" is the angle
between the recovered frame's +Z and the true +Z after that alignment. The masks are scored
against the ground-truth mesh rasterized through the given cameras (IoU per view). ``--sparse``
reuses a COLMAP model from an earlier run (outside ``--work``, which is emptied) instead of running
SfM; ``--masks-only`` stops after the masks' scores; ``--picture OUT.png`` saves four views: the
photo, the automatic mask (white) and its errors against the truth (red: missed object, blue:
table kept).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import trimesh
from PIL import Image

from engine.cli import parse_options
from engine.data.transforms import load_split
from engine.evaluate import geometry_metrics
from engine.jobs import run_job
from engine.progress import Progress
from engine.protocol import ReconstructJob
from engine.render import rasterize
from engine.sfm.align import pose_errors
from engine.sfm.poses import recover_poses

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--method", default="hull")
    parser.add_argument("--preset", default="balanced")
    parser.add_argument("--work", default=str(Path(__file__).parent / "out" / "sfm"))
    parser.add_argument("--dataset", default="spot-tabletop")
    parser.add_argument("--sparse", default=None)
    parser.add_argument("--masks-only", action="store_true")
    parser.add_argument("--picture", default=None)
    parser.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    dataset = DATASETS / args.dataset

    start = time.perf_counter()
    sparse = Path(args.sparse) if args.sparse else None
    if sparse is None:
        recover_poses(dataset / "train", work / "poses", Progress(lambda _e: None), masks="none")
        sparse = work / "poses" / "sparse" / "0"
    sfm_seconds = time.perf_counter() - start
    start = time.perf_counter()
    transforms = recover_poses(dataset / "train", work / "poses", Progress(lambda _e: None), masks="auto",
                               sparse=sparse)
    mask_seconds = time.perf_counter() - start

    recovered = load_split(transforms)
    given = load_split(dataset)
    index = [given.names.index(f"train/{Path(name).name}") for name in recovered.names]
    errors, similarity = pose_errors(recovered.cameras, given.cameras[index])
    up = similarity.rotation @ np.array([0.0, 0.0, 1.0])
    print(f"registered {len(recovered)} of {len(given)}; SfM {sfm_seconds:.1f} s; masks {mask_seconds:.1f} s")
    print(f"rotation error median {np.median(errors.rotation_deg):.3f} deg (max {errors.rotation_deg.max():.3f}); "
          f"centre error median {100 * np.median(errors.centre_relative):.2f}% of the camera distance "
          f"(max {100 * errors.centre_relative.max():.2f}%); up axis off by "
          f"{np.degrees(np.arccos(np.clip(up[2], -1, 1))):.2f} deg")

    gt = trimesh.load(dataset / "gt_mesh.ply")
    covered = rasterize(torch.tensor(gt.vertices, dtype=torch.float32), torch.tensor(gt.faces),
                        given.cameras[index]).face_id >= 0  # [N, H, W]
    masks = recovered.masks > 0.5
    iou = (covered & masks).sum((1, 2)) / (covered | masks).sum((1, 2))
    print(f"mask IoU vs the true silhouettes: median {float(iou.median()):.3f}, min {float(iou.min()):.3f}")
    if args.picture:
        mask_picture(recovered.images, masks, covered, iou, Path(args.picture))
    if args.masks_only:
        return

    events: list[dict] = []
    start = time.perf_counter()
    code = run_job(ReconstructJob(dataset=str(transforms.parent), out=str(work / "mesh"), method=args.method,
                                  preset=args.preset, device="cpu", options=parse_options(args.option)),
                   events.append)
    assert code == 0, events[-1]
    mesh = trimesh.load(events[-1]["files"]["obj"], force="mesh")
    print(f"{args.method} ({args.preset}) {time.perf_counter() - start:.1f} s, {len(mesh.faces)} faces")
    aligned = trimesh.Trimesh(similarity.points(mesh.vertices), mesh.faces, process=False)
    metrics = geometry_metrics(aligned, gt)
    print(" ".join(f"{key} {value:.4f}" for key, value in metrics.items()))


def mask_picture(images: torch.Tensor, masks: torch.Tensor, truth: torch.Tensor, iou: torch.Tensor, out: Path) -> None:
    """Four views (the worst, two between, the best by IoU), one row each: photo ``images [N, H, W, 3]``,
    automatic mask ``masks [N, H, W]``, and its errors against ``truth`` (red: object missed, blue:
    background kept, grey: right)."""
    order = iou.argsort()
    rows = [int(order[k]) for k in np.linspace(0, len(order) - 1, 4).round().astype(int)]
    panels = []
    for i in rows:
        photo = images[i].numpy()
        mask = np.repeat(masks[i].numpy()[..., None], 3, -1).astype(np.float32)
        errors = np.full_like(photo, 0.15)
        errors[(masks[i] & truth[i]).numpy()] = 0.6
        errors[(truth[i] & ~masks[i]).numpy()] = (1.0, 0.1, 0.1)
        errors[(masks[i] & ~truth[i]).numpy()] = (0.2, 0.4, 1.0)
        panels.append(np.concatenate([photo, mask, errors], 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.concatenate(panels, 0).clip(0, 1) * 255).astype(np.uint8)).save(out, optimize=True)


if __name__ == "__main__":
    main()
