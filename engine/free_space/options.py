"""The options of the free-space evidence, shared by the methods that use it (DMTet and NeuS)."""

from __future__ import annotations

from dataclasses import dataclass

from ..options import MeshOptions, option


@dataclass(frozen=True)
class FreeSpaceOptions(MeshOptions):
    """What the images say is empty, as options of an optimizing method (see :mod:`engine.free_space`)."""

    sight_carve: bool = option(True, "Open the start where the cameras see, through it, points triangulated "
                               "across the views (hollows that no silhouette shows).")
    photo_carve: bool = option(False, "Also carve the start's surface voxels that the views see in different "
                               "colours (space carving), round by round.")
    photo_threshold: float = option(0.06, "Colour disagreement (median distance to the median colour, RGB in "
                                    "[0, 1]) above which photo carving removes a voxel.", min=0.0, max=1.0)
    free_space_weight: float = option(1.0, "Weight of the loss that keeps the SDF positive where the lines of "
                                      "sight show empty space (0: off).", min=0.0)
    sparse_depth_weight: float = option(0.0, "Weight of the L1 between the rendered depth and the depth of the "
                                        "triangulated points along their lines of sight, in cells (0: off).",
                                        min=0.0)

    def wants_points(self) -> bool:
        """Whether anything needs the triangulated points."""
        return self.sight_carve or self.free_space_weight > 0 or self.sparse_depth_weight > 0
