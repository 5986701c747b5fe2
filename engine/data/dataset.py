"""In-memory multi-view data: images, object masks and the cameras that took them."""

from __future__ import annotations

from dataclasses import dataclass

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
    """

    images: torch.Tensor
    masks: torch.Tensor | None
    cameras: Cameras
    names: list[str]

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: list[int] | slice) -> DatasetSplit:
        """The views at ``index``."""
        masks = None if self.masks is None else self.masks[index]
        names = self.names[index] if isinstance(index, slice) else [self.names[i] for i in index]
        return DatasetSplit(self.images[index], masks, self.cameras[index], names)

    def to(self, device: torch.device | str) -> DatasetSplit:
        masks = None if self.masks is None else self.masks.to(device)
        return DatasetSplit(self.images.to(device), masks, self.cameras.to(device), self.names)

    def composited(self, background: float = 1.0) -> torch.Tensor:
        """``[N, H, W, 3]`` images composited over a uniform background grey level."""
        if self.masks is None:
            return self.images
        alpha = self.masks[..., None]
        return self.images * alpha + background * (1.0 - alpha)
