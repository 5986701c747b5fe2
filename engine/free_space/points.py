"""Points triangulated across views whose cameras are known and held fixed (COLMAP through ``pycolmap``).

SIFT features in every view (inside the eroded mask when there are masks, so that no feature sits
on a silhouette, where the image shows no surface point), matched between the pairs of views that
look at the object from within ``PAIR_MAX_ANGLE`` of each other, verified geometrically, and
triangulated with the given poses and intrinsics (``pycolmap.triangulate_points``: the poses are
not refined). Only well-seen points are kept: seen by at least ``MIN_TRACK`` views, reprojected
within ``MAX_REPROJECTION_ERROR`` pixels on average.

Every kept point comes with the views that see it and where (its observations): the line of sight
from each of those cameras to the point crosses empty space (:mod:`engine.free_space.carve`), and
each observation is a pixel whose ray ends at the point (the sparse depth of
:mod:`engine.free_space.losses`).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pycolmap
import torch
from PIL import Image
from scipy.ndimage import binary_erosion

from ..cameras import Cameras
from ..data.dataset import DatasetSplit
from ..progress import Progress
from ..sfm.colmap import SIFT_PEAK_THRESHOLD, cancellation
from ..utils.math import ray_box

# A point must be seen by this many views (two-view points are too often wrong matches).
MIN_TRACK = 3
# Mean reprojection error (pixels) above which a point is dropped. On the bowl's 100 views (track >= 3): at 1 px the
# worst 0.1% of the points lie 0.033 from the true surface, at 0.5 px 0.020 (world units, object radius 1).
MAX_REPROJECTION_ERROR = 0.5
# Empty space is claimed only this far (unit volume) short of a point along its line of sight: more than the kept
# points' own error (at most 0.025 on the bowl in the unit volume, 0.0005 of them beyond 0.015).
SIGHT_MARGIN = 0.025
# Views are matched only with views whose optical axes are within this angle (degrees): farther apart they share
# too little of the surface to match, and on 100 views it skips two thirds of the pairs.
PAIR_MAX_ANGLE = 70.0
# Masks are eroded by this many pixels before features are kept inside them (a feature on the silhouette is a point
# of the outline, not of the surface).
MASK_EROSION_PIXELS = 3
STAGE = "finding free space: matching features"


@dataclass
class SparsePoints:
    """Triangulated points and where the views see them, in the frame of the cameras they came from.

    Attributes:
        points: ``[P, 3]`` float32 positions.
        views: ``[O]`` long, the view of each observation.
        point_index: ``[O]`` long, the point of each observation (into ``points``).
        pixels: ``[O, 2]`` float32 continuous pixel coordinates ``(px, py)`` of each observation
            (engine convention: pixel centres at +0.5).
    """

    points: torch.Tensor
    views: torch.Tensor
    point_index: torch.Tensor
    pixels: torch.Tensor

    def __len__(self) -> int:
        return self.points.shape[0]

    def to(self, device: torch.device | str) -> SparsePoints:
        return SparsePoints(self.points.to(device), self.views.to(device), self.point_index.to(device),
                            self.pixels.to(device))

    def depths(self, cameras: Cameras) -> torch.Tensor:
        """``[O]`` camera-space depth (along the viewing axis) of each observation's point in its view."""
        w2c = cameras.world_to_camera().to(self.points.device, self.points.dtype)[self.views]  # [O, 4, 4]
        return -(torch.einsum("oj,oj->o", w2c[:, 2, :3], self.points[self.point_index]) + w2c[:, 2, 3])

    def in_views(self, views: list[int], cameras: Cameras) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                                     torch.Tensor]:
        """The observations made in ``views`` (indices into the split; ``cameras`` are those views'):
        ``(slot [K], row [K], column [K], depth [K])``, the position of the view in ``views``, the
        pixel holding the observation, and the point's camera-space depth in that view."""
        wanted = torch.tensor(views, dtype=torch.long, device=self.views.device)
        chosen, slot = (self.views[:, None] == wanted[None]).nonzero(as_tuple=True)  # [K] each
        local = SparsePoints(self.points, slot, self.point_index[chosen], self.pixels[chosen])
        column = local.pixels[:, 0].long().clamp(0, cameras.width - 1)
        row = local.pixels[:, 1].long().clamp(0, cameras.height - 1)
        return local.views, row, column, local.depths(cameras)

    def sight_lines(self, cameras: Cameras) -> SightLines:
        """The lines of sight of every observation, ``cameras`` being the views'."""
        origins = cameras.centers.to(self.points.device, self.points.dtype)[self.views]
        offset = self.points[self.point_index] - origins
        distances = offset.norm(dim=-1)
        return SightLines(origins, offset / distances.clamp_min(1e-9)[:, None], distances)

    def transformed(self, scale: float, shift: torch.Tensor) -> SparsePoints:
        """The same points with positions ``points * scale + shift`` (e.g. into the unit volume)."""
        return SparsePoints(self.points * scale + shift.to(self.points), self.views, self.point_index, self.pixels)


@dataclass
class SightLines:
    """Lines of sight from cameras to points they see: ``origins [O, 3]`` (the cameras' centres),
    unit ``directions [O, 3]`` and ``distances [O]`` to the points."""

    origins: torch.Tensor
    directions: torch.Tensor
    distances: torch.Tensor

    def __len__(self) -> int:
        return self.origins.shape[0]

    def sample(self, count: int, lo: torch.Tensor, hi: torch.Tensor, margin: float, generator: torch.Generator
               ) -> torch.Tensor:
        """``[count, 3]`` random points on random lines, inside the box ``[lo, hi]`` and at least
        ``margin`` before their point (empty space, if the point is right); fewer when no line
        crosses the box that far."""
        line = torch.randint(len(self), (count,), generator=generator).to(self.origins.device)
        origins, directions = self.origins[line], self.directions[line]
        near, far = ray_box(origins, directions, lo, hi)
        far = torch.minimum(far, self.distances[line] - margin)
        keep = far > near
        u = torch.rand(count, generator=generator).to(self.origins.device)
        t = near + u * (far - near)
        return (origins + directions * t[:, None])[keep]


def triangulate(split: DatasetSplit, progress: Progress) -> SparsePoints:
    """Well-seen points of ``split`` (its cameras held fixed), in the cameras' frame; possibly none."""
    cpu = split.to("cpu")
    with tempfile.TemporaryDirectory(prefix="meshlift-points-") as folder:
        root = Path(folder)
        names = write_views(cpu, root)
        database = root / "database.db"
        reader = pycolmap.ImageReaderOptions()
        reader.camera_model = "PINHOLE"
        if cpu.masks is not None:
            reader.mask_path = root / "masks"
        extraction = pycolmap.FeatureExtractionOptions()
        extraction.sift.peak_threshold = SIFT_PEAK_THRESHOLD
        progress.update(STAGE, 0, 3)
        with cancellation(progress) as token:
            pycolmap.extract_features(database, root / "images", image_names=names,
                                      camera_mode=pycolmap.CameraMode.PER_IMAGE, reader_options=reader,
                                      extraction_options=extraction, device=pycolmap.Device.cpu,
                                      cancellation_token=token)
        progress.update(STAGE, 1, 3)
        set_intrinsics(database, cpu, names)
        pairs = root / "pairs.txt"
        pairs.write_text("".join(f"{names[i]} {names[j]}\n" for i, j in view_pairs(cpu)))
        pairing = pycolmap.ImportedPairingOptions()
        pairing.match_list_path = pairs
        with cancellation(progress) as token:
            pycolmap.match_image_pairs(database, pairing_options=pairing, device=pycolmap.Device.cpu,
                                       cancellation_token=token)
        progress.update(STAGE, 2, 3)
        reconstruction = posed_reconstruction(database, cpu, names)
        (root / "triangulated").mkdir()
        with cancellation(progress) as token:
            reconstruction = pycolmap.triangulate_points(reconstruction, database, root / "images",
                                                         root / "triangulated", cancellation_token=token)
        progress.update(STAGE, 3, 3)
    return well_seen(reconstruction, names).to(split.images.device)


def write_views(split: DatasetSplit, root: Path) -> list[str]:
    """The views as PNG files in ``root/images`` (and their eroded masks in ``root/masks``, named as
    COLMAP expects: the image's name + ``.png``); returns the file names."""
    (root / "images").mkdir()
    names = [f"{i:05d}.png" for i in range(len(split))]
    images = split.composited(0.5)
    if split.masks is not None:
        (root / "masks").mkdir()
    for i, name in enumerate(names):
        Image.fromarray((images[i].numpy() * 255 + 0.5).astype(np.uint8)).save(root / "images" / name)
        if split.masks is not None:
            kept = binary_erosion(split.masks[i].numpy() > 0.5, iterations=MASK_EROSION_PIXELS)
            Image.fromarray(kept.astype(np.uint8) * 255).save(root / "masks" / f"{name}.png")
    return names


def set_intrinsics(database: Path, split: DatasetSplit, names: list[str]) -> None:
    """Give every image's COLMAP camera the intrinsics of its view (pinhole ``fx, fy, cx, cy``)."""
    db = pycolmap.Database.open(database)
    try:
        for image in db.read_all_images():
            i = names.index(image.name)
            camera = db.read_camera(image.camera_id)
            camera.params = [float(split.cameras.fx[i]), float(split.cameras.fy[i]),
                             float(split.cameras.cx[i]), float(split.cameras.cy[i])]
            db.update_camera(camera)
    finally:
        db.close()


def view_pairs(split: DatasetSplit) -> list[tuple[int, int]]:
    """The pairs ``(i, j)``, ``i < j``, of views whose optical axes are within ``PAIR_MAX_ANGLE``."""
    forward = split.cameras.forward.double()
    close = forward @ forward.T >= np.cos(np.radians(PAIR_MAX_ANGLE))
    i, j = torch.triu_indices(len(split), len(split), offset=1)
    keep = close[i, j]
    return list(zip(i[keep].tolist(), j[keep].tolist(), strict=True))


def posed_reconstruction(database: Path, split: DatasetSplit, names: list[str]) -> pycolmap.Reconstruction:
    """A COLMAP reconstruction of the database's cameras, rigs, frames and images, every frame
    registered with the pose of its view (no points yet)."""
    w2c = split.cameras.to_opencv()[0].numpy()  # [N, 4, 4]
    reconstruction = pycolmap.Reconstruction()
    db = pycolmap.Database.open(database)
    try:
        images = {image.image_id: image for image in db.read_all_images()}
        for camera in db.read_all_cameras():
            reconstruction.add_camera(camera)
        for rig in db.read_all_rigs():
            reconstruction.add_rig(rig)
        for frame in db.read_all_frames():
            pose = w2c[names.index(images[next(iter(frame.data_ids)).id].name)]
            frame.rig_from_world = pycolmap.Rigid3d(pycolmap.Rotation3d(pose[:3, :3]), pose[:3, 3])
            reconstruction.add_frame(frame)
        for image in images.values():
            reconstruction.add_image(image)
    finally:
        db.close()
    for frame_id in reconstruction.frames:
        reconstruction.register_frame(frame_id)
    return reconstruction


def well_seen(reconstruction: pycolmap.Reconstruction, names: list[str]) -> SparsePoints:
    """The points of ``reconstruction`` seen by at least ``MIN_TRACK`` views within
    ``MAX_REPROJECTION_ERROR``, with their observations (views indexed as in ``names``)."""
    view_of = {image.image_id: names.index(image.name) for image in reconstruction.images.values()}
    points, views, index, pixels = [], [], [], []
    for point in reconstruction.points3D.values():
        if point.track.length() < MIN_TRACK or point.error > MAX_REPROJECTION_ERROR:
            continue
        for element in point.track.elements:
            views.append(view_of[element.image_id])
            index.append(len(points))
            pixels.append(reconstruction.image(element.image_id).points2D[element.point2D_idx].xy)
        points.append(point.xyz)
    return SparsePoints(torch.tensor(np.array(points, dtype=np.float32).reshape(-1, 3)),
                        torch.tensor(views, dtype=torch.long), torch.tensor(index, dtype=torch.long),
                        torch.tensor(np.array(pixels, dtype=np.float32).reshape(-1, 2)))
