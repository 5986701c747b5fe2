"""Photos without poses: structure-from-motion (COLMAP), an upright frame, the object's box and masks.

``poses.recover_poses`` is the entry point (``python -m engine poses``); see its module docstring.
"""
