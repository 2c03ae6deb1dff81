"""User-facing errors.

Anything a user can cause (a bad name, a bad file, an impossible shape) raises :class:`CnnlabError`
with a one-line message that names the bad value and the fix. The CLI prints that line and exits
with code 2, without a traceback.
"""


class CnnlabError(Exception):
    """An error caused by user input; its message is one line and says how to fix it."""


class CheckpointError(CnnlabError):
    """A checkpoint file that cannot be read or does not fit the model."""
