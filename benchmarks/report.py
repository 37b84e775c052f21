"""How every benchmark script records its result: the command that ran it, and the result as
JSON written atomically (a killed run leaves the previous file, never half of a new one)."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

from kinpoly.motion.clip import atomic_write_text


def command_line(script: str, argv: list[str] | None = None, env: str = "") -> str:
    """``[env ]python benchmarks/<script's name> <arguments>``, the arguments those of this run
    (``argv``, or the process's own) quoted as a shell would need them."""
    args = sys.argv[1:] if argv is None else [str(a) for a in argv]
    return f"{env + ' ' if env else ''}python benchmarks/{Path(script).name} {shlex.join(args)}".rstrip()


def write_json(path: str | os.PathLike | None, result: dict, echo: bool = False) -> str:
    """``result`` as indented JSON (numpy scalars as floats): printed when ``echo``, written to
    ``path`` atomically when one is given. Returns the text."""
    text = json.dumps(result, indent=1, default=float) + "\n"
    if echo:
        print(text, end="", flush=True)
    if path:
        atomic_write_text(path, text)
    return text
