"""gpt2guard: staged release and machine-text detection for the GPT-2 model family.

The package is split in four parts (``generator``, ``detector``, ``release``,
``datasets``) over the shared model-family code in ``family``. The names a notebook needs
are here at the top level::

    import gpt2guard as gg

    lm = gg.load_model("nano", "small")
    data = gg.load_labelled(["data/human", "data/gen"], "builtin", split="train")
    det = gg.TrainedDetector(gg.FeatureDetector("logistic"), model=lm).fit(data.texts, data.labels)

Importing the package is cheap: each name is imported on first use (module
``__getattr__``), and torch and transformers load only when a model is needed.
"""

from __future__ import annotations

import importlib

from gpt2guard.errors import GuardError

__version__ = "0.1.0"

# name -> module that defines it, imported on first access
_EXPORTS = {
    # model families
    "load_model": "gpt2guard.family.load",
    "load_tokenizer": "gpt2guard.family.load",
    "build_family": "gpt2guard.family.build",
    # datasets
    "open_set": "gpt2guard.datasets.sets",
    "list_sets": "gpt2guard.datasets.sets",
    "load_labelled": "gpt2guard.detector.labelled",
    # generation
    "GenerationJob": "gpt2guard.generator.run",
    "run_generation": "gpt2guard.generator.run",
    # detection
    "Scorer": "gpt2guard.detector.scoring",
    "score_texts": "gpt2guard.detector.scoring",
    "wrap_model": "gpt2guard.detector.models",
    "list_methods": "gpt2guard.detector.methods",
    "get_method": "gpt2guard.detector.methods",
    "ZeroShotDetector": "gpt2guard.detector.zeroshot",
    "FeatureDetector": "gpt2guard.detector.estimators",
    "TrainedDetector": "gpt2guard.detector.trained",
    "TfidfDetector": "gpt2guard.detector.tfidf",
    "load_detector": "gpt2guard.detector.trained",
    "metrics": "gpt2guard.detector.evaluate",
    # staged release
    "load_plan": "gpt2guard.release.plan",
    "simulate": "gpt2guard.release.simulate",
}

__all__ = ["GuardError", "__version__", *_EXPORTS]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gpt2guard' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
