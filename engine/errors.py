"""The engine's two exceptions: a problem the user can fix, and a cancel."""


class InputError(Exception):
    """A problem the user can fix (bad input, missing files, impossible settings).

    The command line and the worker print its message as is, without a traceback, and exit with
    ``engine.protocol.EXIT_BAD_INPUT``. It is the engine's only user-error type.
    """


class Cancelled(Exception):
    """The user asked to stop; raised from progress callbacks and caught at the top level."""
