"""The engine's one camera model.

Convention (the NeRF-synthetic / Blender / OpenGL one, used everywhere inside the engine):

* ``c2w`` is the camera-to-world matrix. In camera space the camera looks down **-Z**, **+Y** is up
  and **+X** is right.
* Pixel coordinates ``(px, py)`` are continuous: ``px`` grows to the right along a row, ``py`` grows
  *downwards* along a column, and the centre of pixel ``(row i, column j)`` is at
  ``(px, py) = (j + 0.5, i + 0.5)``.
* Intrinsics ``fx, fy, cx, cy`` are in pixels. A camera-space point ``(x, y, z)`` with depth
  ``d = -z > 0`` projects to ``px = cx + fx * x / d`` and ``py = cy - fy * y / d``.

OpenCV / COLMAP cameras (camera looks down +Z, +Y down, world-to-camera ``[R|t]``) are converted
only at the edges, with :meth:`Cameras.to_opencv` and :meth:`Cameras.from_opencv`; the two
conventions differ by a flip of the camera's Y and Z axes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Camera axes OpenGL -> OpenCV: flip Y and Z. Its own inverse.
_FLIP_YZ = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64))


@dataclass
class Cameras:
    """A batch of ``N`` pinhole cameras sharing one image size.

    Attributes:
        c2w: ``[N, 4, 4]`` camera-to-world matrices (OpenGL convention, see module docstring).
        fx, fy, cx, cy: ``[N]`` intrinsics in pixels.
        width, height: image size in pixels.
    """

    c2w: torch.Tensor
    fx: torch.Tensor
    fy: torch.Tensor
    cx: torch.Tensor
    cy: torch.Tensor
    width: int
    height: int

    def __len__(self) -> int:
        return self.c2w.shape[0]

    @property
    def device(self) -> torch.device:
        return self.c2w.device

    def to(self, device: torch.device | str) -> Cameras:
        return Cameras(
            self.c2w.to(device), self.fx.to(device), self.fy.to(device),
            self.cx.to(device), self.cy.to(device), self.width, self.height,
        )

    def __getitem__(self, index: torch.Tensor | slice | list[int] | int) -> Cameras:
        """The cameras at ``index`` (an int keeps the batch dimension)."""
        if isinstance(index, int):
            index = slice(index, index + 1)
        return Cameras(
            self.c2w[index], self.fx[index], self.fy[index],
            self.cx[index], self.cy[index], self.width, self.height,
        )

    def scaled(self, factor: float) -> Cameras:
        """The same cameras for images resized by ``factor`` (e.g. 0.5 halves each side).

        The new size is rounded; the intrinsics scale with the exact per-axis ratio so that the
        image borders stay where they were.
        """
        width = max(1, round(self.width * factor))
        height = max(1, round(self.height * factor))
        sx, sy = width / self.width, height / self.height
        return Cameras(self.c2w, self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, width, height)

    @property
    def centers(self) -> torch.Tensor:
        """``[N, 3]`` camera centres in world space."""
        return self.c2w[:, :3, 3]

    @property
    def forward(self) -> torch.Tensor:
        """``[N, 3]`` unit viewing directions (the camera's -Z axis) in world space."""
        return -self.c2w[:, :3, 2]

    def world_to_camera(self) -> torch.Tensor:
        """``[N, 4, 4]`` world-to-camera matrices (OpenGL camera space). Assumes rigid ``c2w``."""
        rot = self.c2w[:, :3, :3]
        w2c = torch.zeros_like(self.c2w)
        w2c[:, :3, :3] = rot.transpose(1, 2)
        w2c[:, :3, 3] = -(rot.transpose(1, 2) @ self.c2w[:, :3, 3:4])[..., 0]
        w2c[:, 3, 3] = 1.0
        return w2c

    def to_camera_space(self, points: torch.Tensor) -> torch.Tensor:
        """World points ``[P, 3]`` -> camera-space points ``[N, P, 3]`` (OpenGL camera space)."""
        w2c = self.world_to_camera().to(points.dtype)
        return points[None] @ w2c[:, :3, :3].transpose(1, 2) + w2c[:, None, :3, 3]

    def project(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Project world points into every camera.

        Args:
            points: ``[P, 3]`` world-space points.
        Returns:
            ``pixels [N, P, 2]`` continuous pixel coordinates ``(px, py)`` and ``depth [N, P]``
            (distance along the viewing axis; positive in front of the camera). Points at or
            behind the camera get non-positive depth and meaningless pixels.
        """
        cam = self.to_camera_space(points)  # [N, P, 3]
        depth = -cam[..., 2]
        safe = torch.where(depth.abs() > 1e-12, depth, torch.full_like(depth, 1e-12))
        px = self.cx[:, None] + self.fx[:, None] * cam[..., 0] / safe
        py = self.cy[:, None] - self.fy[:, None] * cam[..., 1] / safe
        return torch.stack([px, py], dim=-1), depth

    def pixel_directions(self) -> torch.Tensor:
        """``[N, H, W, 3]`` world-space unit directions of the rays through every pixel centre."""
        device, dtype = self.c2w.device, self.c2w.dtype
        py, px = torch.meshgrid(
            torch.arange(self.height, device=device, dtype=dtype) + 0.5,
            torch.arange(self.width, device=device, dtype=dtype) + 0.5,
            indexing="ij",
        )
        d_cam = self._camera_directions(px[None], py[None], (slice(None), None, None))  # [N, H, W, 3]
        d_world = torch.einsum("nij,nhwj->nhwi", self.c2w[:, :3, :3], d_cam)
        return torch.nn.functional.normalize(d_world, dim=-1)

    def unproject(self, depth: torch.Tensor) -> torch.Tensor:
        """``[N, H, W, 3]`` world points seen at every pixel centre at ``depth [N, H, W]`` (along the
        optical axis, camera-space ``-z``); where the depth is 0 the point is the camera centre."""
        directions = self.pixel_directions().to(depth.dtype)  # [N, H, W, 3] unit
        along = (directions * self.forward.to(depth.dtype)[:, None, None]).sum(-1)  # [N, H, W] cosine to the axis
        return self.centers.to(depth.dtype)[:, None, None] + directions * (depth / along)[..., None]

    def rays(self, view: torch.Tensor, column: torch.Tensor, row: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(origins [R, 3], unit directions [R, 3])`` in world space of the rays through the pixel
        centres ``(column, row)`` (``[R]`` integers) of the views ``view [R]``."""
        d_cam = self._camera_directions(column.to(self.fx.dtype) + 0.5, row.to(self.fx.dtype) + 0.5, view)
        directions = torch.einsum("rij,rj->ri", self.c2w[view, :3, :3], d_cam)
        return self.c2w[view, :3, 3], torch.nn.functional.normalize(directions, dim=-1)

    def _camera_directions(self, px: torch.Tensor, py: torch.Tensor, index: object) -> torch.Tensor:
        """``[..., 3]`` camera-space directions (``z = -1``) through the continuous pixel positions
        ``px, py``, with the intrinsics ``fx[index]`` etc. (broadcast against ``px``)."""
        x = (px - self.cx[index]) / self.fx[index]
        y = -(py - self.cy[index]) / self.fy[index]
        return torch.stack([x, y, -torch.ones_like(x)], dim=-1)

    def intrinsics(self) -> torch.Tensor:
        """``[N, 3, 3]`` pinhole matrices ``K``. ``K`` is shared by both conventions."""
        k = torch.zeros(len(self), 3, 3, dtype=self.fx.dtype, device=self.fx.device)
        k[:, 0, 0], k[:, 1, 1] = self.fx, self.fy
        k[:, 0, 2], k[:, 1, 2] = self.cx, self.cy
        k[:, 2, 2] = 1.0
        return k

    def to_opencv(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(w2c [N, 4, 4], K [N, 3, 3])`` in the OpenCV/COLMAP convention (+Z forward, +Y down).

        With these, ``K @ (w2c @ X)[:3]`` divided by its last coordinate gives the same pixel
        coordinates ``(px, py)`` as :meth:`project` (COLMAP also puts pixel centres at +0.5).
        """
        flip = _FLIP_YZ.to(self.c2w)
        return flip @ self.world_to_camera(), self.intrinsics()

    @staticmethod
    def from_opencv(w2c: torch.Tensor, k: torch.Tensor, width: int, height: int) -> Cameras:
        """Cameras from OpenCV/COLMAP world-to-camera ``[N, 4, 4]`` (or ``[N, 3, 4]``) and ``K [N, 3, 3]``."""
        if w2c.shape[-2] == 3:
            bottom = torch.tensor([0, 0, 0, 1], dtype=w2c.dtype, device=w2c.device).expand(w2c.shape[0], 1, 4)
            w2c = torch.cat([w2c, bottom], dim=1)
        c2w = torch.linalg.inv(w2c) @ _FLIP_YZ.to(w2c)
        return Cameras(c2w, k[:, 0, 0], k[:, 1, 1], k[:, 0, 2], k[:, 1, 2], width, height)
