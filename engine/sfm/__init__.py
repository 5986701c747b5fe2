"""Photos without poses: structure-from-motion (COLMAP), an upright frame, the object's box and masks.

``poses.recover_poses`` is the entry point (``python -m engine poses``); see its module docstring.
``object_hints.find_object_hints`` reuses the same steps for posed views without masks: where the
object and its table are, as a start for mask-free NeuS.
"""
