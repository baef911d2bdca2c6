"""A plan that asks for the fine-tuned detector: the simulation trains, calibrates, saves and
records it as each stage's publishable detector."""

from __future__ import annotations

import json

from release_helpers import MICRO_PLAN


def test_a_plan_can_ask_for_the_finetuned_detector(micro_family, tmp_path):
    from gpt2guard.detector.trained import load_detector
    from gpt2guard.release.simulate import simulate

    (tmp_path / "evidence").mkdir()
    for size in ("small", "medium"):
        (tmp_path / "evidence" / f"signoff-{size}.toml").write_text('approved = true\nby = "test board"\n')
    plan = tmp_path / "plan.toml"
    plan.write_text(MICRO_PLAN.replace("[evaluation]\n", '[evaluation]\ndetector = "finetune"\n', 1))
    out = tmp_path / "run"
    simulate(plan, out, progress=False)
    stages = sorted((out / "scenarios").glob("*/stages/*"))
    assert stages
    stage = stages[0]
    record = json.loads((stage / "evaluation.json").read_text())
    assert record["detector"]["kind"] == "finetune"
    det = load_detector(stage / "detector")
    assert det.kind == "finetune" and det.base_info_["name"] == "micro:small"
    assert det.threshold == record["detector"]["threshold"]
    cal = det.meta["calibration"]  # calibrated on the run's human calibration split for the plan's rate
    assert cal["threshold"] == det.threshold and cal["achieved_fpr"] <= cal["target_fpr"] == 0.01
