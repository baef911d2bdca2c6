"""Option value types shared by the commands: values that make no sense are refused by name.

Each type is a :class:`click.ParamType`, so a bad value ends as click's usage error naming
the option (``Invalid value for '--fpr': ...``) and a non-zero exit, never as a NaN or a
negative count silently carried into the library. Nothing here imports more than click at
import time, so ``gpt2guard --help`` stays instant.
"""

from __future__ import annotations

import math
import re

import click

#: Largest seed: scikit-learn's ``random_state`` and NumPy's legacy seeding stop at 2**32 - 1.
MAX_SEED = 2**32 - 1
#: Fewest bootstrap resamples of a 95% percentile interval: with fewer than 40 no resample
#: falls in each 2.5% tail.
MIN_BOOT = 40


class FiniteFloat(click.ParamType):
    """A float that is not NaN or infinite, optionally within bounds.

    Parameters
    ----------
    low, high : float, optional
        Bounds; ``None`` leaves that side open.
    low_open, high_open : bool
        Whether the bound itself is excluded.
    what : str
        Name of the quantity in the error message.
    """

    name = "number"

    def __init__(self, low: float | None = None, high: float | None = None, *, low_open: bool = False,
                 high_open: bool = False, what: str = "a number"):
        self.low, self.high, self.low_open, self.high_open, self.what = low, high, low_open, high_open, what

    def _range(self) -> str:
        lo = "" if self.low is None else f"{self.low:g} {'<' if self.low_open else '<='} "
        hi = "" if self.high is None else f" {'<' if self.high_open else '<='} {self.high:g}"
        return f"{lo}x{hi}"

    def convert(self, value, param, ctx):
        if isinstance(value, float) and math.isfinite(value):
            x = value
        else:
            try:
                x = float(value)
            except (TypeError, ValueError):
                self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(x):
            self.fail(f"{value!r} is not a finite number ({self.what})", param, ctx)
        if self.low is not None and (x < self.low or (self.low_open and x == self.low)) or \
                self.high is not None and (x > self.high or (self.high_open and x == self.high)):
            self.fail(f"{x:g} is out of range: {self.what} must satisfy {self._range()}", param, ctx)
        return x

    def __repr__(self) -> str:
        return f"FiniteFloat({self._range()})"


#: A false-positive (or other) rate strictly between 0 and 1.
RATE = FiniteFloat(0.0, 1.0, low_open=True, high_open=True, what="a rate")
#: A similarity or probability in [0, 1].
UNIT = FiniteFloat(0.0, 1.0, what="a fraction")
#: A threshold on a score: any finite number.
THRESHOLD = FiniteFloat(what="a threshold")
#: Seeds of NumPy, torch and scikit-learn alike.
SEED = click.IntRange(0, MAX_SEED)
#: Counts that must be at least one (documents, tokens, batch sizes).
POSITIVE = click.IntRange(min=1)
#: Counts that may be zero.
COUNT = click.IntRange(min=0)
#: Amounts that may be zero or fractional (GPUs per worker).
COUNT_FLOAT = FiniteFloat(0.0, what="an amount")
#: Bootstrap resamples.
BOOT = click.IntRange(min=MIN_BOOT)


class Device(click.ParamType):
    """A torch device name: ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.

    Only the spelling is checked here; whether the device exists is checked when a model is
    loaded (:func:`gpt2guard.family.load.pick_device`).
    """

    name = "device"
    PATTERN = re.compile(r"(cpu|mps|cuda(:\d+)?)")

    def convert(self, value, param, ctx):
        v = str(value).strip().lower()
        if not self.PATTERN.fullmatch(v):
            self.fail(f"unknown device {value!r}: use cpu, cuda, cuda:N or mps", param, ctx)
        return v


DEVICE = Device()


class MethodName(click.ParamType):
    """A zero-shot method from the registry (:mod:`gpt2guard.detector.methods`).

    The registry is read only when a method is checked or the help is shown, so importing
    the CLI stays light.
    """

    name = "method"

    @staticmethod
    def names() -> list[str]:
        from gpt2guard.detector.methods import list_methods

        return list_methods()

    def get_metavar(self, param, ctx=None):
        return "[" + "|".join(self.names()) + "]"

    def convert(self, value, param, ctx):
        names = self.names()
        if value not in names:
            self.fail(f"unknown method {value!r}: one of {', '.join(names)}", param, ctx)
        return value

    def shell_complete(self, ctx, param, incomplete):
        from click.shell_completion import CompletionItem

        return [CompletionItem(n) for n in self.names() if n.startswith(incomplete)]


METHOD = MethodName()


def given(ctx: click.Context, name: str) -> bool:
    """Whether option ``name`` was set by the user (command line or environment), not defaulted."""
    from click.core import ParameterSource

    return ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)


def refuse_together(ctx: click.Context, first: str, others, why: str = "") -> None:
    """A usage error if option ``first`` was given together with any of ``others``."""
    clash = [o for o in others if given(ctx, o)]
    if given(ctx, first) and clash:
        raise click.UsageError(f"{flag(ctx, first)} cannot be combined with {', '.join(flag(ctx, o) for o in clash)}"
                               + (f": {why}" if why else ""), ctx)


def flag(ctx: click.Context, name: str) -> str:
    """The long flag (``--format``) of the parameter called ``name`` (``fmt``) in ``ctx``'s command."""
    for p in ctx.command.params:
        if p.name == name:
            return max(p.opts, key=len)
    return "--" + name.replace("_", "-")


class AttackSpecs(click.ParamType):
    """Comma-separated ``name=rate`` attack specs (``homoglyph=1.0,whitespace=0.2``), parsed
    by :func:`gpt2guard.attacks.parse_attacks`; a bad spec is refused naming the option."""

    name = "name=rate,..."

    def convert(self, value, param, ctx):
        if isinstance(value, list):
            return value
        from gpt2guard.attacks import parse_attacks
        from gpt2guard.errors import GuardError

        try:
            return parse_attacks(value)
        except GuardError as exc:
            self.fail(str(exc), param, ctx)


#: Attack specs for ``datasets attack`` and ``detector eval --attacks``.
ATTACK_SPECS = AttackSpecs()
