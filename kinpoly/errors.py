"""The one exception type every stage raises for bad input.

Each stage has its own subclass (``ClipError``, ``ConfigError``, ``MotionFormatError``,
``ReferenceError``, ...) whose message names the file, clip or key at fault. The ``kinpoly``
command prints such a message as a one-line error, never as a traceback; anything else that
escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input from the user: a missing or malformed file, a clip that cannot be used, an
    unknown setting. A ``ValueError``, so callers that catch those keep working."""
