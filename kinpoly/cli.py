"""The ``kinpoly`` command: a thin layer that registers each stage's own commands.

Each pipeline stage keeps its commands in ``kinpoly/<stage>/commands.py`` (a click command or
group); this file only wires them together, so stages stay independent.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from .errors import Group

# (command name, module, attribute): imported lazily so `kinpoly --help` stays fast and a
# stage whose optional dependencies are missing does not break the others.
_COMMANDS = [
    ("motion", "kinpoly.motion.commands", "motion"),
    ("render", "kinpoly.visualization.commands", "render"),
    ("view", "kinpoly.visualization.commands", "view"),
    ("eval", "kinpoly.evaluation.commands", "eval_command"),
    ("uhc", "kinpoly.simulation.commands", "uhc"),
    ("ego", "kinpoly.egocentric.commands", "ego"),
    ("train", "kinpoly.policy.commands", "train"),
    ("estimate", "kinpoly.policy.commands", "estimate_command"),
    ("stream", "kinpoly.policy.commands", "stream_command"),
    ("demo", "kinpoly.demo", "demo"),
]


class _LazyGroup(Group):  # Group: bad input ends any command with its message, not a traceback
    def list_commands(self, ctx):
        return [name for name, _, _ in _COMMANDS]

    def get_command(self, ctx, name):
        for cmd_name, module, attr in _COMMANDS:
            if cmd_name == name:
                try:
                    return getattr(importlib.import_module(module), attr)
                except (ImportError, AttributeError) as e:  # a stage whose dependencies are missing
                    why = f"kinpoly {name}: unavailable ({e})"
                    return click.Command(name, help=f"(unavailable: {e})", callback=lambda: sys.exit(why))
        return None


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="kinpoly")
def main(verbose: int) -> None:
    """kinpoly: physically plausible egocentric pose and human-object interaction estimation."""
    logging.basicConfig(level=[logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)],
                        format="%(levelname)s %(name)s: %(message)s")


if __name__ == "__main__":
    main()
