"""Where a mesh's Chamfer-L1 comes from: by height band, and by how many training cameras see it.

    .venv/bin/python benchmarks/error_by_height.py MESH [--dataset ../shared/datasets/spot-tabletop]

``MESH`` is a reconstruction (OBJ or GLB as written by the pipeline, read back into the dataset's
world frame by ``engine.export.read_textured``), for example from ``bench_neus.py --keep DIR``.
Both surfaces are sampled as in ``engine.evaluate.geometry_metrics`` (200k points, seeds 0 and 1),
so the bands add up to its Chamfer-L1.

Prints, for ten bands of the ground truth's height (world +Z), the band's share of the two halves
of Chamfer-L1: ``extra`` (reconstruction → ground truth: surface where there is none) and
``missing`` (ground truth → reconstruction). Then it splits the ``extra`` share of the samples
farther than 0.004 from the ground truth by how many training cameras have a clear line of sight
to them past the ground-truth mesh: a point no camera sees can only be placed by a prior, a point
many cameras see is the fit's fault.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import trimesh
from scipy.spatial import cKDTree

from engine.data.transforms import load_split
from engine.export import read_textured
from engine.render.raycast import RayCaster

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
SAMPLES = 200_000
FAR = 0.004  # world units: an "extra" sample this far from the ground truth is counted by visibility
SEEN_BY = (0, 2, 5)  # camera counts for the visibility split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mesh")
    parser.add_argument("--dataset", default=str(DATASETS / "spot-tabletop"))
    args = parser.parse_args()
    folder = Path(args.dataset)
    gt = trimesh.load(folder / "gt_mesh.ply", force="mesh")
    loaded = read_textured(args.mesh)
    pred = trimesh.Trimesh(loaded.vertices, loaded.faces, process=False)
    pred_points = np.asarray(trimesh.sample.sample_surface(pred, SAMPLES, seed=0)[0])  # [S, 3] world
    gt_points = np.asarray(trimesh.sample.sample_surface(gt, SAMPLES, seed=1)[0])
    extra = cKDTree(gt_points).query(pred_points, workers=-1)[0] / SAMPLES / 2  # [S] share of Chamfer-L1
    missing = cKDTree(pred_points).query(gt_points, workers=-1)[0] / SAMPLES / 2
    print(f"Chamfer-L1 {extra.sum() + missing.sum():.5f} = extra {extra.sum():.5f} + missing {missing.sum():.5f}")

    low, high = gt.bounds[:, 2]
    edges = np.linspace(low, high, 11)
    print("\n| height band | extra | missing |\n|---|---|---|")
    pred_band = np.clip(np.searchsorted(edges, pred_points[:, 2]) - 1, 0, 9)
    gt_band = np.clip(np.searchsorted(edges, gt_points[:, 2]) - 1, 0, 9)
    for band in range(10):
        print(f"| {band / 10:.1f}–{(band + 1) / 10:.1f} | {extra[pred_band == band].sum():.5f} "
              f"| {missing[gt_band == band].sum():.5f} |")

    centres = load_split(folder, "train").cameras.centers  # [N, 3] world
    far = np.nonzero(extra * SAMPLES * 2 > FAR)[0]
    points = torch.tensor(pred_points[far], dtype=torch.float32)  # [P, 3]
    caster = RayCaster(torch.tensor(gt.vertices, dtype=torch.float32), torch.tensor(gt.faces))
    seen = torch.zeros(len(far), dtype=torch.int64)
    for centre in centres:
        towards = centre - points  # [P, 3]: t = 1 at the camera
        face, _ = caster.cast(points + towards * 1e-4, towards, max_t=1.0)
        seen += (face < 0).long()
    print(f"\nextra farther than {FAR} from the ground truth: {extra[far].sum():.5f}, by the training cameras "
          "that see it\n\n| seen by | extra | of which below 0.2 of the height |\n|---|---|---|")
    for count in SEEN_BY:
        chosen = seen.numpy() <= count
        below = chosen & (pred_band[far] < 2)
        print(f"| ≤ {count} cameras | {extra[far][chosen].sum():.5f} | {extra[far][below].sum():.5f} |")
    chosen = seen.numpy() > SEEN_BY[-1]
    print(f"| > {SEEN_BY[-1]} cameras | {extra[far][chosen].sum():.5f} | "
          f"{extra[far][chosen & (pred_band[far] < 2)].sum():.5f} |")


if __name__ == "__main__":
    main()
