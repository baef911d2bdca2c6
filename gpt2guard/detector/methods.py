"""Zero-shot detection methods by name: each maps a :class:`TokenStats` (or its
:class:`TokenSums`) to one float, where higher means "more likely machine-written".

Every method is a function of per-document sums only (:class:`TokenSums`): a full record is
first reduced to its sums in bounded chunks (:meth:`TokenStats.sums`), so a method costs no
float64 temporary of the document's length, and the engine's bounded-memory path, which
never holds per-token arrays, gives the same scores.

=================== ================================================================= ==========
name                score                                                              source
=================== ================================================================= ==========
``logp``            mean log-likelihood :math:`\\frac1n\\sum_i \\log p(x_i)`            [1]_
``rank``            minus the mean rank (1-based)                                      [1]_ [2]_
``logrank``         minus the mean log rank (1-based)                                  [1]_
``entropy``         minus the mean predictive entropy                                  [1]_ [2]_
``gltr``            fraction of tokens in the model's top 10                           [2]_
``lrr``             log-likelihood log-rank ratio :math:`-\\sum\\log p / \\sum\\log r`  [3]_
``fast-detectgpt``  analytic sampling discrepancy, sampling model = scorer             [4]_
``fast-detectgpt-ref`` the same with the reference model as sampling model               [4]_
``binoculars``      minus the Binoculars ratio (reference model needed)                [5]_
=================== ================================================================= ==========

Fast-DetectGPT [4]_: with scoring model :math:`p` and sampling model :math:`q`,
:math:`(\\sum_i \\log p(x_i) - \\sum_i \\mu_i) / \\sqrt{\\sum_i \\sigma_i^2}` where
:math:`\\mu_i = E_{v\\sim q}[\\log p(v)]` and :math:`\\sigma_i^2 = \\mathrm{Var}_{v\\sim q}[\\log p(v)]`.
``fast-detectgpt`` takes :math:`q = p` (the scorer alone, the white-box setting);
``fast-detectgpt-ref`` takes :math:`q` = the reference model (the paper's sampling/scoring
pair: the scorer scores, the reference samples).

Binoculars [5]_: :math:`B = \\log\\mathrm{PPL}_{M_1}(x) / \\log\\mathrm{X\\text{-}PPL}_{M_1,M_2}(x)`
with :math:`\\log\\mathrm{PPL}_{M_1} = -\\frac1n\\sum_i\\log p_{M_1}(x_i)` and
:math:`\\log\\mathrm{X\\text{-}PPL} = \\frac1n\\sum_i -\\sum_v p_{M_2}(v)\\log p_{M_1}(v)`.
The scorer is :math:`M_1`, the model whose log-probabilities enter both numerator and
cross-perplexity; the reference is :math:`M_2`, whose next-token distribution weights the
cross-perplexity. In the paper's words :math:`M_1` is the *observer* and :math:`M_2` the
*performer*: the denominator measures how surprising the performer's predictions are to
the observer. (The authors' released code names the two models the other way round: its
"performer" computes the perplexity and its "observer" supplies the weights; the formula
is the same once the roles above are assigned.) Low :math:`B` means machine, so the score
is :math:`-B`.

References
----------
.. [1] Solaiman et al. 2019, "Release Strategies and the Social Impacts of Language Models";
   Mitchell et al. 2023, "DetectGPT" (baselines).
.. [2] Gehrmann, Strobelt, Rush 2019, "GLTR: Statistical Detection and Visualization of
   Generated Text".
.. [3] Su et al. 2023, "DetectLLM: Leveraging Log Rank Information for Zero-Shot Detection
   of Machine-Generated Text".
.. [4] Bao et al. 2024, "Fast-DetectGPT: Efficient Zero-Shot Detection of Machine-Generated
   Text via Conditional Probability Curvature".
.. [5] Hans et al. 2024, "Spotting LLMs With Binoculars: Zero-Shot Detection of
   Machine-Generated Text".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from gpt2guard.detector.stats import TokenStats, TokenSums
from gpt2guard.errors import GuardError

# Guards a denominator that is exactly zero (every token the top-1 prediction; a
# distribution with no spread). Far below any value real text produces.
TINY = 1e-12


@dataclass(frozen=True)
class Method:
    """A named zero-shot score: ``method(stats) -> float``, higher = more likely machine.

    ``stats`` is a :class:`TokenStats` or a :class:`TokenSums`; ``fn`` maps a
    :class:`TokenSums` with at least one token to the score. Returns NaN for a document
    with no scored tokens. Raises GuardError when the method needs reference-model terms
    that ``stats`` lacks.
    """

    name: str
    fn: Callable[[TokenSums], float]
    description: str
    needs_reference: bool = False

    def __call__(self, stats: TokenStats | TokenSums) -> float:
        if self.needs_reference and not stats.has_reference:
            raise GuardError(f"method {self.name!r} needs a reference model: score with a second model "
                             "of the scorer's family as reference")
        if not stats.scorable:
            return math.nan
        return float(self.fn(as_sums(stats)))


def as_sums(stats: TokenStats | TokenSums) -> TokenSums:
    """The :class:`TokenSums` of a record (itself if it is one)."""
    return stats if isinstance(stats, TokenSums) else stats.sums()


_METHODS: dict[str, Method] = {}


def register(name: str, description: str, needs_reference: bool = False):
    """Decorator adding a function ``TokenSums -> float`` to the registry under ``name``."""

    def wrap(fn):
        _METHODS[name] = Method(name, fn, description, needs_reference)
        return fn

    return wrap


def get_method(name: str) -> Method:
    """The method called ``name``; GuardError naming the known ones otherwise."""
    try:
        return _METHODS[name]
    except KeyError:
        raise GuardError(f"unknown method {name!r}; known methods: {', '.join(_METHODS)}") from None


def list_methods(with_reference: bool = True) -> list[str]:
    """Names of the registered methods (without those needing a reference if asked)."""
    return [n for n, m in _METHODS.items() if with_reference or not m.needs_reference]


def score_methods(stats: TokenStats | TokenSums, names: list[str] | None = None) -> dict[str, float]:
    """Several methods on one record; default every method the record supports."""
    names = names if names is not None else list_methods(with_reference=stats.has_reference)
    sums = as_sums(stats) if stats.scorable else stats  # reduced once for every method
    return {name: get_method(name)(sums) for name in names}


@register("logp", "mean log-likelihood of the tokens")
def log_likelihood(s: TokenSums) -> float:
    return s.mean("logp")


@register("rank", "minus the mean 1-based rank of the tokens")
def neg_rank(s: TokenSums) -> float:
    return -(s.mean("rank") + 1.0)


@register("logrank", "minus the mean log of the 1-based rank")
def neg_log_rank(s: TokenSums) -> float:
    return -s.mean("log_rank")


@register("entropy", "minus the mean entropy of the predictive distribution")
def neg_entropy(s: TokenSums) -> float:
    return -s.mean("entropy")


@register("gltr", "fraction of tokens ranked in the model's top 10 (GLTR)")
def gltr_top10(s: TokenSums) -> float:
    return s.mean("top10")


@register("lrr", "log-likelihood log-rank ratio (DetectLLM)")
def log_rank_ratio(s: TokenSums) -> float:
    return -s.sums["logp"] / max(s.sums["log_rank"], TINY)


@register("fast-detectgpt", "analytic conditional probability curvature, scorer as sampling model")
def fast_detectgpt(s: TokenSums) -> float:
    return (s.sums["logp"] - s.sums["mean_ref"]) / math.sqrt(max(s.sums["var_ref"], TINY))


@register("fast-detectgpt-ref", "analytic conditional probability curvature, reference as sampling model",
          needs_reference=True)
def fast_detectgpt_ref(s: TokenSums) -> float:
    return (s.sums["logp"] + s.sums["cross_entropy"]) / math.sqrt(max(s.sums["cross_var"], TINY))


@register("binoculars", "minus log-perplexity over cross-perplexity (scorer observes, reference performs)",
          needs_reference=True)
def binoculars(s: TokenSums) -> float:
    log_ppl = -s.mean("logp")
    log_xppl = s.mean("cross_entropy")
    return -log_ppl / max(log_xppl, TINY)
