"""The options that choose a zero-shot method's direction, shared by ``score`` and ``serve``.

They are kept in the click context (``ctx.meta``), not passed as arguments, so a command
takes them with one decorator; :func:`direction_options` reads them back as keyword
arguments of :func:`~gpt2guard.detector.build.build_detector`.
"""

from __future__ import annotations

import click

_KEY = "gpt2guard.direction"


def _keep(ctx, param, value):
    ctx.meta.setdefault(_KEY, {})[param.name] = value
    return value


def _option(*decls, **attrs):
    return click.option(*decls, expose_value=False, callback=_keep, **attrs)


_OPTIONS = [
    _option("--direction", type=click.Choice(["auto", "higher", "lower", "two-sided"]), default="auto",
            show_default=True,
            help="For --method: which scores are machine-like. auto: learned from --labelled documents, else "
                 "two-sided (atypical for human text either way, --fpr split between the tails); higher: the "
                 "method's premise, if you know it holds. See docs/detector.md, 'Without the generator's "
                 "weights'."),
    _option("--suspect", metavar="FAMILY",
            help="The family suspected of writing the text [default: gpt2]: a scorer of another family is "
                 "warned about, unless --labelled documents show the direction."),
    _option("--labelled", "labelled_dirs", multiple=True, type=click.Path(file_okay=False, exists=True),
            help="Directory of labelled sets (repeatable): learn the direction on their human and machine "
                 "documents (AUROC with a bootstrap interval) and calibrate the threshold on their human ones."),
    _option("--human", "labelled_human", default="builtin", show_default=True,
            help="With --labelled: the human set's name."),
    _option("--machine", "labelled_machine", multiple=True,
            help="With --labelled: a machine set's name (repeatable; default every other set with the split)."),
    _option("--labelled-split", default="valid", show_default=True,
            help="With --labelled: the split to read (not one the scorer was trained on)."),
]


def direction_option_group(f):
    """Add the direction options to a command."""
    for option in reversed(_OPTIONS):
        f = option(f)
    return f


def direction_options(ctx: click.Context | None = None) -> dict:
    """``direction``, ``suspect`` and ``labelled`` (a :class:`~gpt2guard.detector.labelled.Labelled`
    read from ``--labelled`` directories, or None) for
    :func:`~gpt2guard.detector.build.build_detector`. Options of the labelled sets without
    ``--labelled`` are a usage error."""
    from gpt2guard.cli.params import flag, given

    ctx = ctx or click.get_current_context()
    kept = ctx.meta.get(_KEY, {})
    out = {"direction": kept.get("direction") or "auto", "suspect": kept.get("suspect"), "labelled": None}
    dirs = kept.get("labelled_dirs") or ()
    if not dirs:
        stray = [n for n in ("labelled_human", "labelled_machine", "labelled_split") if given(ctx, n)]
        if stray:
            raise click.UsageError(f"{flag(ctx, stray[0])} names labelled sets: give their directory with --labelled",
                                   ctx)
        return out
    from gpt2guard.detector.labelled import load_labelled

    out["labelled"] = load_labelled(list(dirs), kept.get("labelled_human") or "builtin",
                                    list(kept.get("labelled_machine") or ()) or None,
                                    kept.get("labelled_split") or "valid")
    return out


def refuse_with_detector(ctx: click.Context) -> None:
    """A usage error for direction options beside ``--detector`` (a trained detector learned its direction)."""
    from gpt2guard.cli.params import refuse_together

    refuse_together(ctx, "detector", ["direction", "suspect", "labelled_dirs"],
                    "a saved detector learned its direction in training")
    refuse_together(ctx, "threshold", ["labelled_dirs"], "--labelled calibrates a threshold; --threshold sets one")
