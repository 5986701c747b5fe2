"""Exceptions that carry a message meant for the user, not a traceback."""


class MeshliftError(Exception):
    """A problem the user can fix (bad input, missing files, impossible settings).

    The command line and the worker print its message as is, without a traceback.
    """


class InputError(MeshliftError):
    """The dataset or the job description is unusable."""


class Cancelled(Exception):
    """The user asked to stop; raised from progress callbacks and caught at the top level."""
