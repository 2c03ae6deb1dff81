"""The package logger. Notices go to stderr through logging (visible by default at WARNING)."""

import logging

logger = logging.getLogger("cnnlab")


def notice(message: str) -> None:
    """Tell the user about something cnnlab decided on their behalf (one line)."""
    logger.warning(message)
