"""Named loss terms: their weighted sum, and their record for the progress stream and the report.

An optimizing method computes its terms as a ``{name: scalar tensor}`` dict each step, sums them
with :func:`weighted_sum` (weights from its typed options) and hands them to a :class:`LossLog`,
which sends the latest values with the progress events and keeps the mean of the last steps for
``report.json``. Adding a loss is one dict entry and one weight.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from .data.dataset import DatasetSplit


def descend(total: torch.Tensor, *optimizers: torch.optim.Optimizer) -> None:
    """One optimization step of every optimizer on the scalar ``total``: clear their gradients,
    backpropagate ``total``, step them in order."""
    for optimizer in optimizers:
        optimizer.zero_grad(set_to_none=True)
    total.backward()
    for optimizer in optimizers:
        optimizer.step()


def weighted_sum(losses: dict[str, torch.Tensor], weights: dict[str, float]) -> torch.Tensor:
    """``sum(weights[name] * losses[name])`` over the terms of ``losses``, in their order (a term
    without a weight counts once)."""
    total = None
    for name, value in losses.items():
        term = weights.get(name, 1.0) * value
        total = term if total is None else total + term
    if total is None:
        raise ValueError("no loss terms")
    return total


class LossLog:
    """The named, unweighted loss terms of one optimizing stage of ``steps`` steps.

    :meth:`add` takes each step's terms; values stay tensors on their device (no synchronization
    per step). :meth:`latest` gives the last step's as floats (for a progress event);
    :meth:`summary` the mean over the last ``tail`` share of the steps (for the report).
    """

    def __init__(self, steps: int, tail: float = 0.1) -> None:
        self.tail_from = steps - max(1, round(steps * tail))
        self._last: dict[str, torch.Tensor] = {}
        self._sums: dict[str, torch.Tensor] = {}
        self._counts: dict[str, int] = {}

    def add(self, step: int, losses: dict[str, torch.Tensor]) -> None:
        """Record the terms of ``step`` (0-based)."""
        self._last = {name: value.detach() for name, value in losses.items()}
        if step >= self.tail_from:
            for name, value in self._last.items():
                self._sums[name] = self._sums[name] + value if name in self._sums else value.clone()
                self._counts[name] = self._counts.get(name, 0) + 1

    def latest(self) -> dict[str, float]:
        """The last recorded step's terms (rounded to 6 significant digits)."""
        return {name: float(f"{float(value):.6g}") for name, value in self._last.items()}

    def summary(self) -> dict[str, float]:
        """Each term's mean over the recorded tail steps (rounded to 6 significant digits)."""
        return {name: float(f"{float(total) / self._counts[name]:.6g}") for name, total in self._sums.items()}


def depth_normal_losses(depth: torch.Tensor, target_depth: torch.Tensor | None, normals: torch.Tensor,
                        target_normals: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """The 2.5D supervision terms of rendered samples (pixels or rays, ``[P]``) against the views'
    depth and normal maps: ``depth``, the L1 between ``depth [P]`` and ``target_depth [P]`` where the
    target has a depth (> 0); ``normal``, the mean ``1 - cos`` between ``normals [P, 3]`` and the unit
    ``target_normals [P, 3]`` where the target has a normal (not 0). A target that is ``None`` (the
    dataset has no such maps) gives no term; one without a valid sample gives 0."""
    terms: dict[str, torch.Tensor] = {}
    if target_depth is not None:
        valid = target_depth > 0
        terms["depth"] = (depth[valid] - target_depth[valid]).abs().sum() / valid.sum().clamp_min(1)
    if target_normals is not None:
        valid = target_normals.abs().sum(-1) > 0
        cosine = (normals[valid] * target_normals[valid]).sum(-1)
        terms["normal"] = (1.0 - cosine).sum() / valid.sum().clamp_min(1)
    return terms


def without_off_maps(split: DatasetSplit, depth_weight: float, normal_weight: float) -> DatasetSplit:
    """``split`` without the depth (normal) maps when ``depth_weight`` (``normal_weight``) is 0, so
    that a term turned off is not computed at all."""
    return replace(split, depths=split.depths if depth_weight > 0 else None,
                   normals=split.normals if normal_weight > 0 else None)
