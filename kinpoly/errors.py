"""The one exception type every stage raises for bad input.

Each stage has its own subclass (``ClipError``, ``ConfigError``, ``MotionFormatError``,
``ReferenceError``, ...) whose message names the file, clip or key at fault. The ``kinpoly``
command prints such a message as a one-line error, never as a traceback (every stage's
commands are :class:`Command` or :class:`Group`); anything else that escapes is a bug and keeps
its traceback.
"""

from __future__ import annotations

import difflib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import click


class InputError(ValueError):
    """Bad input from the user: a missing or malformed file, a clip that cannot be used, an
    unknown setting. A ``ValueError``, so callers that catch those keep working."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices`` to a misspelt ``name``, else ""."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_output(path: str | os.PathLike, *, folder: bool = False, option: str = "--out") -> Path:
    """Check, before any work, that the output ``path`` (a file, or a ``folder``) can be
    written: nothing of the wrong kind is in its place or on the way to it, and the folder
    that will hold it takes a new file (tried with a temporary file, removed at once). Folders
    that do not exist yet are not made here. An :class:`InputError` names the path otherwise."""
    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        raise InputError(f"{path}: is a file, not a folder; give {option} a folder (new or existing)")
    if not folder and path.is_dir():
        raise InputError(f"{path}: a folder; give {option} a file name")
    parent = path if folder else path.parent
    while not parent.exists() and parent != parent.parent:  # the nearest folder that exists
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{path}: cannot be written, {parent} is a file; choose another {option}")
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=".kinpoly-write-test.")
    except OSError as e:
        raise InputError(f"{path}: cannot write in {parent} ({e.strerror or e}); "
                         f"choose another {option}") from None
    os.close(fd)
    os.unlink(probe)
    return path


def _os_error_message(e: OSError) -> str:
    if e.filename is None:  # raised with a message of its own
        return str(e)
    return f"{e.filename2 or e.filename}: {e.strerror or e}"


class WorkerDied(RuntimeError):
    """A worker process ended abruptly (killed, out of memory, a crash in native code); the
    message says what was lost and how to go on."""


class _ReportsInputErrors:
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (InputError, WorkerDied) as e:
            raise click.ClickException(str(e)) from None
        except OSError as e:  # a file the user named: missing, a folder, read-only, ...
            if not isinstance(e, FileNotFoundError) and e.filename is None:
                raise  # not about a path: a bug, keep the traceback
            raise click.ClickException(_os_error_message(e)) from None


class Command(_ReportsInputErrors, click.Command):
    """A click command that ends with the message of bad input (:class:`InputError`) or of a
    file the system refused (missing, a folder, read-only: an ``OSError`` naming it) as
    ``Error: ...``, exit status 1, instead of a traceback."""


class Group(_ReportsInputErrors, click.Group):
    """A click group that does the same for every command under it."""
