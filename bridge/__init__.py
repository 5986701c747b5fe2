"""The add-on's bpy-free side: everything between Blender and the engine's worker process.

* :mod:`.worker_process` starts ``python -m engine worker JOB.json`` and reads its JSON lines
  without blocking (a reader thread only pushes parsed lines into a queue);
* :mod:`.interpreter` finds a Python that can run the engine and asks it what it offers;
* :mod:`.objfile` reads the OBJ/MTL the engine writes into numpy arrays;
* :mod:`.camera_math` turns Blender camera settings into ``transforms.json`` intrinsics;
* :mod:`.errors` holds the add-on's one user-error type.

Nothing here imports ``bpy`` or torch. Of the engine only its torch-free protocol module
(``engine/protocol.py``: job fields, event types, exit codes, safe names) is imported, so the tests
exercise this package in any Python, as a subpackage of the extension.
"""

from pathlib import Path

# The extension's root folder: the working directory of ``python -m engine`` (``engine/`` is inside).
EXTENSION_ROOT = Path(__file__).resolve().parent.parent
