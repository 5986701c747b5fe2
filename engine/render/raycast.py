"""Closest-hit ray casting against a triangle mesh, on a Warp BVH (CPU or CUDA, following torch)."""

from __future__ import annotations

import math

import torch
import warp as wp

from ..utils.stdio import stdout_to_stderr

_warp_ready = False


def _init_warp() -> None:
    """Initialise Warp once, without a word on stdout (the engine's stdout carries its JSON output).

    Warp's banner and module-load notices are info-level log messages, silenced by the log level;
    anything the native runtime would still print to stdout during ``wp.init`` goes to stderr.
    """
    global _warp_ready  # noqa: PLW0603 -- one lazy initialisation per process
    if _warp_ready:
        return
    wp.config.log_level = max(wp.config.log_level, wp.LOG_WARNING)
    with stdout_to_stderr():
        wp.init()
    _warp_ready = True


def _torch_stream(device: torch.device) -> wp.ScopedStream:
    """A scope that runs Warp work on torch's current stream of ``device`` (a no-op on the CPU)."""
    return wp.ScopedStream(wp.stream_from_torch(device) if device.type == "cuda" else None)


@wp.kernel
def _cast_kernel(  # noqa: PLR0917 -- Warp kernels take positional arguments
    mesh: wp.uint64,
    origins: wp.array(dtype=wp.vec3),
    dirs: wp.array(dtype=wp.vec3),
    max_t: float,
    face_id: wp.array(dtype=wp.int64),
    hit_t: wp.array(dtype=float),
):
    i = wp.tid()
    hit = wp.mesh_query_ray(mesh, origins[i], dirs[i], max_t)
    if hit.result and hit.t > 0.0:
        face_id[i] = wp.int64(hit.face)
        hit_t[i] = hit.t
    else:
        face_id[i] = wp.int64(-1)
        hit_t[i] = wp.inf


class RayCaster:
    """A BVH over a fixed triangle mesh, for closest-hit queries of many rays at once.

    Built once from ``verts [V, 3]`` (any float dtype, cast to float32; gradients are not tracked) and
    ``faces [F, 3]`` (vertex indices), on the device of ``verts``: Warp's CPU device for a CPU tensor,
    the matching CUDA device for a CUDA tensor. Triangles are double-sided (no backface culling).
    """

    def __init__(self, verts: torch.Tensor, faces: torch.Tensor) -> None:
        _init_warp()
        self.device = verts.device
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        self._wp_device = wp.device_from_torch(self.device)
        # The Warp mesh aliases these tensors: keep them alive as long as the mesh.
        self._points = verts.detach().to(torch.float32).contiguous()  # [V, 3]
        self._indices = faces.to(device=verts.device, dtype=torch.int32).reshape(-1).contiguous()  # [3F]
        self._mesh = None  # Warp cannot build (or query) a mesh without faces: every ray misses
        if faces.shape[0] > 0:
            with _torch_stream(self.device):
                self._mesh = wp.Mesh(
                    points=wp.from_torch(self._points, dtype=wp.vec3),
                    indices=wp.from_torch(self._indices, dtype=wp.int32),
                )

    def cast(
        self, origins: torch.Tensor, dirs: torch.Tensor, max_t: float = math.inf
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The closest hit of every ray.

        Args:
            origins: ``[P, 3]`` ray origins, in the mesh's frame (world space for the engine).
            dirs: ``[P, 3]`` ray directions in the same frame; need not be unit, but ``t`` is measured
                in multiples of their length.
            max_t: only hits with ``0 < t < max_t`` count.
        Returns:
            ``face_id [P]`` int64, the index of the hit face or -1 for a miss, and ``t [P]`` float32,
            the hit distance along the ray (``origin + t * dir`` is the hit point; ``inf`` for a miss).
            Both on the caster's device.
        """
        count = origins.shape[0]
        origins = origins.detach().to(self.device, torch.float32).contiguous()  # [P, 3]
        dirs = dirs.detach().to(self.device, torch.float32).contiguous()  # [P, 3]
        if count == 0 or self._mesh is None:
            face_id = torch.full((count,), -1, dtype=torch.int64, device=self.device)  # [P]
            return face_id, torch.full((count,), math.inf, dtype=torch.float32, device=self.device)
        face_id = torch.empty(count, dtype=torch.int64, device=self.device)  # [P]
        hit_t = torch.empty(count, dtype=torch.float32, device=self.device)  # [P]
        with _torch_stream(self.device):
            wp.launch(
                _cast_kernel,
                dim=count,
                inputs=[
                    self._mesh.id,
                    wp.from_torch(origins, dtype=wp.vec3),
                    wp.from_torch(dirs, dtype=wp.vec3),
                    float(max_t),
                    wp.from_torch(face_id),
                    wp.from_torch(hit_t),
                ],
                device=self._wp_device,
            )
        return face_id, hit_t
