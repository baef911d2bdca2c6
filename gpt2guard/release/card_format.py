"""Formatting shared by the model-card modules: safe look-ups into an evaluation, numbers
with confidence intervals, explicit "not measured" text, and Markdown tables.

Every value in a card goes through these helpers, so a missing key, a ``null`` or a NaN
renders as ``not measured: <reason>`` instead of raising.
"""

from __future__ import annotations

import math
import re

ABSENT = "absent from the evaluation"


def get(d, *keys, default=None):
    """``d[k0][k1]...``, or ``default`` when any level is missing, not a dict, or None."""
    for k in keys:
        if not isinstance(d, dict) or d.get(k) is None:
            return default
        d = d[k]
    return d


def one_line(obj):
    """A copy of a JSON-like object whose strings have their whitespace runs (newlines too)
    collapsed to one space, so no value from an evaluation can start a Markdown heading,
    list or table row of its own."""
    if isinstance(obj, str):
        return " ".join(obj.split())
    if isinstance(obj, dict):
        return {k: one_line(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [one_line(v) for v in obj]
    return obj


def is_num(v) -> bool:
    """A finite int or float (not a bool, None or NaN)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def valid_ci(ci) -> bool:
    """A two-element interval of finite numbers."""
    return isinstance(ci, (list, tuple)) and len(ci) == 2 and all(is_num(x) for x in ci)


def matrix_cell(matrix, i: int, j: int):
    """``matrix[i][j]``, or None when the row or the cell is missing."""
    row = matrix[i] if isinstance(matrix, list) and i < len(matrix) else None
    return row[j] if isinstance(row, list) and j < len(row) else None


def not_measured(reason: str = ABSENT) -> str:
    """The explicit text that stands in for a missing value."""
    return f"not measured: {reason}"


def _pct(v: float) -> str:
    text = f"{v * 100:.1f}".rstrip("0").rstrip(".")
    return f"{text}%"


def _plain(v, kind: str) -> str:
    if kind == "pct":
        return _pct(v)
    if kind == "auroc":
        return f"{v:.3f}"
    if kind == "ppl":
        return f"{v:.1f}"
    if kind == "int":
        return f"{int(v):,}"
    return f"{v:.4g}"


def fmt(v, kind: str = "num", reason: str = ABSENT) -> str:
    """One number as text, or ``not measured: reason``.

    Parameters
    ----------
    v
        The value; None or NaN count as missing.
    kind : {"num", "pct", "auroc", "ppl", "int"}
        ``pct``: a rate as a percentage (``0.634`` -> ``63.4%``); ``auroc``: three
        decimals; ``ppl``: one decimal; ``int``: thousands separators; ``num``: four
        significant digits.
    reason : str
        Why it is missing, when it is.
    """
    return _plain(v, kind) if is_num(v) else not_measured(reason)


def fmt_ci(v, ci, kind: str = "num", reason: str = ABSENT) -> str:
    """A number with its interval: ``0.910 [0.870, 0.940]``; a missing interval is said so."""
    if not is_num(v):
        return not_measured(reason)
    if not valid_ci(ci):
        return f"{_plain(v, kind)} (CI not measured)"
    return f"{_plain(v, kind)} [{_plain(ci[0], kind)}, {_plain(ci[1], kind)}]"


def recorded(v, kind: str = "int") -> str:
    """A descriptive number (parameter count, seed...) or ``not recorded``."""
    return _plain(v, kind) if is_num(v) else "not recorded"


def fpr_keys(metrics: dict | None) -> list[str]:
    """The ``tpr@<f>`` keys of a metrics dict, loosest FPR first (``tpr@0.05``, ``tpr@0.01``...)."""
    keys = [k for k in (metrics or {}) if re.fullmatch(r"tpr@[0-9.e-]+", k)]
    return sorted(keys, key=lambda k: -float(k.split("@")[1]))


def fpr_label(key_or_rate) -> str:
    """``tpr@0.01`` or ``0.01`` -> ``1%``."""
    rate = float(str(key_or_rate).split("@")[-1])
    return _pct(rate)


def tpr_key(fpr) -> str:
    """The metrics key of the TPR at false-positive rate ``fpr`` (``0.01`` -> ``tpr@0.01``)."""
    return f"tpr@{float(fpr):g}"


def sampling_label(name: str) -> str:
    """``top-k=40`` -> ``top-k 40``; ``pure`` stays ``pure``."""
    return str(name).replace("=", " ")


def bucket_order(name: str) -> tuple:
    """Sort key of a length bucket name such as ``64-127`` or ``512+``."""
    m = re.match(r"\d+", str(name))
    return (int(m.group()) if m else math.inf, str(name))


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(header: list[str], rows: list[list], right: set[int] | None = None) -> list[str]:
    """Markdown table lines; columns whose index is in ``right`` are right-aligned."""
    right = right or set()
    sep = ["---:" if i in right else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "|".join(sep) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def bullets(items: dict[str, str]) -> list[str]:
    """``- **Label:** value`` lines."""
    return [f"- **{k}:** {v}" for k, v in items.items()]


def sha(v, n: int = 16) -> str:
    """A digest as code, shortened, or ``not recorded``."""
    return f"`{str(v)[:n]}`" if v else "not recorded"


SECTIONS = ("Model details", "Intended use", "Factors", "Metrics", "Evaluation data", "Training data",
            "Quantitative analyses", "Ethical considerations", "Caveats and recommendations")
"""The ``##`` sections of every card, in order (Mitchell et al., "Model Cards for Model Reporting")."""


def image(plots: dict | None, name: str, alt: str) -> list[str]:
    """A Markdown image line (and a blank line) for plot ``name``, or nothing when it was not drawn."""
    path = (plots or {}).get(name)
    return [f"![{alt}]({path})", ""] if path else []
