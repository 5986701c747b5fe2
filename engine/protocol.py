"""The worker protocol: the job a front end sends, the events the engine answers with, the exit codes.

One place for what crosses the process boundary between the Blender add-on (``bridge/``,
``operators/``) and the engine (``engine/worker.py``, ``engine/jobs.py``, ``engine/cli.py``):

* a **job** is a JSON object with the fields of :class:`ReconstructJob` (plus ``"command":
  "reconstruct"``) or of :class:`TextureJob` (plus ``"command": "texture"``), checked by their
  ``from_dict``;
* the worker writes **events**, one JSON object per line on stdout, each with a ``type`` from
  :data:`EVENT_TYPES` (built by the ``*_event`` functions here);
* it exits with one of the ``EXIT_*`` codes.

``engine/README.md`` documents the same for people. Torch-free and bpy-free: both sides import it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .errors import InputError

Event = dict[str, Any]

DEFAULT_METHOD = "hull"
DEFAULT_PRESET = "balanced"
PRESETS = ("fast", "balanced", "quality")
COMMAND = "reconstruct"
RELIEF_COMMAND = "relief"
TEXTURE_COMMAND = "texture"

# Exit codes of ``python -m engine worker`` (and of ``reconstruct`` on the command line).
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_CANCELLED = 0, 1, 2, 130

# Event types, in the order a job sends them: any number of progress, log and preview events, then
# exactly one result or error.
PROGRESS, LOG, PREVIEW, RESULT, ERROR = "progress", "log", "preview", "result", "error"
EVENT_TYPES = (PROGRESS, LOG, PREVIEW, RESULT, ERROR)
FINAL_EVENTS = (RESULT, ERROR)
# ``kind`` of an error event.
INPUT, CANCELLED, OUT_OF_MEMORY, INTERNAL = "input", "cancelled", "out_of_memory", "internal"
ERROR_KINDS = (INPUT, CANCELLED, OUT_OF_MEMORY, INTERNAL)
# ``level`` of a log event.
INFO, WARNING = "info", "warning"
# ``format`` of a preview file: a numpy ``.npz`` with ``vertices [V, 3]`` float32 (dataset world frame)
# and ``faces [F, 3]`` int32.
PREVIEW_NPZ = "npz"


@dataclass
class ReconstructJob:
    """One reconstruction, as given on the command line or in a worker's ``JOB.json``.

    Attributes:
        dataset: a folder with ``transforms_train.json`` / ``transforms.json`` (or the json itself),
            a COLMAP project, or a folder of plain photos.
        out: the output folder; it must not exist unless ``force``.
        method: a name from ``engine.methods.METHODS``.
        preset: ``fast``, ``balanced`` or ``quality``.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``.
        options: per-option overrides of the preset (e.g. ``{"resolution": 256}``), checked against
            the method's options (``python -m engine methods``).
        name: base name of the output files; defaults to the dataset folder's name.
        force: replace an existing output folder.
        evaluate: score the result against ``gt_mesh.ply`` and the ``test`` views when present.
        image_scale: resize factor applied to the images when loading, in (0, 1].
        max_views: use at most this many training views (evenly spaced).
        region: ``[xmin, ymin, zmin, xmax, ymax, zmax]`` in the dataset frame: the object's box,
            replacing the automatic region of interest.
        preview: a folder for live previews: while an optimizing method (DMTet, NeuS) runs, the
            worker writes a coarse mesh of the forming surface there every few seconds and sends a
            ``preview`` event naming it (the reader then owns the file); ``None``: no previews.
    """

    dataset: str
    out: str
    method: str = DEFAULT_METHOD
    preset: str = DEFAULT_PRESET
    device: str = "auto"
    options: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    force: bool = False
    evaluate: bool = False
    image_scale: float = 1.0
    max_views: int | None = None
    region: list[float] | None = None
    preview: str | None = None

    command: ClassVar[str] = COMMAND

    @classmethod
    def field_types(cls) -> dict[str, tuple[type, ...]]:
        """The JSON types each job field accepts."""
        return JOB_FIELD_TYPES

    @classmethod
    def required_fields(cls) -> tuple[str, ...]:
        """The fields a job file must give."""
        return REQUIRED_FIELDS

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReconstructJob:
        """Build a job from JSON data, rejecting unknown, missing or mistyped fields with a clear message."""
        return cls(**check_fields(data, cls.field_types(), cls.required_fields()))

    def to_dict(self) -> dict[str, Any]:
        """The job file's JSON object (with ``command``)."""
        return {"command": self.command, **{key: getattr(self, key) for key in self.field_types()}}


@dataclass
class TextureJob(ReconstructJob):
    """Texture a mesh the user already has from posed images (``python -m engine texture``).

    The fields of :class:`ReconstructJob`, plus ``mesh`` (required). ``options`` are the method's:
    ``texture_size``, and ``material`` (``baked``: the training images projected onto the mesh;
    ``pbr``: the method runs to learn the material and light, which are then baked onto the mesh).
    ``name`` defaults to the mesh file's name.

    Attributes:
        mesh: an OBJ, GLB/glTF or PLY file in the dataset's world frame (a GLB is read the glTF way,
            +Y up); its vertices, faces and UVs (when it has them) are kept as they are.
    """

    mesh: str = ""
    command: ClassVar[str] = TEXTURE_COMMAND

    @classmethod
    def field_types(cls) -> dict[str, tuple[type, ...]]:
        return {**JOB_FIELD_TYPES, "mesh": (str,)}

    @classmethod
    def required_fields(cls) -> tuple[str, ...]:
        return (*REQUIRED_FIELDS, "mesh")


# The JSON types each job field accepts.
JOB_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "dataset": (str,), "out": (str,), "method": (str,), "preset": (str,), "device": (str,), "options": (dict,),
    "name": (str, type(None)), "force": (bool,), "evaluate": (bool,), "image_scale": (int, float),
    "max_views": (int, type(None)), "region": (list, type(None)), "preview": (str, type(None)),
}
REQUIRED_FIELDS = ("dataset", "out")


def check_fields(data: dict[str, Any], types: dict[str, tuple[type, ...]], required: tuple[str, ...]
                 ) -> dict[str, Any]:
    """``data`` when its fields are all known (``types``: name -> the JSON types it accepts), the
    ``required`` ones present and each of an accepted type; raises :class:`InputError`."""
    unknown = sorted(set(data) - set(types))
    if unknown:
        raise InputError(f"Unknown job field(s): {', '.join(unknown)}. Known: {', '.join(sorted(types))}")
    missing = [key for key in required if key not in data]
    if missing:
        raise InputError(f"The job needs the field(s): {', '.join(missing)}")
    for key, value in data.items():
        kinds = types[key]
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
            raise InputError(f"The job field '{key}' must be {names}, got {value!r}")
    return data


@dataclass
class ReliefJob:
    """A relief from one image (``"command": "relief"``; ``engine.relief``).

    Attributes:
        image: the image file (its colours are the texture; transparent pixels are left out).
        out: the output folder; it must not exist unless ``force``.
        depth: a depth map of the image (``.png`` 16-bit, ``.exr``, ``.npy``), or ``None``.
        normals: a camera-space normal map of the image, or ``None``; exactly one of the two is given.
        options: overrides of ``engine.relief.ReliefOptions`` (``width``, ``scale``, ...).
        name: base name of the output files; defaults to the image's name.
        force: replace an existing output folder.
    """

    image: str
    out: str
    depth: str | None = None
    normals: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    force: bool = False
    command: ClassVar[str] = RELIEF_COMMAND

    def to_dict(self) -> dict[str, Any]:
        """The job file's JSON object (with ``command``)."""
        return {"command": self.command, **{key: getattr(self, key) for key in RELIEF_FIELD_TYPES}}


RELIEF_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "image": (str,), "out": (str,), "depth": (str, type(None)), "normals": (str, type(None)), "options": (dict,),
    "name": (str, type(None)), "force": (bool,),
}


JOB_KINDS: dict[str, type[ReconstructJob]] = {COMMAND: ReconstructJob, TEXTURE_COMMAND: TextureJob}


def parse_job(data: Any) -> ReconstructJob | ReliefJob:
    """A job file's content (``{"command": "reconstruct" | "texture" | "relief", <the job's
    fields>}``) as a job; raises :class:`InputError`."""
    if not isinstance(data, dict):
        raise InputError("The job file must hold a JSON object")
    data = dict(data)
    command = data.pop("command", COMMAND)
    if command == RELIEF_COMMAND:
        return ReliefJob(**check_fields(data, RELIEF_FIELD_TYPES, ("image", "out")))
    if command not in JOB_KINDS:
        commands = " or ".join(map(repr, [*JOB_KINDS, RELIEF_COMMAND]))
        raise InputError(f"Unknown job command '{command}'; the worker runs {commands} jobs")
    return JOB_KINDS[command].from_dict(data)


def progress_event(stage: str, step: int, total: int, eta: float | None,
                   losses: dict[str, float] | None = None) -> Event:
    """``step`` of ``total`` steps of ``stage`` are done; ``eta``: seconds left in the stage (or
    ``None``); ``losses``: the current named loss terms of an optimizing stage, when it has them."""
    event: Event = {"type": PROGRESS, "stage": stage, "step": step, "total": total, "eta": eta}
    if losses:
        event["losses"] = losses
    return event


def log_event(message: str, level: str = INFO) -> Event:
    """A message for the user's log (``level``: ``info`` or ``warning``)."""
    return {"type": LOG, "level": level, "message": message}


def preview_event(path: str, fmt: str, step: int) -> Event:
    """A coarse mesh of the forming surface at optimization ``step`` was written to ``path`` (absolute)
    in format ``fmt`` (:data:`PREVIEW_NPZ`)."""
    return {"type": PREVIEW, "path": path, "format": fmt, "step": step}


def result_event(files: dict[str, str], report: dict[str, Any]) -> Event:
    """The last event of a job that succeeded: the written files (kind -> absolute path) and the report."""
    return {"type": RESULT, "files": files, "report": report}


def error_event(kind: str, message: str) -> Event:
    """The last event of a job that failed; ``kind`` from :data:`ERROR_KINDS`, ``message`` plain words."""
    return {"type": ERROR, "kind": kind, "message": message}


def safe_name(text: str, fallback: str) -> str:
    """``text`` as a file-system-safe name (runs of anything but ASCII letters, digits, ``_``, ``.``
    and ``-`` become one ``_``; no leading or trailing ``.``/``_``), or ``fallback`` when nothing is left."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or fallback
