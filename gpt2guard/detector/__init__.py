"""Detect GPT-2-family text: per-token statistics under a scorer model, and zero-shot methods.

>>> from gpt2guard.family import load_model
>>> from gpt2guard.detector import Scorer, get_method
>>> stats = Scorer(load_model("nano")).score(["Some text to judge."])  # doctest: +SKIP
>>> get_method("fast-detectgpt")(stats[0])  # doctest: +SKIP

Importing this package does not import torch; models load when scoring starts.
"""

from gpt2guard.detector.cache import StatsCache
from gpt2guard.detector.features import feature_matrix, feature_names, features, gltr_histogram
from gpt2guard.detector.hygiene import UNSCORABLE, is_scorable, prepare_text
from gpt2guard.detector.methods import Method, get_method, list_methods, score_methods
from gpt2guard.detector.models import check_pair, wrap_model
from gpt2guard.detector.scoring import Scorer, score_texts, score_token_ids
from gpt2guard.detector.stats import TokenStats
from gpt2guard.detector.windows import Window, plan_windows

__all__ = ["Method", "Scorer", "StatsCache", "TokenStats", "UNSCORABLE", "Window", "check_pair", "feature_matrix",
           "feature_names", "features", "get_method", "gltr_histogram", "is_scorable", "list_methods",
           "plan_windows", "prepare_text", "score_methods", "score_texts", "score_token_ids", "wrap_model"]
