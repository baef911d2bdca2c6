"""The top-level package exports what a notebook needs, lazily."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_top_level_names_are_the_library_objects():
    import gpt2guard

    for name, module in gpt2guard._EXPORTS.items():
        assert getattr(gpt2guard, name) is getattr(importlib.import_module(module), name), name
        assert name in dir(gpt2guard)
    from gpt2guard import TfidfDetector, TrainedDetector, load_detector, load_model, score_texts, simulate  # noqa: F401

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        gpt2guard.nope  # noqa: B018


def test_importing_the_package_loads_no_heavy_library():
    code = ("import sys, gpt2guard; heavy = [m for m in ('torch', 'transformers', 'sklearn', 'numpy') "
            "if m in sys.modules]; print(','.join(heavy)); print(len(gpt2guard.__all__))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT), "PATH": ""}, check=True).stdout.splitlines()
    assert out[0] == "" and int(out[1]) >= 20
