"""NeuS's model: the SDF, the colour, the background, inv_s and the table plane."""

from __future__ import annotations

import math

import numpy as np
import torch

from ...fields import AlbedoField
from ...fields.sdf import BackgroundField, ColourHead, SDFField
from ...shading.material import PBRMaterial
from .appearance import ViewAppearance
from .options import NeuSOptions


class NeuSModel(torch.nn.Module):
    """Everything that is optimized: the SDF, the colour, the background, ``inv_s``, without masks
    each of the ``views`` images' own affine colour (:mod:`.appearance`) and, when the object
    stands on a known table, that table's height.

    With ``table = (point [3], up [3])`` (unit volume) the table is a second surface: the plane
    through ``point`` with normal ``up``, moved along ``up`` by a learned offset (the located table
    is off by a few thousandths; its texture pins it down). The field then holds the object alone.
    The table has an albedo field of its own (``table_albedo``, read where a ray meets its plane):
    were it the object's, any surface hanging just above the table would wear the table's colours
    for free, and the few views that see under the object could not tell it from the table.
    """

    def __init__(self, opts: NeuSOptions, mask_free: bool, hull_start: bool,
                 table: tuple[np.ndarray, np.ndarray] | None = None, views: int = 0) -> None:
        super().__init__()
        self.sdf = SDFField(levels=opts.levels, finest=opts.finest, table_size=2**opts.log2_table)
        # With material=pbr a learned material and light are shaded in .pbr; the radiance head stays
        # (``radiance_guide``) to shape the surface as it does for baked.
        pbr = opts.material == "pbr"
        head = not pbr or opts.radiance_guide
        self.colour = ColourHead(AlbedoField(levels=opts.levels, finest=opts.finest),
                                 self.sdf.features) if head else None
        self.material = PBRMaterial(opts, levels=opts.levels, finest=opts.finest) if pbr else None
        self.background = BackgroundField() if mask_free else None
        # Photos (no masks) of ``views`` images: each image's own exposure and white balance.
        self.appearance = ViewAppearance(views) if mask_free and opts.view_appearance and views and not pbr else None
        # Started sharp from a hull (of the masks, or of the automatic masks without them), softer
        # from the blind sphere start (the surface has far to go; ``inv_s_init_mask_free``).
        inv_s = opts.inv_s_init if hull_start else opts.inv_s_init_mask_free
        self.log_inv_s = torch.nn.Parameter(torch.tensor(math.log(inv_s)))
        self.has_table = table is not None
        point, up = table if table is not None else (np.zeros(3), np.array([0.0, 0.0, 1.0]))
        self.register_buffer("table_point", torch.tensor(point, dtype=torch.float32))
        self.register_buffer("table_up", torch.tensor(up, dtype=torch.float32))
        self.table_offset = torch.nn.Parameter(torch.zeros(())) if table is not None else None
        self.table_albedo = AlbedoField(levels=opts.levels, finest=opts.finest) if table is not None else None

    def height(self, points: torch.Tensor) -> torch.Tensor:
        """``[...]`` signed distance of ``points [..., 3]`` above the table top (requires a table)."""
        return (points - self.table_point) @ self.table_up - self.table_offset

    def table_colour(self, origins: torch.Tensor, directions: torch.Tensor, far: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(t [R], albedo [R, 3])``: where rays ``[R, 3]`` meet the table top (at most ``far [R]``
        along them) and the table's colour there (requires a table)."""
        t = self.height(origins) / (-(directions @ self.table_up)).clamp_min(1e-6)
        t = torch.minimum(t, far)
        return t, self.table_albedo(origins + directions * t[:, None])
