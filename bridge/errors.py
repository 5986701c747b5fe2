"""The add-on's one user-error type."""


class UserError(Exception):
    """Something the user can fix (no usable engine Python, bad cameras, a folder without poses,
    a job already running, ...); the message says what and how, and the operators report it as is,
    without a traceback. Raised by ``bridge/`` and ``operators/`` alike."""
