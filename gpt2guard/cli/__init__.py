"""The ``gpt2guard`` command line: thin click commands over the library.

Every command module imports only click at import time, so ``gpt2guard --help`` is instant;
torch and transformers load inside the commands that need a model.
"""

from __future__ import annotations

import os

import click

from gpt2guard import __version__
from gpt2guard.errors import GuardError


class UserError(click.ClickException):
    """A GuardError on its way out: one line on stderr, a non-zero exit, no traceback."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


class GuardGroup(click.Group):
    """A click group that turns errors a user can cause into one line and an exit code."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except GuardError as exc:
            raise UserError(str(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            raise UserError("interrupted: finished work is kept; run the same command again to resume", 130) from None
        except click.exceptions.NoArgsIsHelpError:
            raise  # a group called without a command shows its help
        except click.UsageError as exc:
            # a bad option value or a clash of options: one line naming the option, and where help is
            command = exc.ctx.command_path if exc.ctx is not None else ctx.command_path
            message = " ".join(exc.format_message().split())
            raise UserError(f"{message} (see '{command} --help')", exc.exit_code) from None
        except OSError as exc:
            # the environment refused: a missing or unreadable path, a full disk, a read-only directory
            raise UserError(os_error_line(exc)) from None


def os_error_line(exc: OSError) -> str:
    """One line for an OSError: its reason and the path it concerns."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    return f"{reason}: {' -> '.join(paths)}" if paths else reason


@click.group(cls=GuardGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="gpt2guard")
@click.option("--cache-dir", type=click.Path(file_okay=False), envvar="GPT2GUARD_CACHE",
              help="Where builtin families and hashes are cached [env GPT2GUARD_CACHE; default ~/.cache/gpt2guard].")
@click.option("--weights-dir", type=click.Path(file_okay=False), envvar="GPT2GUARD_WEIGHTS",
              help="Directory of local GPT-2 checkpoints in Hugging Face format, one subdirectory per size "
                   "(gpt2, gpt2-medium, ... or small, medium, ...) [env GPT2GUARD_WEIGHTS].")
def main(cache_dir, weights_dir):
    """gpt2guard: release a GPT-2 family in stages and tell its text from human text.

    Start with `gpt2guard family build nano` (the builtin family, a few minutes on a laptop),
    then see `gpt2guard family list`.
    """
    from gpt2guard.family.load import thread_env_defaults

    thread_env_defaults()  # before any command loads torch: waiting threads sleep, not spin
    if cache_dir:
        os.environ["GPT2GUARD_CACHE"] = cache_dir
    if weights_dir:
        os.environ["GPT2GUARD_WEIGHTS"] = weights_dir


def _register() -> None:
    from gpt2guard.cli.datasets import datasets
    from gpt2guard.cli.family import family
    from gpt2guard.cli.detector import detector
    from gpt2guard.cli.generate import generate
    from gpt2guard.cli.release import release
    from gpt2guard.cli.score import score
    from gpt2guard.cli.serve import serve
    from gpt2guard.cli.watermark import watermark

    main.add_command(family)
    main.add_command(datasets)
    main.add_command(generate)
    main.add_command(score)
    main.add_command(detector)
    main.add_command(release)
    main.add_command(serve)
    main.add_command(watermark)


_register()
