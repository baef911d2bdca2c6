"""Model cards for the sizes of a staged release, made from the stages' ``evaluation.json``.

A card follows Mitchell et al., "Model Cards for Model Reporting": model details, intended
use, factors, metrics, evaluation data, training data, quantitative analyses, ethical
considerations, caveats and recommendations. It is Markdown with Hugging Face's YAML front
matter (``model-index`` carries perplexity and detection results), so it can be a model
repository's ``README.md``; :func:`write_card` also writes a self-contained HTML page and
the plots. Every number in a card is read from the evaluation; a missing one says
``not measured: <reason>``.
"""

from __future__ import annotations

from pathlib import Path

from gpt2guard.paths import atomic_write_text
from gpt2guard.release.card_family import check_family, family_card_markdown, family_title, order_stages
from gpt2guard.release.card_format import one_line
from gpt2guard.release.card_meta import assemble, card_metadata, model_name
from gpt2guard.release.card_prose import banner
from gpt2guard.release.card_quant import quantitative_lines
from gpt2guard.release.card_sections import SECTION_BODIES

__all__ = ["card_markdown", "family_card_markdown", "write_card", "write_family_card"]

README = "README.md"
HTML = "model-card.html"


def card_markdown(evaluation: dict, plots: dict[str, str] | None = None, *, license: str | None = None) -> str:
    """The model card of one size as Markdown with YAML front matter.

    Parameters
    ----------
    evaluation : dict
        One stage's ``evaluation.json`` (schema ``gpt2guard.release.evaluation/1``).
    plots : dict of str to str, optional
        Plot name -> path relative to the card (``detection_by_sampling``, ``auroc_by_length``,
        ``transfer``, ``perplexity``; others are appended); shown as Markdown images.
    license : str, optional
        The ``license`` metadata (default: ``model.license`` of the evaluation, else ``mit``).

    Returns
    -------
    str
        The card's text.
    """
    evaluation = one_line(evaluation)
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


def write_card(evaluation: dict, out_dir) -> dict[str, Path]:
    """Write ``README.md``, ``model-card.html`` and ``plots/*.png`` for one size.

    Returns
    -------
    dict of str to pathlib.Path
        Path relative to ``out_dir`` (``README.md``, ``plots/perplexity.png``...) -> path.
    """
    from gpt2guard.release.card_plots import write_plots

    plots = write_plots(evaluation, Path(out_dir) / "plots")
    return _write(lambda rel: card_markdown(evaluation, rel), out_dir, plots,
                  f"Model card: {model_name(evaluation)}")


def write_family_card(evaluations: list[dict], out_dir) -> dict[str, Path]:
    """Write the family card (``README.md``, ``model-card.html``, ``plots/*.png``) of a run's stages."""
    from gpt2guard.release.card_plots import write_family_plots

    evaluations = order_stages(evaluations)
    check_family(evaluations)
    plots = write_family_plots(evaluations, Path(out_dir) / "plots")
    return _write(lambda rel: family_card_markdown(evaluations, rel), out_dir, plots, family_title(evaluations))
