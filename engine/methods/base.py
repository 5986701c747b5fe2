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


Points = Callable[[np.ndarray], np.ndarray]


@dataclass
class LearnedLight:
    """The light a PBR fit found (``material=pbr``), in the dataset's world frame.

    Directions are unit vectors along the dataset's world axes (the unit volume has the same axes:
    it is only translated and scaled) pointing **from the object towards where the light comes from**.
    Radiance is linear (not sRGB), in the units of the images once their sRGB curve is undone:
    Blender's world ``Color x Strength`` and sun ``Strength`` (irradiance, W/m^2) are in these units,
    so a Cycles render of the asset under this light reproduces the images the fit saw.

    Attributes:
        description: JSON-ready, what ``report.json`` records under ``material.light``::

            {"model": "spherical gaussians + sun",
             "frame": "dataset world frame, directions towards the light",
             "sun": {"direction": [x, y, z], "irradiance": [r, g, b], "strength": s,
                     "color": [r, g, b], "angle_deg": a},
             "environment": {"lobes": [{"axis": [x, y, z], "sharpness": k, "amplitude": [r, g, b]}, ...],
                             "ambient": [r, g, b], "mean_radiance": [r, g, b]}}

            The sun is a directional light: ``irradiance`` (linear RGB, W/m^2 on a surface facing it)
            = ``strength * color`` with ``max(color) = 1`` (a Blender sun lamp: ``Strength`` =
            ``strength``, ``Color`` = ``color``, ``Angle`` = ``angle_deg``, pointing along
            ``-direction``). The environment (without the sun) is ``ambient`` plus the lobes:
            ``L(w) = ambient + sum_k amplitude_k * exp(sharpness_k * (axis_k . w - 1))``.
        environment: directions ``[N, 3]`` -> linear radiance ``[N, 3]`` of the environment alone
            (no sun): what Blender's world should emit (an equirectangular HDR samples this).
        radiance: directions ``[N, 3]`` -> linear radiance ``[N, 3]`` of environment *and* sun, the
            sun as a uniform disc of ``angle_deg`` (its radiance = irradiance / the disc's solid
            angle), for an HDR that holds all the light.
    """

    description: dict[str, Any]
    environment: Points
    radiance: Points


@dataclass
class Material:
    """A PBR material learned with the surface (``material=pbr``): the metallic-roughness model of
    glTF 2.0 and of Blender's Principled BSDF with one specular level (:mod:`engine.shading.brdf`),
    and the light that lit the photos.

    Every field except ``light`` maps **unit-volume points** ``[P, 3]`` (float32, the frame of
    ``MethodOutput.vertices``; to use world points, apply ``Normalization`` first: ``(world -
    center) / radius``) to values at the surface nearest them; points should lie on or near the
    method's surface. All are numpy in, numpy out, evaluated in chunks, no gradient.

    Attributes:
        base_colour: ``[P, 3]`` base colour in [0, 1], **sRGB-encoded** (what a PNG, glTF's
            ``baseColorTexture`` and Blender's "sRGB" image textures hold; linear = the sRGB curve
            undone). De-lit: no shading, shadows or highlights.
        roughness: ``[P]`` perceptual roughness in [0, 1] (glTF ``roughness``, Blender's
            Roughness; the GGX alpha is its square).
        metallic: ``[P]`` metalness in [0, 1] (glTF ``metallic``, Blender's Metallic).
        specular: the specular level in [0, 1] of the whole object (glTF's ``KHR_materials_specular``
            ``specularFactor``: the dielectric's reflection scaled from F0 = 0.04 at 1 to none at 0;
            Blender's Specular IOR Level is half of it).
        base_holds_occlusion: the fit lit every point by the whole environment (no occlusion rays),
            so ``base_colour`` holds the capture's ambient occlusion; the bake takes it out where the
            occlusion map puts it back (:func:`engine.texture.delit.unoccluded_base_colour`).
        light: the light found (:class:`LearnedLight`).
        normal: ``[P, 3]`` unit outward normals along the world axes from the method's dense
            surface (NeuS: its SDF gradient), finer than the exported mesh, for a normal map; or
            ``None`` when the dense mesh (``MethodOutput.vertices``/``faces``) is itself the finest
            surface (DMTet).
        occlusion: ``(points [P, 3], normals [P, 3])`` -> ``[P]`` ambient occlusion in [0, 1] (1 =
            open sky): the cosine-weighted share of the hemisphere around ``normals`` that is not
            blocked by the method's surface (ORM's red channel); the points are offset a little
            along the normals first, so points of a decimated mesh near the surface work.
    """

    base_colour: Points
    roughness: Points
    metallic: Points
    light: LearnedLight
    normal: Points | None = None
    occlusion: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    specular: float = 1.0
    base_holds_occlusion: bool = False


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
            ``None`` when ``material`` is set.
        material: with ``material=pbr`` (DMTet, NeuS), the learned PBR material and light
            (:class:`Material`); the asset's colour texture is then its base colour, never the
            projected images (they hold the capture's light). ``None`` for ``material=baked``.
    """

    vertices: np.ndarray
    faces: np.ndarray
    stats: dict[str, Any] = field(default_factory=dict)
    losses: dict[str, float] = field(default_factory=dict)
    albedo: Callable[[np.ndarray], np.ndarray] | None = None
    material: Material | None = None


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
