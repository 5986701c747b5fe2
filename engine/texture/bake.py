"""Bake the training images into a texture: project every texel into every view and average.

Each texel of the UV layout is a point on the surface. For every view, the texel's colour sample
is the image at its projection, weighted by ``cos(normal, to-camera) ** COS_POWER`` (views that see
the surface squarely are sharper and better lit) times the mask alpha there (texels projecting off
the object contribute nothing), and kept only where the camera sees the texel unobstructed: its
depth along the camera's axis is at most the view's depth map there (the mesh ray-cast through every
pixel centre, interpolated bilinearly at the texel's projection; background counts as far away, so a
texel on the object's outline stays visible while one just behind a nearer part does not). Texels
no view sees take the colour of the nearest seen texel on the surface (in 3D); texels outside the
charts take the colour of the nearest chart texel, so no seams or dark borders show under bilinear
filtering and mip-mapping.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import distance_transform_edt
from scipy.spatial import cKDTree

from ..cameras import Cameras
from ..data.dataset import DatasetSplit
from ..render import RayCaster

COS_POWER = 4.0
# Views seeing the surface more obliquely than this (cosine) are ignored.
MIN_COS = 0.05
# A texel is visible when it is at most this far (fraction of the mesh's bounding-box diagonal)
# behind the view's depth map.
VISIBILITY_EPS = 1e-3
# The depth given to background pixels of the depth maps (world units): farther than any texel.
FAR = 1e6
# Texels whose summed weight is below this count as unseen.
MIN_WEIGHT = 1e-6
# Barycentric tolerance of the texel coverage test (texel centres on shared edges are kept).
INSIDE_TOL = 1e-6
# Bounds the temporary (texel, triangle) pairs of the UV rasterization.
RASTER_PAIRS = 1 << 22


def bake_from_images(
    vertices: np.ndarray,
    faces: np.ndarray,
    uvs: np.ndarray,
    normals: np.ndarray,
    *,
    split: DatasetSplit,
    texture_size: int,
    on_step: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Texture colours for a UV-unwrapped mesh, from posed images.

    Args:
        vertices: ``[V, 3]`` positions in the world frame of ``split.cameras``.
        faces: ``[F, 3]`` vertex indices.
        uvs: ``[V, 2]`` texture coordinates in [0, 1], OBJ convention (v up).
        normals: ``[V, 3]`` unit vertex normals (outward).
        split: the views; ``images`` and ``masks`` are sampled bilinearly. Computed on their device.
        texture_size: side of the square texture in texels.
        on_step: called as ``on_step(views_done, n_views)`` after each view; it may raise to cancel
            (the exception propagates).
    Returns:
        ``[texture_size, texture_size, 3]`` uint8 colours, row 0 at the top (v = 1), every texel
        filled.
    """
    device = split.images.device
    verts_t = torch.as_tensor(np.asarray(vertices, dtype=np.float32), device=device)  # [V, 3]
    faces_t = torch.as_tensor(np.asarray(faces, dtype=np.int64), device=device)  # [F, 3]
    uvs_t = torch.as_tensor(np.asarray(uvs, dtype=np.float32), device=device)  # [V, 2]
    normals_t = torch.as_tensor(np.asarray(normals, dtype=np.float32), device=device)  # [V, 3]

    texel, face, bary = rasterize_uv(uvs_t, faces_t, texture_size)  # [P], [P], [P, 3]
    corners = faces_t[face]  # [P, 3]
    points = (verts_t[corners] * bary[..., None]).sum(1)  # [P, 3]
    point_normals = F.normalize((normals_t[corners] * bary[..., None]).sum(1), dim=-1)  # [P, 3]

    eps = VISIBILITY_EPS * float((verts_t.amax(0) - verts_t.amin(0)).norm())
    colours, seen = average_views(split, points, point_normals, RayCaster(verts_t, faces_t), eps=eps,
                                  on_step=on_step)
    return fill_texture(texel.cpu().numpy(), points.cpu().numpy(), colours.cpu().numpy(), texture_size,
                        seen=seen.cpu().numpy())


def average_views(
    split: DatasetSplit,
    points: torch.Tensor,
    normals: torch.Tensor,
    caster: RayCaster,
    *,
    eps: float,
    on_step: Callable[[int, int], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(colours [P, 3], seen [P])``: the weighted mean of what the views show at the surface
    ``points [P, 3]`` with unit ``normals [P, 3]`` (:func:`view_samples`, each view's depth map from
    ``caster``'s mesh), and whether any view saw each point; ``on_step`` as :func:`bake_from_images`'s."""
    accum = torch.zeros(len(points), 4, device=points.device)  # [P, 4] weighted RGB, weight
    for i in range(len(split)):
        seen_here = view_samples(split, i, points, normals, depth=view_depth(caster, split.cameras[i]), eps=eps)
        if seen_here is not None:
            index, colour, weight = seen_here
            accum.index_add_(0, index, torch.cat([colour * weight[:, None], weight[:, None]], dim=-1).to(accum.dtype))
        if on_step is not None:
            on_step(i + 1, len(split))
    return accum[:, :3] / accum[:, 3:].clamp_min(MIN_WEIGHT), accum[:, 3] > MIN_WEIGHT


def bake_from_field(
    vertices: np.ndarray,
    faces: np.ndarray,
    uvs: np.ndarray,
    *,
    colour: Callable[[np.ndarray], np.ndarray],
    texture_size: int,
) -> np.ndarray:
    """Texture colours for a UV-unwrapped mesh from a colour field (e.g. a learned albedo).

    Args:
        vertices: ``[V, 3]`` positions; ``faces [F, 3]``; ``uvs [V, 2]`` (OBJ convention).
        colour: maps surface points ``[P, 3]`` (in the frame of ``vertices``) to colours ``[P, 3]``
            in [0, 1].
        texture_size: side of the square texture in texels.
    Returns:
        ``[texture_size, texture_size, 3]`` uint8, row 0 at the top, charts dilated like
        :func:`bake_from_images`.
    """
    verts_t = torch.as_tensor(np.asarray(vertices, dtype=np.float32))  # [V, 3]
    faces_t = torch.as_tensor(np.asarray(faces, dtype=np.int64))  # [F, 3]
    texel, face, bary = rasterize_uv(torch.as_tensor(np.asarray(uvs, dtype=np.float32)), faces_t, texture_size)
    points = (verts_t[faces_t[face]] * bary[..., None]).sum(1).numpy()  # [P, 3]
    colours = np.asarray(colour(points), dtype=np.float32)  # [P, 3]
    return fill_texture(texel.numpy(), points, colours, texture_size)


def rasterize_uv(
    uvs: torch.Tensor, faces: torch.Tensor, size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The texels whose centres lie in a triangle of the UV layout.

    Texel ``(row r, column c)`` of a ``size x size`` image has its centre at
    ``u = (c + 0.5) / size``, ``v = 1 - (r + 0.5) / size`` (row 0 at the top).

    Args:
        uvs: ``[V, 2]`` texture coordinates (OBJ convention).
        faces: ``[F, 3]`` long vertex indices.
        size: texture side in texels.
    Returns:
        ``texel [P]`` long flat indices ``r * size + c`` (each at most once), ``face [P]`` long
        triangle covering it, ``bary [P, 3]`` float32 barycentric coordinates of its centre.
    """
    # Triangle corners in texel coordinates (x = column axis, y = row axis): [F, 3, 2].
    tri = torch.stack([uvs[:, 0] * size, (1.0 - uvs[:, 1]) * size], dim=-1)[faces]
    lo = torch.ceil(tri.min(1).values - 0.5).clamp(0, size - 1).long()  # [F, 2] first covered column/row
    hi = torch.floor(tri.max(1).values - 0.5).clamp(0, size - 1).long()  # [F, 2] last
    span = (hi - lo + 1).clamp_min(0)  # [F, 2]
    count = span[:, 0] * span[:, 1]  # [F] candidate texels per triangle

    owner = torch.full((size * size,), -1, dtype=torch.long, device=uvs.device)
    bounds = torch.cumsum(count, 0)
    start = 0
    while start < len(faces):
        # A run of triangles with at most RASTER_PAIRS candidate texels (at least one triangle).
        base = int(bounds[start - 1]) if start else 0
        stop = max(int(torch.searchsorted(bounds, base + RASTER_PAIRS, right=True)), start + 1)
        ids = torch.arange(start, stop, device=uvs.device)
        face = torch.repeat_interleave(ids, count[start:stop])  # [Q]
        first = torch.cumsum(count[start:stop], 0) - count[start:stop]
        local = torch.arange(len(face), device=uvs.device) - torch.repeat_interleave(first, count[start:stop])
        col = lo[face, 0] + local % span[face, 0]
        row = lo[face, 1] + torch.div(local, span[face, 0], rounding_mode="floor")
        centre = torch.stack([col, row], dim=-1).float() + 0.5  # [Q, 2]
        inside = (_barycentric(tri[face], centre) >= -INSIDE_TOL).all(-1)
        owner[row[inside] * size + col[inside]] = face[inside]
        start = stop

    texel = torch.nonzero(owner >= 0)[:, 0]  # [P]
    face = owner[texel]
    centre = torch.stack([texel % size, torch.div(texel, size, rounding_mode="floor")], dim=-1).float() + 0.5
    bary = _barycentric(tri[face], centre).clamp_min(0.0)
    return texel, face, bary / bary.sum(-1, keepdim=True).clamp_min(1e-12)


def _barycentric(tri: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Barycentric coordinates ``[Q, 3]`` of 2D points ``p [Q, 2]`` in triangles ``tri [Q, 3, 2]``.

    Degenerate triangles give ``-1`` (outside) everywhere.
    """
    e1, e2, d = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], p - tri[:, 0]
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    ok = det.abs() > 1e-12
    det = torch.where(ok, det, torch.ones_like(det))
    b1 = (d[:, 0] * e2[:, 1] - d[:, 1] * e2[:, 0]) / det
    b2 = (e1[:, 0] * d[:, 1] - e1[:, 1] * d[:, 0]) / det
    bary = torch.stack([1.0 - b1 - b2, b1, b2], dim=-1)
    return torch.where(ok[:, None], bary, torch.full_like(bary, -1.0))


def view_depth(caster: RayCaster, camera: Cameras) -> torch.Tensor:
    """``[H, W]`` depth along the axis of one ``camera`` of the mesh in ``caster``, ray-cast through
    every pixel centre; :data:`FAR` where the ray misses."""
    directions = camera.pixel_directions()[0].to(device=caster.device, dtype=torch.float32)  # [H, W, 3]
    origins = camera.centers[0].to(directions).expand_as(directions)
    face, distance = caster.cast(origins.reshape(-1, 3).contiguous(), directions.reshape(-1, 3).contiguous())
    along = (directions * camera.forward[0].to(directions)).sum(-1).reshape(-1)  # cosine to the axis
    return torch.where(face >= 0, distance * along, FAR).reshape(camera.height, camera.width)


def view_samples(
    split: DatasetSplit,
    index: int,
    points: torch.Tensor,
    normals: torch.Tensor,
    *,
    depth: torch.Tensor,
    eps: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """What view ``index`` shows of the surface ``points [P, 3]`` with unit ``normals [P, 3]``, where it
    sees them (facing it, on its image, inside its mask, not behind its depth map ``depth [H, W]``
    along its axis, :data:`FAR` on background, by more than ``eps``).

    Returns:
        ``(seen [K] long indices into points, colours [K, 3] the image there (sRGB, bilinear),
        weights [K] cos(normal, to-camera) ** COS_POWER times the mask's alpha)``, or ``None`` when
        the view sees none of them.
    """
    camera = split.cameras[index]
    centre = camera.centers[0].to(points)  # [3]
    to_camera = centre - points  # [P, 3]
    distance = to_camera.norm(dim=-1).clamp_min(1e-12)  # [P]
    cos = (normals * to_camera).sum(-1) / distance  # [P]
    pixels, depth_along = camera.project(points)  # [1, P, 2], [1, P]
    candidate = torch.nonzero((cos > MIN_COS) & (depth_along[0] > 0))[:, 0]  # [K]
    if len(candidate) == 0:
        return None

    image = split.images[index]  # [H, W, 3]
    alpha = torch.ones_like(image[..., :1]) if split.masks is None else split.masks[index][..., None]
    rgba = torch.cat([image * alpha, alpha], dim=-1).permute(2, 0, 1)[None]  # [1, 4, H, W] premultiplied
    size = torch.tensor([camera.width, camera.height], dtype=points.dtype, device=points.device)
    grid = (pixels[0, candidate] / size * 2.0 - 1.0)[None, None].to(rgba.dtype)  # [1, 1, K, 2]
    sample = F.grid_sample(rgba, grid, mode="bilinear", align_corners=False)[0, :, 0].T  # [K, 4], 0 off the image
    front = F.grid_sample(depth[None, None].to(rgba.dtype), grid, mode="bilinear", padding_mode="border",
                          align_corners=False)[0, 0, 0]  # [K]
    visible = (sample[:, 3] > 0) & (depth_along[0, candidate] <= front + eps)
    candidate, sample = candidate[visible], sample[visible].to(points.dtype)
    if len(candidate) == 0:
        return None
    return candidate, sample[:, :3] / sample[:, 3:], cos[candidate].pow(COS_POWER) * sample[:, 3]


def fill_texture(
    texel: np.ndarray, points: np.ndarray, colours: np.ndarray, size: int, seen: np.ndarray | None = None
) -> np.ndarray:
    """The full ``[size, size, C]`` uint8 texture from the covered texels' values.

    ``texel [P]`` flat indices, ``points [P, 3]`` their surface points, ``colours [P, C]`` in [0, 1],
    ``seen [P]`` whether any view saw them (default: all). Unseen covered texels copy the nearest seen
    texel on the surface (3D); texels outside the charts copy the nearest covered texel in the image.
    """
    colours = np.asarray(colours, dtype=np.float32).reshape(len(texel), -1)
    seen = np.ones(len(texel), dtype=bool) if seen is None else seen
    if not seen.any():
        return np.full((size, size, colours.shape[1]), 128, dtype=np.uint8)
    if not seen.all():
        _, nearest = cKDTree(points[seen]).query(points[~seen], workers=-1)
        colours[~seen] = colours[seen][nearest]
    image = np.zeros((size * size, colours.shape[1]), dtype=np.float32)
    image[texel] = colours
    covered = np.zeros(size * size, dtype=bool)
    covered[texel] = True
    outside = ~covered.reshape(size, size)
    rows, cols = distance_transform_edt(outside, return_distances=False, return_indices=True)  # [size, size]
    image = image.reshape(size, size, -1)[rows, cols]
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
