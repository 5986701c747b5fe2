"""Free space from the images: what a visual hull fills but the views show empty.

A visual hull keeps every hollow that all silhouettes cover (the inside of a cup, a bowl, a box, a
shoe), and a method that refines it keeps it filled: the lid it puts over the opening wears the
inside's colours, and nothing in the silhouettes says otherwise. The images do say otherwise, in
two ways, and this package gathers both as a method's start and as loss terms:

* :mod:`.points`: features triangulated across the given cameras (held fixed). The segment
  between a camera and a point it sees is empty, so :mod:`.carve` opens the hull along it.
* :mod:`.photo`: photo-consistent space carving: a voxel the views see in different colours is
  not on the surface.
* :mod:`.start`: the carved start at a method's lattice, the raw hull (where the surface may still
  go) and the nodes known to be empty.
* :mod:`.losses`: ``free_space`` (the SDF positive where the lines of sight cross) and
  ``sparse_depth`` (the rendered depth at a point's pixel equal to the point's).
* :mod:`.options`: :class:`FreeSpaceOptions`, the options DMTet and NeuS share.

Everything works in the unit volume (cameras of ``MethodInput.split``). Numbers: BENCHMARKS.md,
"Concavities, issue 18".
"""

from .options import FreeSpaceOptions
from .points import SparsePoints, triangulate
from .start import HOLLOW_SHARE, CarvedStart, FreeSpace, carved_start, find_free_space

__all__ = ["HOLLOW_SHARE", "CarvedStart", "FreeSpace", "FreeSpaceOptions", "SparsePoints", "carved_start",
           "find_free_space", "triangulate"]
