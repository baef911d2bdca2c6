"""Options shared by several commands."""

from __future__ import annotations

import click

PROGRESS = click.option(
    "--progress/--no-progress", default=True, show_default=True,
    help="Progress bars on stderr while it is a terminal (never in a pipe or a log file); --no-progress: none.")
