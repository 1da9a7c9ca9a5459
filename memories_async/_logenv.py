"""``MEMORIES_LOG``: the ``memories_async`` logger on stderr without any logging setup.

``MEMORIES_LOG=info`` (or ``debug``) gives the ``memories_async`` logger that level and
a handler writing to stderr, unless it has a handler already (the application's
own logging setup, or the command line's ``-v``, wins; the package's ``NullHandler``
does not count). Read once, when the first
client is built; empty or unset means nothing is changed. Any other value raises
:class:`~memories_async.ConfigError` there, as a malformed ``MEMORIES_*`` setting does.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Final

from ._errors import ConfigError

ENV_LOG: Final = "MEMORIES_LOG"
LEVELS: Final = {"info": logging.INFO, "debug": logging.DEBUG}

_done = False


def configure_logging_from_env() -> None:
    """Apply ``MEMORIES_LOG`` once per process (a bad value raises every time it is read)."""
    global _done  # noqa: PLW0603 - once per process
    if _done:
        return
    value = os.environ.get(ENV_LOG, "").strip()
    if value:
        level = LEVELS.get(value.lower())
        if level is None:
            raise ConfigError(
                f"{ENV_LOG} must be 'info' or 'debug' (or empty for no logging), got {value!r}"
            )
        logger = logging.getLogger("memories_async")
        # The package's own NullHandler does not count: it only keeps logging quiet.
        if all(isinstance(handler, logging.NullHandler) for handler in logger.handlers):
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(
                logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
            )
            logger.addHandler(handler)
            logger.setLevel(level)
    _done = True
