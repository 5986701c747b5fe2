"""Structure-from-motion with COLMAP (through ``pycolmap``): unposed images -> cameras + sparse points.

Steps: SIFT features (``SIFT_PEAK_THRESHOLD``; one shared camera, since a set of photos of one object usually comes from
one camera at one zoom), matching (exhaustive for up to ``EXHAUSTIVE_MAX_IMAGES`` images, else
sequential in file-name order, which suits a walk around the object), incremental mapping, and
the largest registered model.

Lens distortion: features are extracted with COLMAP's ``SIMPLE_RADIAL`` model, which fits phone
and camera photos. When the fitted distortion moves the image corners by more than
``UNDISTORT_MIN_PIXELS``, the images are undistorted by COLMAP into ``images/`` next to the model
(a pinhole camera), so the engine's pinhole cameras stay exact; below that the distortion is
ignored and the original images are used.

Frames: COLMAP gives world-to-camera poses in the OpenCV convention (+Z forward, +Y down); they
become engine cameras through :meth:`engine.cameras.Cameras.from_opencv`, in COLMAP's world frame.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pycolmap
import torch

from ..cameras import Cameras
from ..data.transforms import IMAGE_SUFFIXES, MIN_VIEWS
from ..errors import Cancelled, InputError
from ..progress import Progress

EXHAUSTIVE_MAX_IMAGES = 100
# A third of COLMAP's default (0.0067): twice the features on small or soft images. On 30 of
# spot-tabletop's 320x240 photos the default registers 6, this 29 (more features on the object,
# not only on the table, whose plane gives COLMAP no usable initial pair).
SIFT_PEAK_THRESHOLD = 0.002
SEQUENTIAL_OVERLAP = 20
UNDISTORT_MIN_PIXELS = 0.5
# Fewer registered images than this share of the input is reported as a failure, not a result.
MIN_REGISTERED_FRACTION = 0.5


@dataclass
class SparseModel:
    """A registered COLMAP model in engine terms.

    Attributes:
        cameras: the ``N`` registered views (engine convention, COLMAP's world frame, pinhole).
        names: ``N`` image file names, relative to ``image_dir``.
        image_dir: the folder the images (original or undistorted) are in.
        points: ``[P, 3]`` float64 sparse points (COLMAP's world frame).
        colors: ``[P, 3]`` uint8 their colours.
    """

    cameras: Cameras
    names: list[str]
    image_dir: Path
    points: np.ndarray
    colors: np.ndarray


def list_images(image_dir: Path) -> list[str]:
    """The image file names directly in ``image_dir`` (not in sub-folders), in natural order
    (``r_2`` before ``r_10``)."""
    if image_dir.is_file():
        raise InputError(f"{image_dir} is a file; give the folder of photos ({image_dir.parent})")
    if not image_dir.is_dir():
        raise InputError(f"Image folder not found: {image_dir}")
    names = [p.name for p in image_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(names, key=lambda n: [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", n)])


@contextmanager
def cancellation(progress: Progress) -> Iterator[pycolmap.CancellationToken]:
    """A COLMAP cancellation token that is cancelled as soon as ``progress`` reports a cancel."""
    token = pycolmap.CancellationToken()
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.2):
            try:
                progress.check()
            except Cancelled:
                token.cancel()
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield token
    finally:
        stop.set()
        watcher.join()
    progress.check()


def run_sfm(image_dir: Path, work_dir: Path, progress: Progress) -> Path:
    """Run COLMAP on the images in ``image_dir``; the largest model goes to ``work_dir/sparse/0``.

    Returns that model's folder. COLMAP's feature and match database and its other models are
    scratch: they live in a temporary folder that is deleted on return.

    Raises:
        InputError: too few images, or too few of them registered (the message says how many and why).
    """
    names = list_images(image_dir)
    pycolmap.set_random_seed(0)  # repeatable RANSAC (thread scheduling can still vary the result slightly)
    if len(names) < MIN_VIEWS:
        raise InputError(f"{image_dir} has {len(names)} image(s) (JPEG/PNG); at least {MIN_VIEWS} are needed")
    with tempfile.TemporaryDirectory(prefix="meshlift-colmap-") as scratch:
        best = map_images(image_dir, names, Path(scratch), progress)
        out = work_dir / "sparse" / "0"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        best.write(out)
    return out


def map_images(image_dir: Path, names: list[str], scratch: Path, progress: Progress) -> pycolmap.Reconstruction:
    """COLMAP's features, matches and incremental mapping of ``names`` in ``image_dir``, with its
    database and models in ``scratch``; returns the model with the most registered images.

    Raises:
        InputError: too few of them registered (the message says how many and why).
    """
    database = scratch / "database.db"
    mapped = scratch / "mapped"
    mapped.mkdir()

    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = "SIMPLE_RADIAL"
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.sift.peak_threshold = SIFT_PEAK_THRESHOLD
    stage = f"finding cameras: features ({len(names)} images)"
    progress.update(stage, 0, 1)
    with cancellation(progress) as token:
        pycolmap.extract_features(database, image_dir, image_names=names, camera_mode=pycolmap.CameraMode.SINGLE,
                                  reader_options=reader, extraction_options=extraction, device=pycolmap.Device.cpu,
                                  cancellation_token=token)
    progress.update(stage, 1, 1)

    exhaustive = len(names) <= EXHAUSTIVE_MAX_IMAGES
    stage = f"finding cameras: matching ({'every pair' if exhaustive else 'neighbours in file order'})"
    progress.update(stage, 0, 1)
    with cancellation(progress) as token:
        if exhaustive:
            pycolmap.match_exhaustive(database, device=pycolmap.Device.cpu, cancellation_token=token)
        else:
            pairing = pycolmap.SequentialPairingOptions()
            pairing.overlap = SEQUENTIAL_OVERLAP
            pycolmap.match_sequential(database, pairing_options=pairing, device=pycolmap.Device.cpu,
                                      cancellation_token=token)
    progress.update(stage, 1, 1)

    stage = "finding cameras: registering views"
    registered = [0]

    def next_image() -> None:
        registered[0] += 1
        progress.update(stage, min(registered[0], len(names)), len(names))

    progress.update(stage, 0, len(names))
    with cancellation(progress) as token:
        models = pycolmap.incremental_mapping(database, image_dir, mapped, next_image_callback=next_image,
                                              cancellation_token=token)
    progress.update(stage, len(names), len(names))

    best = max(models.values(), key=lambda m: m.num_reg_images(), default=None)
    count = 0 if best is None else best.num_reg_images()
    if count < max(MIN_VIEWS, int(np.ceil(MIN_REGISTERED_FRACTION * len(names)))):
        raise InputError(registration_failure(database, len(names), count))
    if count < len(names):
        progress.log(f"{count} of {len(names)} images registered; the others are left out", "warning")
    return best


def registration_failure(database: Path, total: int, registered: int) -> str:
    """A message saying how many images registered and the likely reason, from the match database."""
    db = pycolmap.Database.open(database)
    try:
        keypoints = db.num_keypoints() / max(1, db.num_images())
        verified = db.num_verified_image_pairs()
    finally:
        db.close()
    pairs = total * (total - 1) // 2
    if keypoints < 100:
        why = f"the images have few distinct features ({keypoints:.0f} per image on average; need texture and focus)"
    elif verified < total:
        why = (f"only {verified} of {pairs} image pairs share enough matching features "
               "(the photos must overlap: take them close together while walking around the object)")
    else:
        why = "the views could not be tied into one consistent scene (too little overlap or a moving object)"
    return (f"Only {registered} of {total} images could be placed by structure-from-motion: {why}. "
            f"At least {max(MIN_VIEWS, int(np.ceil(MIN_REGISTERED_FRACTION * total)))} are needed.")


def undistort_if_needed(model_dir: Path, image_dir: Path, work_dir: Path, progress: Progress) -> tuple[Path, Path]:
    """``(model_dir, image_dir)`` to use: the given ones when the lens distortion is negligible,
    otherwise COLMAP's undistorted copies in ``work_dir/undistorted/{sparse,images}``."""
    reconstruction = pycolmap.Reconstruction(model_dir)
    if all(corner_shift(camera) <= UNDISTORT_MIN_PIXELS for camera in reconstruction.cameras.values()):
        return model_dir, image_dir
    progress.update("finding cameras: removing lens distortion", 0, 1)
    out = work_dir / "undistorted"
    shutil.rmtree(out, ignore_errors=True)
    with cancellation(progress) as token:
        pycolmap.undistort_images(out, model_dir, image_dir, cancellation_token=token)
    progress.update("finding cameras: removing lens distortion", 1, 1)
    return out / "sparse", out / "images"


def corner_shift(camera: pycolmap.Camera) -> float:
    """How far (pixels) the camera's distortion moves the image corners against a pinhole camera
    with the same focal length and principal point."""
    corners = np.array([[0.0, 0.0], [camera.width, 0.0], [0.0, camera.height], [camera.width, camera.height]])
    normalized = camera.cam_from_img(corners)  # [4, 2] undistorted image-plane coordinates
    fx, fy = camera.focal_length_x, camera.focal_length_y
    pinhole = normalized * [fx, fy] + [camera.principal_point_x, camera.principal_point_y]
    return float(np.abs(pinhole - corners).max())


def read_model(model_dir: Path, image_dir: Path) -> SparseModel:
    """Read a COLMAP model folder (``cameras``, ``images``, ``points3D``; binary or text) with
    pinhole cameras (``SIMPLE_PINHOLE`` or ``PINHOLE``; others must be undistorted first).

    Raises:
        InputError: unreadable model, distorted or mixed-size cameras, fewer than ``MIN_VIEWS`` views.
    """
    try:
        reconstruction = pycolmap.Reconstruction(model_dir)
    except (RuntimeError, ValueError) as error:
        raise InputError(f"Cannot read the COLMAP model in {model_dir}: {error}") from error
    images = sorted((reconstruction.image(i) for i in reconstruction.reg_image_ids()), key=lambda im: im.name)
    if len(images) < MIN_VIEWS:
        raise InputError(f"The COLMAP model in {model_dir} has {len(images)} registered image(s); "
                         f"at least {MIN_VIEWS} are needed")
    sizes = {(im.camera.width, im.camera.height) for im in images}
    if len(sizes) > 1:
        raise InputError(f"The COLMAP model in {model_dir} mixes image sizes {sorted(sizes)}; use one size")
    for image in images:
        if image.camera.model.name not in ("SIMPLE_PINHOLE", "PINHOLE") and corner_shift(image.camera) > \
                UNDISTORT_MIN_PIXELS:
            raise InputError(f"The COLMAP model in {model_dir} has a distorted {image.camera.model.name} camera; "
                             "undistort it first (colmap image_undistorter) or let Meshlift run SfM")
    w2c = torch.tensor(np.stack([im.cam_from_world().matrix() for im in images]), dtype=torch.float64)  # [N, 3, 4]
    k = torch.tensor(np.stack([im.camera.calibration_matrix() for im in images]), dtype=torch.float64)  # [N, 3, 3]
    width, height = sizes.pop()
    cameras = Cameras.from_opencv(w2c, k, width, height)
    points = reconstruction.points3D.values()
    xyz = np.array([p.xyz for p in points], dtype=np.float64).reshape(-1, 3)
    rgb = np.array([p.color for p in points], dtype=np.uint8).reshape(-1, 3)
    return SparseModel(cameras, [im.name for im in images], image_dir, xyz, rgb)
