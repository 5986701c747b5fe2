"""Each photo's own exposure and white balance, learned beside NeuS's colours (mask-free fits).

Photos are metered one by one: the same surface comes out brighter in one and bluer in another. A
field that must reproduce every photo with one colour per point then either averages them (a
blurred, wrong texture) or, worse, bends the surface to put a different colour in front of each
camera. NeRF in the Wild gives every image a learned appearance code; what a camera changes
between two frames is simpler, so here every training image ``v`` has an affine colour of its
own, per channel: ``gain[v] * colour + offset[v]`` (sRGB), applied to what the rendering of a ray
of that image shows (object, table and background alike). The gains and offsets are centred over
the images (their mean log gain and mean offset are zero), so that the fields keep the photos'
average colour and the per-image part only holds what differs from it; the named loss
``appearance`` (the mean square of the log gains and offsets, weighted by ``appearance_weight``)
keeps them from explaining more than a global change of each photo.

Highlights are not an exposure: they move over the object with the view and stay in the colour
head's view-dependent residual (see ``reflected_view`` in :mod:`.options`).
"""

from __future__ import annotations

import torch
from torch import nn


class ViewAppearance(nn.Module):
    """Per-image affine colours of ``views`` training images, the identity at the start."""

    def __init__(self, views: int) -> None:
        super().__init__()
        self.log_gain = nn.Parameter(torch.zeros(views, 3))
        self.offset = nn.Parameter(torch.zeros(views, 3))

    def centred(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(log_gain [V, 3], offset [V, 3])`` with their means over the images removed."""
        return self.log_gain - self.log_gain.mean(0), self.offset - self.offset.mean(0)

    def forward(self, views: torch.Tensor, out: dict[str, torch.Tensor], background: torch.Tensor
                ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The rendering ``out`` of rays of the images ``views [R]`` (``colour``/``albedo`` ``[R, 3]``
        premultiplied by ``opacity [R]``) and the ``background [R, 3]`` behind them, as those images
        show them: for each composite ``colour + (1 - opacity) * background``, ``gain * composite +
        offset``, split so that the composite of the results is exactly that."""
        log_gain, offset = self.centred()
        gain, offset = log_gain[views].exp(), offset[views]  # [R, 3] each
        opacity = out["opacity"][:, None]
        shown = {**out, "colour": out["colour"] * gain + opacity * offset,
                 "albedo": out["albedo"] * gain + opacity * offset}
        return shown, background * gain + offset

    def penalty(self) -> torch.Tensor:
        """The ``appearance`` loss: mean square of the centred log gains and offsets."""
        log_gain, offset = self.centred()
        return (log_gain ** 2).mean() + (offset ** 2).mean()
