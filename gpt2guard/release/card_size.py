"""One size's view of a stage's evaluation, so a stage of several sizes gets a card per size.

A stage's ``evaluation.json`` records every size it measured: ``stage.sizes``, each size's
own details under ``models`` (parameters, weights and tokenizer digests, training facts),
and detection per size and sampling method. :func:`size_view` picks one size out: its
``model`` block and only its sample sets; the detection figures are then read for that size
(:mod:`gpt2guard.release.card_detect`). Gates, decision, tier, perplexity and transfer stay
the stage's.
"""

from __future__ import annotations

import copy

from gpt2guard.errors import GuardError
from gpt2guard.release.card_detect import size_of, stage_sizes
from gpt2guard.release.card_format import get


def size_view(evaluation: dict, size: str) -> dict:
    """The evaluation as the card of ``size`` reads it.

    Raises
    ------
    GuardError
        When the stage did not measure ``size``.
    """
    sizes = stage_sizes(evaluation)
    if size not in sizes:
        raise GuardError(f"size {size!r} is not in this stage (sizes: {', '.join(sizes) or 'none'})")
    view = copy.deepcopy(evaluation)
    models = evaluation.get("models") if isinstance(evaluation.get("models"), dict) else {}
    if isinstance(models.get(size), dict):
        view["model"] = copy.deepcopy(models[size])
    elif size_of(evaluation) != size:  # an evaluation without per-size details: say only what is known
        view["model"] = {"family": get(evaluation, "model", "family"), "size": size}
    view["model"]["size"] = size
    data = view.get("data")
    if isinstance(data, dict) and isinstance(data.get("samples"), list):
        data["samples"] = [s for s in data["samples"] if not isinstance(s, dict) or s.get("size") in (None, size)]
    return view


def size_views(evaluation: dict) -> list[dict]:
    """:func:`size_view` of every size of the stage, in the stage's order."""
    return [size_view(evaluation, z) for z in stage_sizes(evaluation)]


def expand(evaluations: list[dict]) -> list[dict]:
    """Every stage's size views, stage after stage."""
    return [v for e in evaluations for v in size_views(e)]
