"""The attack table: TPR and FPR under attack at a clean-human threshold, hygiene on and off."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from gpt2guard.cli import main
from gpt2guard.errors import GuardError


@pytest.fixture(scope="module")
def zero_shot(micro_family):
    from gpt2guard.detector.zeroshot import ZeroShotDetector

    return ZeroShotDetector("logrank", "micro", "small", threshold=0.0, min_tokens=4)


@pytest.fixture(scope="module")
def split_texts(labelled):
    texts, labels = labelled
    return ([t for t, lab in zip(texts, labels) if lab == "human"][:12],
            [t for t, lab in zip(texts, labels) if lab == "machine"][:12])


@pytest.fixture(scope="module")
def table(zero_shot, split_texts):
    from gpt2guard.detector.robustness import attack_table

    human, machine = split_texts
    return attack_table(zero_shot, human, machine, "zero_width=1.0,homoglyph=1.0,case=0", fpr=0.1, seed=3)


def test_table_shape_and_clean_calibration(table, zero_shot, split_texts):
    from gpt2guard.detector.calibrate import fpr_threshold

    human, machine = split_texts
    assert (table["n_human"], table["n_machine"], table["fpr"], table["seed"]) == (len(human), len(machine), 0.1, 3)
    assert [r["attack"] for r in table["rows"]] == ["zero_width=1", "homoglyph=1", "case=0"]
    scores = np.array([v.score if v.decision != "abstain" else np.nan for v in zero_shot.verdicts(human)])
    assert table["clean"]["on"]["threshold"] == pytest.approx(fpr_threshold(scores, 0.1))
    for mode in ("on", "off"):
        assert table["clean"][mode]["fpr"] <= 0.1
        for row in table["rows"]:
            assert 0.0 <= row[mode]["tpr"] <= 1.0 and 0.0 <= row[mode]["fpr"] <= 1.0


def test_rate_zero_is_the_clean_row(table):
    row = table["rows"][2]
    assert row["changed"] == {"human": 0.0, "machine": 0.0}
    for mode in ("on", "off"):
        assert (row[mode]["tpr"], row[mode]["fpr"]) == (table["clean"][mode]["tpr"], table["clean"][mode]["fpr"])


def test_hygiene_undoes_zero_width_characters(table):
    row = table["rows"][0]
    assert row["changed"]["machine"] == 1.0
    assert (row["on"]["tpr"], row["on"]["fpr"]) == (table["clean"]["on"]["tpr"], table["clean"]["on"]["fpr"])


def test_without_hygiene_the_detector_sees_the_attack(zero_shot, split_texts):
    from gpt2guard.attacks import attack
    from gpt2guard.detector.hygiene import hygiene_off
    from gpt2guard.detector.robustness import _oriented_scores

    human, _ = split_texts
    attacked = [attack(t, "zero_width", 1.0, seed=i).text for i, t in enumerate(human)]
    clean = _oriented_scores(zero_shot, human)
    np.testing.assert_allclose(_oriented_scores(zero_shot, attacked), clean)  # hygiene on: repaired
    with hygiene_off():
        raw = _oriented_scores(zero_shot, attacked)
        np.testing.assert_allclose(_oriented_scores(zero_shot, human), clean)  # clean text: no repair to skip
    assert not np.allclose(raw, clean, equal_nan=True)


def test_lower_direction_is_oriented(split_texts, micro_family):
    from gpt2guard.detector.robustness import attack_table
    from gpt2guard.detector.zeroshot import ZeroShotDetector

    human, machine = split_texts
    up = ZeroShotDetector("logrank", "micro", "small", threshold=0.0, min_tokens=4)
    down = ZeroShotDetector("logrank", "micro", "small", threshold=0.0, min_tokens=4, direction="lower")
    a = attack_table(up, human, machine, "case=0", fpr=0.2, hygiene=["on"])
    b = attack_table(down, human, machine, "case=0", fpr=0.2, hygiene=["on"])
    assert set(a["clean"]) == {"on"} and b["clean"]["on"]["threshold"] == pytest.approx(
        -fpr_lower(up, human, 0.2))
    assert a["clean"]["on"]["fpr"] <= 0.2 and b["clean"]["on"]["fpr"] <= 0.2


def fpr_lower(det, human, fpr):
    """The threshold on negated scores, for a detector where low scores are machine-like."""
    from gpt2guard.detector.calibrate import fpr_threshold

    s = np.array([v.score if v.decision != "abstain" else np.nan for v in det.verdicts(human)])
    return -fpr_threshold(-s, fpr)


@pytest.mark.parametrize("kwargs,match", [
    ({"specs": "bogus=1"}, "unknown attack"),
    ({"fpr": 1.0}, "false-positive rate"),
    ({"seed": -1}, "seed"),
    ({"hygiene": ["maybe"]}, "hygiene must name"),
])
def test_bad_arguments(zero_shot, split_texts, kwargs, match):
    from gpt2guard.detector.robustness import attack_table

    human, machine = split_texts
    args = {"specs": "case=1", **kwargs}
    with pytest.raises(GuardError, match=match):
        attack_table(zero_shot, human, machine, args.pop("specs"), **args)


def test_eval_cli_adds_the_attack_table(detector_sets, tmp_path):
    det = tmp_path / "det"
    res = CliRunner().invoke(main, ["detector", "train", "--data", str(detector_sets), "--family", "micro", "--kind",
                                    "tfidf", "--min-tokens", "4", "--fpr", "0.1", "--out", str(det)])
    assert res.exit_code == 0, res.output
    out = tmp_path / "eval"
    res = CliRunner().invoke(main, ["detector", "eval", str(det), "--data", str(detector_sets), "--n-boot", "40",
                                    "--attacks", "zero_width=1.0,whitespace=0.5", "--attack-seed", "2", "--out",
                                    str(out)])
    assert res.exit_code == 0, res.output
    table = json.loads((out / "eval.json").read_text())["attacks"]
    assert [r["attack"] for r in table["rows"]] == ["zero_width=1", "whitespace=0.5"] and table["seed"] == 2
    assert table["fpr"] == 0.05 and table["n_human"] == 20
    zw = table["rows"][0]
    assert (zw["on"]["tpr"], zw["on"]["fpr"]) == (table["clean"]["on"]["tpr"], table["clean"]["on"]["fpr"])
    text = (out / "eval.txt").read_text()
    assert "TPR on" in res.output and "zero_width=1" in text and "whitespace=0.5" in text


def test_eval_cli_attack_errors(detector_sets, tmp_path):
    res = CliRunner().invoke(main, ["detector", "eval", str(tmp_path), "--data", str(detector_sets), "--attacks",
                                    "homoglyph=2", "--out", str(tmp_path / "e")])
    assert res.exit_code == 2 and r"[0, 1]" in res.output and len(res.output.strip().splitlines()) == 1
    res = CliRunner().invoke(main, ["detector", "eval", str(tmp_path), "--data", str(detector_sets), "--attack-seed",
                                    "3", "--out", str(tmp_path / "e")])
    assert res.exit_code == 2 and "--attack-seed is for --attacks" in res.output
    assert not (tmp_path / "e").exists()
