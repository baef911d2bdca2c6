"""Model cards for the sizes of a staged release, made from the stages' ``evaluation.json``.

A card follows Mitchell et al., "Model Cards for Model Reporting": model details, intended
use, factors, metrics, evaluation data, training data, quantitative analyses, ethical
considerations, caveats and recommendations. It is Markdown with Hugging Face's YAML front
matter (``model-index`` carries perplexity and detection results), so it can be a model
repository's ``README.md``; :func:`write_card` also writes a self-contained HTML page and
the plots. Every number in a card is read from the evaluation; a missing one says
``not measured: <reason>``. A stage of several sizes gets one card per size
(:func:`write_stage_cards`), each with that size's parameters, digests and sample sets.
"""

from __future__ import annotations

from pathlib import Path

from gpt2guard.paths import atomic_write_text
from gpt2guard.release.card_family import check_family, family_card_markdown, family_title, order_stages
from gpt2guard.release.card_detect import size_of, stage_sizes
from gpt2guard.release.card_format import one_line
from gpt2guard.release.card_meta import assemble, card_metadata, model_name
from gpt2guard.release.card_prose import banner
from gpt2guard.release.card_quant import quantitative_lines
from gpt2guard.release.card_sections import SECTION_BODIES
from gpt2guard.release.card_size import expand, size_view

__all__ = ["card_layout", "card_markdown", "family_card_markdown", "write_card", "write_family_card",
           "write_stage_cards"]

README = "README.md"
HTML = "model-card.html"


def _view(evaluation: dict, size: str | None) -> dict:
    size = size or size_of(evaluation)
    return size_view(evaluation, size) if size and stage_sizes(evaluation) else evaluation


def card_markdown(evaluation: dict, plots: dict[str, str] | None = None, *, size: str | None = None,
                  license: str | None = None) -> str:
    """The model card of one size as Markdown with YAML front matter.

    Parameters
    ----------
    evaluation : dict
        One stage's ``evaluation.json`` (schema ``gpt2guard.release.evaluation/1``).
    plots : dict of str to str, optional
        Plot name -> path relative to the card (``detection_by_sampling``, ``auroc_by_length``,
        ``transfer``, ``perplexity``; others are appended); shown as Markdown images.
    size : str, optional
        Which of the stage's sizes (default ``model.size``): its parameters, digests and
        sample sets (:func:`~gpt2guard.release.card_size.size_view`).
    license : str, optional
        The ``license`` metadata (default: ``model.license`` of the evaluation, else ``mit``).

    Returns
    -------
    str
        The card's text.
    """
    evaluation = _view(one_line(evaluation), size)
    return assemble(card_metadata(evaluation, license), f"Model card: {model_name(evaluation)}", banner(evaluation),
                    lambda section: (quantitative_lines(evaluation, plots) if section == "Quantitative analyses"
                                     else SECTION_BODIES[section](evaluation)))


def _write(markdown_fn, out_dir, plots: dict[str, Path], title: str) -> dict[str, Path]:
    from gpt2guard.release.card_html import render_html

    out = Path(out_dir)
    rel = {name: path.relative_to(out).as_posix() for name, path in plots.items()}
    text = markdown_fn(rel)
    atomic_write_text(out / README, text)
    atomic_write_text(out / HTML, render_html(text, base_dir=out, title=title))
    return {README: out / README, HTML: out / HTML, **{rel[n]: p for n, p in plots.items()}}


def write_card(evaluation: dict, out_dir, *, size: str | None = None) -> dict[str, Path]:
    """Write ``README.md``, ``model-card.html`` and ``plots/*.png`` for one size of a stage.

    Returns
    -------
    dict of str to pathlib.Path
        Path relative to ``out_dir`` (``README.md``, ``plots/perplexity.png``...) -> path.
    """
    from gpt2guard.release.card_plots import write_plots

    view = _view(one_line(evaluation), size)
    plots = write_plots(view, Path(out_dir) / "plots")
    return _write(lambda rel: card_markdown(view, rel), out_dir, plots, f"Model card: {model_name(view)}")


def card_layout(evaluation: dict) -> dict[str, str]:
    """Size -> the card's directory relative to a stage's ``card/``: ``.`` when the stage has
    one size (the card is ``card/README.md``), else one directory per size
    (``card/<size>/README.md``)."""
    sizes = stage_sizes(evaluation)
    return {sizes[0]: "."} if len(sizes) == 1 else {z: z for z in sizes}


def write_stage_cards(evaluation: dict, card_dir) -> dict[str, dict[str, Path]]:
    """Write the card of every size of a stage under ``card_dir`` (layout: :func:`card_layout`).

    Returns
    -------
    dict
        Size -> what :func:`write_card` wrote for it.
    """
    card_dir = Path(card_dir)
    return {z: write_card(evaluation, card_dir / sub, size=z) for z, sub in card_layout(evaluation).items()}


def write_family_card(evaluations: list[dict], out_dir) -> dict[str, Path]:
    """Write the family card (``README.md``, ``model-card.html``, ``plots/*.png``) of a run's stages."""
    from gpt2guard.release.card_plots import write_family_plots

    evaluations = order_stages([one_line(e) for e in evaluations])
    check_family(evaluations)
    views = expand(evaluations)
    plots = write_family_plots(views, Path(out_dir) / "plots")
    return _write(lambda rel: family_card_markdown(evaluations, rel), out_dir, plots, family_title(evaluations))
