"""The one exception type every stage raises for bad input.

Each stage has its own subclass (``ClipError``, ``ConfigError``, ``MotionFormatError``,
``ReferenceError``, ...) whose message names the file, clip or key at fault. The ``kinpoly``
command prints such a message as a one-line error, never as a traceback (every stage's
commands are :class:`Command` or :class:`Group`); anything else that escapes is a bug and keeps
its traceback.
"""

from __future__ import annotations

import click


class InputError(ValueError):
    """Bad input from the user: a missing or malformed file, a clip that cannot be used, an
    unknown setting. A ``ValueError``, so callers that catch those keep working."""


class _ReportsInputErrors:
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (InputError, FileNotFoundError) as e:
            raise click.ClickException(str(e)) from None


class Command(_ReportsInputErrors, click.Command):
    """A click command that ends with the message of bad input (:class:`InputError`) or a
    missing file (``Error: ...``, exit status 1) instead of a traceback."""


class Group(_ReportsInputErrors, click.Group):
    """A click group that does the same for every command under it."""
