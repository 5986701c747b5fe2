"""In-memory multi-view data: images, object masks and the cameras that took them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from ..cameras import Cameras


@dataclass
class DatasetSplit:
    """One split (``train`` or ``test``) of a posed multi-view dataset.

    Attributes:
        images: ``[N, H, W, 3]`` float32 colours in [0, 1], as stored in the files (sRGB), not
            premultiplied by the mask.
        masks: ``[N, H, W]`` float32 object coverage in [0, 1] (the alpha channel), or ``None``
            when the images carry no mask.
        cameras: the ``N`` cameras, in the frame given by the files (see ``engine.cameras``).
        names: ``N`` file names (relative to the dataset folder), for messages and reports.
        depths: ``[N, H, W]`` float32 depth of the surface at each pixel centre along the camera's
            optical axis (camera-space ``-z``), in the cameras' world units, 0 where there is none;
            or ``None`` when the dataset has no depth maps (see ``engine.data.depth_maps``).
        normals: ``[N, H, W, 3]`` float32 unit surface normals in the world frame, facing the
            camera, 0 where there is none; or ``None`` without normal maps.
    """

    images: torch.Tensor
    masks: torch.Tensor | None
    cameras: Cameras
    names: list[str]
    depths: torch.Tensor | None = None
    normals: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: list[int] | slice) -> DatasetSplit:
        """The views at ``index``."""
        names = self.names[index] if isinstance(index, slice) else [self.names[i] for i in index]
        return DatasetSplit(self.images[index], _apply(self.masks, lambda t: t[index]), self.cameras[index], names,
                            _apply(self.depths, lambda t: t[index]), _apply(self.normals, lambda t: t[index]))

    def to(self, device: torch.device | str) -> DatasetSplit:
        return replace(self, images=self.images.to(device), masks=_apply(self.masks, lambda t: t.to(device)),
                       cameras=self.cameras.to(device), depths=_apply(self.depths, lambda t: t.to(device)),
                       normals=_apply(self.normals, lambda t: t.to(device)))

    def composited(self, background: float = 1.0) -> torch.Tensor:
        """``[N, H, W, 3]`` images composited over a uniform background grey level."""
        if self.masks is None:
            return self.images
        alpha = self.masks[..., None]
        return self.images * alpha + background * (1.0 - alpha)


def _apply(tensor: torch.Tensor | None, function: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor | None:
    """``function(tensor)``, or ``None`` for ``None`` (the optional per-view maps)."""
    return None if tensor is None else function(tensor)
