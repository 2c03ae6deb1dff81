"""The package logger. Notices go to stderr through logging (visible by default at WARNING)."""

import contextlib
import logging
from collections.abc import Iterator

logger = logging.getLogger("cnnlab")


def notice(message: str) -> None:
    """Tell the user about something cnnlab decided on their behalf (one line)."""
    logger.warning(message)


@contextlib.contextmanager
def quiet(*names: str) -> Iterator[None]:
    """Only errors from the named loggers (``""``: the root logger) inside the block."""
    loggers = [logging.getLogger(n or None) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
