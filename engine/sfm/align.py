"""Similarity transforms between world frames, and how far two sets of cameras are apart.

A similarity maps a point ``x`` to ``scale * rotation @ x + translation``. Structure-from-motion
recovers cameras up to such a map (no absolute position, orientation or scale), so recovered
cameras are compared with reference ones only after the best similarity (Umeyama's least squares
fit on the camera centres, from scikit-image) has been applied.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from skimage.transform import SimilarityTransform

from ..cameras import Cameras
from ..errors import InputError
from ..roi import look_at_point


@dataclass(frozen=True)
class Similarity:
    """``x -> scale * rotation @ x + translation``; ``rotation [3, 3]`` proper, ``translation [3]``."""

    scale: float
    rotation: np.ndarray
    translation: np.ndarray

    @staticmethod
    def identity() -> Similarity:
        return Similarity(1.0, np.eye(3), np.zeros(3))

    @staticmethod
    def from_matrix(matrix: np.ndarray) -> Similarity:
        """From a ``[4, 4]`` matrix ``[[s R, t], [0, 1]]``."""
        linear = np.asarray(matrix, dtype=np.float64)[:3, :3]
        scale = float(np.cbrt(np.linalg.det(linear)))
        return Similarity(scale, linear / scale, np.asarray(matrix, dtype=np.float64)[:3, 3].copy())

    def matrix(self) -> np.ndarray:
        """``[4, 4]`` homogeneous matrix."""
        out = np.eye(4)
        out[:3, :3] = self.scale * self.rotation
        out[:3, 3] = self.translation
        return out

    def then(self, other: Similarity) -> Similarity:
        """The similarity that applies ``self`` first, then ``other``."""
        return Similarity.from_matrix(other.matrix() @ self.matrix())

    def points(self, points: np.ndarray) -> np.ndarray:
        """``[P, 3]`` points mapped."""
        return self.scale * np.asarray(points, dtype=np.float64) @ self.rotation.T + self.translation

    def cameras(self, cameras: Cameras) -> Cameras:
        """The same cameras in the mapped frame: centres move with the points, axes rotate, the
        camera-to-world matrices stay rigid (the scale goes into the positions only)."""
        c2w = cameras.c2w.double().clone()  # [N, 4, 4]
        rotation = torch.from_numpy(self.rotation).to(c2w)
        c2w[:, :3, :3] = rotation @ c2w[:, :3, :3]
        c2w[:, :3, 3] = torch.from_numpy(self.points(c2w[:, :3, 3].cpu().numpy())).to(c2w)
        return Cameras(c2w.to(cameras.c2w.dtype), cameras.fx, cameras.fy, cameras.cx, cameras.cy,
                       cameras.width, cameras.height)


def fit_similarity(source: np.ndarray, target: np.ndarray) -> Similarity:
    """The least-squares similarity (Umeyama) taking ``source [P, 3]`` onto ``target [P, 3]``, P >= 3."""
    fitted = SimilarityTransform.from_estimate(np.asarray(source, np.float64), np.asarray(target, np.float64))
    if not fitted:
        raise InputError("Cannot align the cameras: their centres are degenerate (fewer than 3 distinct points)")
    return Similarity.from_matrix(fitted.params)


@dataclass(frozen=True)
class PoseErrors:
    """Per-camera errors after alignment: ``rotation_deg [N]`` (angle between the camera
    orientations) and ``centre_relative [N]`` (centre distance divided by the reference camera's
    distance to the point the reference cameras look at)."""

    rotation_deg: np.ndarray
    centre_relative: np.ndarray


def pose_errors(recovered: Cameras, reference: Cameras) -> tuple[PoseErrors, Similarity]:
    """Align ``recovered`` onto ``reference`` (the same ``N`` views in the same order) by the
    similarity of their camera centres, and measure what is left. Returns the errors and that
    similarity (recovered frame -> reference frame)."""
    similarity = fit_similarity(recovered.centers.double().cpu().numpy(), reference.centers.double().cpu().numpy())
    aligned = similarity.cameras(recovered)
    rot_a = aligned.c2w[:, :3, :3].double().cpu().numpy()  # [N, 3, 3]
    rot_b = reference.c2w[:, :3, :3].double().cpu().numpy()
    cosine = (np.trace(np.transpose(rot_a, (0, 2, 1)) @ rot_b, axis1=1, axis2=2) - 1.0) / 2.0
    rotation_deg = np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))
    centres_b = reference.centers.double().cpu().numpy()
    distance = np.linalg.norm(centres_b - look_at_point(reference).double().cpu().numpy(), axis=1)
    centre = np.linalg.norm(aligned.centers.double().cpu().numpy() - centres_b, axis=1) / distance
    return PoseErrors(rotation_deg, centre), similarity
