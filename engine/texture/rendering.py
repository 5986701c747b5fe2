"""Render a :class:`TexturedMesh` at given cameras (for PSNR, previews and benchmark pictures)."""

from __future__ import annotations

import torch

from ..cameras import Cameras
from ..render import antialias, interpolate, rasterize, sample_texture
from .textured_mesh import TexturedMesh


def render_textured(
    mesh: TexturedMesh, cameras: Cameras, background: float = 1.0, chunk: int = 8
) -> torch.Tensor:
    """Images of the textured mesh over a uniform background.

    Rasterize → interpolate UVs → sample the texture (bilinear) → composite over ``background`` →
    antialias the silhouettes. No lighting: the texture holds the final (sRGB) colours.

    Args:
        mesh: the mesh, in the world frame of ``cameras``.
        cameras: ``N`` cameras; computed on their device.
        background: grey level in [0, 1] of the background.
        chunk: views rendered at a time (bounds the memory of the intermediate buffers).
    Returns:
        ``[N, H, W, 3]`` float32 sRGB colours in [0, 1], on the cameras' device.
    """
    device = cameras.device
    verts = torch.as_tensor(mesh.vertices, dtype=torch.float32, device=device)  # [V, 3]
    faces = torch.as_tensor(mesh.faces, dtype=torch.long, device=device)  # [F, 3]
    uvs = torch.as_tensor(mesh.uvs, dtype=torch.float32, device=device)  # [V, 2]
    texture = torch.tensor(mesh.texture, dtype=torch.float32, device=device) / 255.0  # [Ht, Wt, 3]
    images = []
    for start in range(0, len(cameras), chunk):
        views = cameras[start:start + chunk]
        frags = rasterize(verts, faces, views)
        colour = sample_texture(texture, interpolate(uvs, faces, frags))  # [n, H, W, 3]
        colour = torch.where(frags.face_id[..., None] >= 0, colour, torch.full_like(colour, background))
        images.append(antialias(colour, frags, verts, faces, views).clamp(0.0, 1.0))
    return torch.cat(images) if images else torch.zeros(0, cameras.height, cameras.width, 3, device=device)
