"""The reconstruction job's first stage for a folder of plain photos: cameras by SfM.

:func:`photo_dataset` runs :func:`engine.sfm.poses.recover_poses` into a temporary folder when
the job's dataset is a folder of images without camera files; the pipeline then reads that folder
like any posed dataset and copies it into the output as ``cameras/``, where the add-on's "Import
Cameras" finds ``transforms.json``.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..progress import Progress
from .poses import is_photo_folder, recover_poses

OUTPUT_FOLDER = "cameras"


@dataclass
class PhotoCameras:
    """The recovered cameras of a photo folder; ``folder`` is deleted with this object."""

    temporary: tempfile.TemporaryDirectory
    dataset: Path

    def copy_into(self, output: Path) -> None:
        """Copy ``transforms.json``, the sparse model and the masks into ``output/cameras``."""
        shutil.copytree(self.dataset, output / OUTPUT_FOLDER)


def photo_dataset(dataset: str, progress: Progress) -> PhotoCameras | None:
    """Recovered cameras (with automatic masks) when ``dataset`` is a folder of photos, else ``None``."""
    if not is_photo_folder(dataset):
        return None
    temporary = tempfile.TemporaryDirectory(prefix="meshlift-sfm-")
    folder = Path(temporary.name)
    recover_poses(dataset, folder, progress)
    return PhotoCameras(temporary, folder)
