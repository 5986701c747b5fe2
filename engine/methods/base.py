"""What a reconstruction method is, for the pipeline and for the method registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..data.dataset import DatasetSplit
from ..progress import Progress
from ..roi import Normalization

if TYPE_CHECKING:
    from ..preview import Preview
    from ..sfm.object_hints import ObjectHints


@dataclass
class MethodInput:
    """Everything a method gets.

    Attributes:
        split: the training views, with cameras in the *unit volume* (see ``engine.roi``), on
            ``device``.
        normalization: the map between the unit volume and the dataset's world frame.
        options: the method's settings: an instance of its options dataclass (the preset with the
            user's overrides applied, see ``engine.options``).
        progress: for progress events and cancellation.
        device: the torch device to compute on.
        hints: for views without masks, where the object and its table are (automatic masks, the
            table plane), in the unit volume; ``None`` when not found or not needed.
        preview: where the live previews go when the job asked for them (see :meth:`preview_due`).
    """

    split: DatasetSplit
    normalization: Normalization
    options: Any
    progress: Progress
    device: torch.device
    hints: ObjectHints | None = None
    preview: Preview | None = None

    def preview_due(self) -> bool:
        """Whether the job wants a live preview of the forming surface now (every few seconds, and
        only when it asked for previews): an optimizing method checks it in its loop and then calls
        :meth:`send_preview`, so it computes a surface only when one is shown."""
        return self.preview is not None and self.preview.due()

    def send_preview(self, step: int, vertices: torch.Tensor | np.ndarray, faces: torch.Tensor | np.ndarray) -> None:
        """Send the current surface (``vertices [M, 3]`` in the unit volume, ``faces [K, 3]``) as the
        live preview of ``step``."""
        if self.preview is not None:
            self.preview.send(step, vertices, faces)


@dataclass
class MethodOutput:
    """A closed, outward-oriented triangle mesh in the *unit volume*.

    Attributes:
        vertices: ``[V, 3]`` float32 unit-volume positions.
        faces: ``[F, 3]`` int32 vertex indices, counter-clockwise seen from outside.
        stats: numbers worth reporting (iterations, grid size, ...).
        losses: for methods that optimize, each named loss term (unweighted) averaged over the last
            steps, as ``report.json`` records it.
        albedo: for methods that learn the surface colour, a function from unit-volume points
            ``[P, 3]`` to sRGB colours ``[P, 3]`` in [0, 1]; the pipeline may bake it into the texture.
    """

    vertices: np.ndarray
    faces: np.ndarray
    stats: dict[str, Any] = field(default_factory=dict)
    losses: dict[str, float] = field(default_factory=dict)
    albedo: Callable[[np.ndarray], np.ndarray] | None = None


@dataclass(frozen=True)
class Method:
    """A registered reconstruction method.

    Attributes:
        name: the identifier used on the command line and in jobs (``--method NAME``).
        title: a short human name for menus.
        description: one sentence for tooltips and ``--help``.
        needs_masks: whether the training images must carry object masks.
        options: the method's options dataclass (a subclass of ``engine.options.MeshOptions``).
        presets: preset name -> an instance of ``options``; ``DEFAULT_PRESET`` must be one of them.
        run: the reconstruction itself.
    """

    name: str
    title: str
    description: str
    needs_masks: bool
    options: type
    presets: dict[str, Any]
    run: Callable[[MethodInput], MethodOutput]


DEFAULT_PRESET = "balanced"
