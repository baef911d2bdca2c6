"""Fixtures of the release tests."""

from __future__ import annotations

import pytest
from release_helpers import MICRO_PLAN


@pytest.fixture(scope="module")
def plan_file(tmp_path_factory, micro_family):
    """The two-stage micro plan (:data:`release_helpers.MICRO_PLAN`) with approved sign-offs,
    written once per test module."""
    root = tmp_path_factory.mktemp("plan")
    (root / "evidence").mkdir()
    for size in ("small", "medium"):
        (root / "evidence" / f"signoff-{size}.toml").write_text('approved = true\nby = "test board"\n')
    path = root / "plan.toml"
    path.write_text(MICRO_PLAN)
    return path
