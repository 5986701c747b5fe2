"""Analytic silhouette antialiasing: the step that gives coverage a gradient with respect to the vertices."""

from __future__ import annotations

import torch

from ..cameras import Cameras
from .rasterize import Fragments


def antialias(
    color: torch.Tensor, frags: Fragments, verts: torch.Tensor, faces: torch.Tensor, cameras: Cameras
) -> torch.Tensor:
    """Blend colours across the silhouette edges that pass between neighbouring pixel centres.

    For every horizontally or vertically adjacent pair of pixels seen through different faces, the front
    one (the covered one next to background, else the one with the smaller depth) is checked for a
    silhouette edge of its face (a mesh boundary edge, or one between a face turned towards the camera
    and one turned away) crossing the segment between the two pixel centres in screen space. Horizontal
    pairs take the mostly vertical edges on screen, vertical pairs the mostly horizontal ones, so each
    edge is counted once. With the crossing at ``t`` in ``[0, 1]`` along the segment from the front
    pixel's centre, the other pixel moves ``(t - 0.5)+`` of the way towards the front pixel's colour, the
    front pixel ``(0.5 - t)+`` of the way towards the other's. The crossing is computed from vertices
    projected with torch, so the output is differentiable with respect to ``verts`` (the coverage gradient
    the rasteriser itself lacks) as well as ``color``.

    Assumes consistently wound faces. Faces with a vertex at or behind a camera are skipped in that view.

    Args:
        color: ``[N, H, W, C]`` shaded images (background included).
        frags: :class:`~.rasterize.Fragments` of these views.
        verts: ``[V, 3]`` world-space vertex positions, the ones ``frags`` was rasterised from.
        faces: ``[F, 3]`` vertex indices of the triangles.
        cameras: the ``N`` cameras of the views.
    Returns:
        ``[N, H, W, C]`` antialiased images.
    """
    n, h, w, c = color.shape
    faces = faces.to(verts.device, torch.long)
    cameras = cameras.to(verts.device)
    screen, vert_depth = cameras.project(verts)  # [N, V, 2] pixels, [N, V] depth
    usable = (vert_depth[:, faces] > 0).all(-1)  # [N, F] faces wholly in front of the camera
    edge_of_face, silhouette = _silhouette_edges(verts.detach(), faces, cameras)  # [F, 3], [N, E]
    usable_edge = silhouette[:, edge_of_face] & usable[..., None]  # [N, F, 3]

    flat = color.reshape(n * h * w, c)  # [NHW, C]
    face_id = frags.face_id.reshape(-1)  # [NHW]
    depth = frags.depth.detach().reshape(-1)  # [NHW]
    pixel = torch.arange(n * h * w, device=color.device).reshape(n, h, w)  # [N, H, W] flat indices
    neighbours = [  # along = 0: horizontal pairs (for mostly vertical edges); along = 1: vertical pairs
        (pixel[:, :, :-1].reshape(-1), pixel[:, :, 1:].reshape(-1)),
        (pixel[:, :-1, :].reshape(-1), pixel[:, 1:, :].reshape(-1)),
    ]
    out = flat
    for along, (left_or_top, right_or_bottom) in enumerate(neighbours):
        differ = face_id[left_or_top] != face_id[right_or_bottom]
        first, second = left_or_top[differ], right_or_bottom[differ]  # [P]
        first_front = (face_id[second] < 0) | ((face_id[first] >= 0) & (depth[first] <= depth[second]))
        front = torch.where(first_front, first, second)  # [P]
        other = torch.where(first_front, second, first)  # [P]
        to_other, to_front = _blend_weights(
            front, other, face_id=frags.face_id, screen=screen, faces=faces, usable_edge=usable_edge,
            along=along,
        )
        diff = flat[front] - flat[other]  # [P, C]
        out = out.index_add(0, other, to_other.to(diff.dtype)[:, None] * diff)
        out = out.index_add(0, front, -to_front.to(diff.dtype)[:, None] * diff)
    return out.reshape(n, h, w, c)


def _silhouette_edges(
    verts: torch.Tensor, faces: torch.Tensor, cameras: Cameras
) -> tuple[torch.Tensor, torch.Tensor]:
    """The mesh's edges and which of them are silhouettes in each view.

    Returns:
        ``edge_of_face [F, 3]``: the index of edge ``k`` (from corner ``k`` to corner ``k + 1``) of every
        face; ``silhouette [N, E]``: whether the edge bounds the mesh, or in that view separates faces
        turned towards the camera from faces turned away.
    """
    ends = torch.stack([faces, faces.roll(-1, dims=1)], dim=-1)  # [F, 3, 2]
    key = ends.min(-1).values * verts.shape[0] + ends.max(-1).values  # [F, 3] undirected edge key
    _, edge_of_face = torch.unique(key, return_inverse=True)  # [F, 3]
    edge_count = int(edge_of_face.max()) + 1 if faces.numel() else 0
    faces_per_edge = torch.bincount(edge_of_face.reshape(-1), minlength=edge_count)  # [E]

    v0, v1, v2 = verts[faces].unbind(1)  # 3 x [F, 3]
    normal = torch.linalg.cross(v1 - v0, v2 - v0)  # [F, 3]
    centers = cameras.centers.to(verts.dtype)  # [N, 3]
    facing = (centers @ normal.T - (normal * v0).sum(-1)) > 0  # [N, F] camera on the normal's side
    facing_per_edge = torch.zeros(len(cameras), edge_count, dtype=torch.long, device=verts.device)
    facing_per_edge.index_add_(1, edge_of_face.reshape(-1), facing.long().repeat_interleave(3, dim=1))
    mixed = (facing_per_edge > 0) & (facing_per_edge < faces_per_edge)  # [N, E]
    return edge_of_face, mixed | (faces_per_edge == 1)


def _blend_weights(
    front: torch.Tensor,
    other: torch.Tensor,
    *,
    face_id: torch.Tensor,
    screen: torch.Tensor,
    faces: torch.Tensor,
    usable_edge: torch.Tensor,
    along: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(to_other [P], to_front [P])`` blend weights of pixel pairs neighbouring along screen axis ``along``.

    ``front``, ``other``: ``[P]`` flat pixel indices into ``face_id [N, H, W]``; ``screen``: ``[N, V, 2]``
    projected vertices; ``usable_edge``: ``[N, F, 3]`` which face edges may blend in each view.
    """
    _, h, w = face_id.shape
    face_id = face_id.reshape(-1)  # [NHW]
    across = 1 - along
    view = front // (h * w)  # [P]
    centre = torch.stack([front % w, front // w % h], dim=-1).to(screen.dtype) + 0.5  # [P, 2] (px, py)
    step = (other % w - front % w) if along == 0 else (other // w % h - front // w % h)  # [P] +-1
    face = face_id[front]  # [P]
    start = screen[view[:, None], faces[face]]  # [P, 3, 2] edge k starts at corner k...
    end = start.roll(-1, dims=1)  # [P, 3, 2] ...and ends at corner k + 1
    line = centre[:, None, across]  # [P, 1] the pixel row (or column) the pair lies on
    d_along = end[..., along] - start[..., along]  # [P, 3]
    d_across = end[..., across] - start[..., across]  # [P, 3]
    straddles = (start[..., across] <= line) != (end[..., across] <= line)  # [P, 3]
    # The edge must run mostly across the pairs' axis; ties (45 degrees on screen) go to horizontal pairs.
    runs_across = d_along.abs() <= d_across.abs() if along == 0 else d_along.abs() < d_across.abs()
    safe = torch.where(straddles, d_across, torch.ones_like(d_across))
    crossing = start[..., along] + (line - start[..., across]) * d_along / safe  # [P, 3]
    t = (crossing - centre[:, None, along]) * step[:, None]  # [P, 3] from the front centre
    valid = straddles & runs_across & (t >= 0) & (t <= 1) & usable_edge[view, face]
    zero = torch.zeros_like(t)
    to_other = torch.where(valid, (t - 0.5).clamp(min=0), zero).sum(-1)  # [P]
    to_front = torch.where(valid, (0.5 - t).clamp(min=0), zero).sum(-1)  # [P]
    return to_other, to_front
