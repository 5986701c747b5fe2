"""Interpolation of per-vertex attributes over rasterised pixels."""

from __future__ import annotations

import torch

from .rasterize import Fragments


def interpolate(attributes: torch.Tensor, faces: torch.Tensor, frags: Fragments) -> torch.Tensor:
    """Per-vertex attributes interpolated at every pixel centre with the perspective-correct barycentrics.

    Args:
        attributes: ``[V, C]`` one value per vertex (positions, normals, UVs, colours...).
        faces: ``[F, 3]`` vertex indices of the triangles (the ones ``frags`` was rasterised with).
        frags: :class:`~.rasterize.Fragments` of ``N`` views of ``H x W`` pixels.
    Returns:
        ``[N, H, W, C]`` interpolated attributes, 0 on background pixels. Differentiable with respect to
        ``attributes`` and, through ``frags.bary``, to the vertex positions.
    """
    n, h, w = frags.face_id.shape
    face_id = frags.face_id.reshape(-1)  # [NHW]
    hit = (face_id >= 0).nonzero()[:, 0]  # [P] covered pixels
    corners = faces.to(attributes.device, torch.long)[face_id[hit]]  # [P, 3]
    bary = frags.bary.reshape(-1, 3)[hit].to(attributes.dtype)  # [P, 3]
    values = torch.einsum("pk,pkc->pc", bary, attributes[corners])  # [P, C]
    out = attributes.new_zeros(n * h * w, attributes.shape[1]).index_copy(0, hit, values)  # [NHW, C]
    return out.reshape(n, h, w, -1)
