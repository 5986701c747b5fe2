"""Loss terms from the free-space evidence, for the methods that optimize an SDF.

* ``free_space``: at points the lines of sight show empty (:attr:`CarvedStart.empty`), the SDF
  must be positive: the mean of ``relu(-sdf)`` in cells. Zero once the field agrees; it keeps a
  lid from growing back over a hollow, and where the start was not carved it opens it.
* ``sparse_depth``: DS-NeRF's idea (Deng et al. 2022, "Depth-supervised NeRF"): along the line of
  sight of a triangulated point, the rendered surface should be where the point is. The L1 between
  the rendered and the point's depth, in cells.
"""

from __future__ import annotations

import torch


def free_space_loss(sdf: torch.Tensor, cell: float) -> torch.Tensor:
    """Mean ``relu(-sdf) / cell`` of SDF values ``[P]`` at points known to be empty (0 for none)."""
    if sdf.numel() == 0:
        return sdf.new_zeros(())
    return torch.relu(-sdf).mean() / cell


def sparse_depth_loss(rendered: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, cell: float
                      ) -> torch.Tensor:
    """Mean ``|rendered - target| / cell`` over the ``valid`` entries of depths ``[K]`` (0 for none)."""
    if not bool(valid.any()):
        return rendered.sum() * 0.0
    return (rendered[valid] - target[valid]).abs().mean() / cell
