"""The robust-detectability and watermark-detectability gates, and the card's attack sections,
on constructed evidence (no model is run)."""

from __future__ import annotations

import copy
import datetime as dt

import pytest
from test_release_cards import make_evaluation, section_text

from gpt2guard.release.card import card_markdown
from gpt2guard.release.card_attacks import attack_caveats
from gpt2guard.release.card_check import check_card
from gpt2guard.release.gates import GATES, decide
from gpt2guard.release.judge import StageEvidence
from gpt2guard.release.plan import GateSpec, Stage, Watermark

ATTACKS = ["homoglyph=1", "whitespace=0.2"]


def cell(tpr, ci=None, n_changed=0):
    return {"tpr": tpr, "tpr_ci": ci, "n": 40, "n_changed": n_changed}


def table(clean, homoglyph, whitespace, method="top-k=40"):
    return {method: {"clean": cell(clean, [clean - 0.1, clean + 0.05]), "homoglyph=1": cell(homoglyph, None, 40),
                     "whitespace=0.2": cell(whitespace, [whitespace - 0.1, whitespace + 0.1], 35)}}


def watermark(by_size):
    return {"scheme": "lefthash", "gamma": 0.25, "delta": 2.0, "z_threshold": 4.0, "key_sha256": "9f" * 32,
            "human": {"n": 40, "n_detected": 0, "fpr": 0.0}, "attacks": ["clean"] + ATTACKS, "by_size": by_size}


def evidence(**kw) -> StageEvidence:
    stage = Stage(name="medium", sizes=["medium"], tier="api", artifacts=["model_card"],
                  watermark=Watermark(key="keys/{stage}.key"))
    base = dict(stage=stage, date=dt.date(2019, 5, 3), released=["small"], previous=dt.date(2019, 2, 14),
                publishable=["small", "medium"], files={"robustness": "stages/02-medium/evidence/robustness.json",
                                                        "watermark": "stages/02-medium/evidence/watermark.json"})
    return StageEvidence(**{**base, **kw})


def run(kind, ev, **spec):
    return GATES[kind]("g", GateSpec(kind=kind, **spec), ev)


def test_robust_detectability_is_the_worst_attack_and_names_it():
    rob = {"attacks": ["clean"] + ATTACKS, "by_size": {"medium": {**table(0.9, 0.1, 0.7),
                                                                  **table(0.6, 0.55, 0.5, "pure")}}}
    ev = evidence(robustness=rob)
    r = run("robust_detectability", ev, threshold=0.5, attacks=ATTACKS)
    assert (r.value, r.passed) == (0.1, False)
    assert "worst attack: homoglyph=1" in r.reference and "threshold from clean human text" in r.reference
    assert "medium top-k=40 under homoglyph=1 (clean 0.9)" in r.note
    assert r.evidence == ["stages/02-medium/evidence/robustness.json"]
    # only the declared attacks count: without homoglyph the worst is whitespace on pure samples
    r = run("robust_detectability", ev, threshold=0.5, attacks=["whitespace=0.2"])
    assert (r.value, r.passed) == (0.5, True) and "worst attack: whitespace=0.2" in r.reference
    r = run("robust_detectability", ev, threshold=0.5, attacks=["whitespace=0.2"], sampling=["top-k=40"])
    assert r.value == 0.7 and "pure" not in r.note
    # clean is always judged: an attack that helps the detector cannot lift it over its clean rate
    ev2 = evidence(robustness={"by_size": {"medium": table(0.3, 0.9, 0.8)}})
    r = run("robust_detectability", ev2, threshold=0.5, attacks=ATTACKS)
    assert r.value == 0.3 and "worst attack: clean" in r.reference and not r.passed
    # conservative: the CI's lower bound must clear the threshold
    assert run("robust_detectability", ev, threshold=0.55, attacks=["whitespace=0.2"], sampling=["top-k=40"]).passed
    assert not run("robust_detectability", ev, threshold=0.65, attacks=["whitespace=0.2"], sampling=["top-k=40"],
                   conservative=True).passed


def test_robust_detectability_not_measured_is_no_pass():
    r = run("robust_detectability", evidence(), threshold=0.0, attacks=ATTACKS)
    assert not r.passed and r.value is None and r.note == "no attack evidence"
    ev = evidence(robustness={"by_size": {"medium": table(0.9, 0.8, 0.7)}})
    r = run("robust_detectability", ev, threshold=0.0, attacks=["case=0.5"])
    assert not r.passed and r.value is None and "not measured under case=0.5" in r.note


def test_watermark_detectability_judges_the_stage_watermark():
    ev = evidence(watermark=watermark({"medium": table(0.98, 0.95, 0.4)}))
    r = run("watermark_detectability", ev, threshold=0.8, attacks=ATTACKS)
    assert (r.value, r.passed) == (0.4, False)
    assert "worst attack: whitespace=0.2" in r.reference and "key sha256 9f9f9f9f9f9f" in r.reference
    assert "z >= 4" in r.metric and r.evidence == ["stages/02-medium/evidence/watermark.json"]
    r = run("watermark_detectability", ev, threshold=0.8, attacks=["homoglyph=1"])
    assert (r.value, r.passed) == (0.95, True)
    r = run("watermark_detectability", ev, threshold=0.8)  # no attacks declared: clean only
    assert r.value == 0.98 and "worst attack: clean" in r.reference


def test_watermark_gate_fails_clearly_on_a_stage_without_watermark():
    ev = evidence(stage=Stage(name="large", sizes=["large"], tier="download"), watermark=None)
    r = run("watermark_detectability", ev, threshold=0.0, attacks=ATTACKS)
    assert not r.passed and r.value is None
    assert r.note == "stage 'large' (download tier) has no watermark: its texts carry none to detect"
    decision, reason = decide([r])
    assert decision == "hold" and "has no watermark" in reason
    # advisory: recorded, does not hold
    r = GATES["watermark_detectability"]("g", GateSpec(kind="watermark_detectability", threshold=0.5, required=False), ev)
    assert decide([r])[0] == "release"


def attacked_evaluation(post_homoglyph=0.02, wm_whitespace=0.2):
    e = make_evaluation()
    by = {"medium": {"top-k=40": {"clean": cell(0.634, [0.55, 0.71]), "homoglyph=1": cell(post_homoglyph, None, 40),
                                  "whitespace=0.2": cell(0.6, [0.5, 0.7], 31)}}}
    e["robustness"] = {"attacks": ["clean"] + ATTACKS, "by_size": by}
    wm = copy.deepcopy(by)
    wm["medium"]["top-k=40"]["clean"]["tpr"] = 0.95
    wm["medium"]["top-k=40"]["homoglyph=1"]["tpr"] = 0.93
    wm["medium"]["top-k=40"]["whitespace=0.2"]["tpr"] = wm_whitespace
    for c in wm["medium"]["top-k=40"].values():
        c["z_median"] = 9.0 * c["tpr"]
    e["watermark"] = watermark(wm)
    return e


def test_card_shows_the_attack_table_and_watermark_figures():
    text = card_markdown(attacked_evaluation())
    quant = section_text(text, "Quantitative analyses")
    assert "### Robustness to attacks" in quant and "### Watermark" in quant
    assert "| `homoglyph=1` | 40 of 40 | 2% (CI not measured) |" in quant
    assert "| `whitespace=0.2` | 31 of 40 | 60% [50%, 70%] |" in quant
    assert "| clean | 0 of 40 | 95% [55%, 71%] | 8.55 |" in quant
    assert "gamma 0.25" in quant and "delta 2" in quant and "reaches 4" in quant
    assert "9f9f9f9f9f9f9f9f" in quant and "0% (0 of 40 human test documents)" in quant
    assert check_card(text) == []
    caveats = section_text(text, "Caveats and recommendations")
    assert "post-hoc detector (one defeats it when it leaves under 50% of the clean flagged rate): defeated by " \
           "`homoglyph=1` (flagged 2% vs 63.4% clean, top-k 40); it withstands `whitespace=0.2`" in caveats
    assert "watermark (one defeats it when it leaves under 50% of the clean detected rate): defeated by " \
           "`whitespace=0.2` (detected 20% vs 95% clean, top-k 40); it withstands `homoglyph=1`" in caveats
    assert "Defeat the post-hoc detector but not the watermark: `homoglyph=1`." in caveats
    assert "Defeat the watermark but not the post-hoc detector: `whitespace=0.2`." in caveats


def test_caveats_follow_the_numbers():
    strong = attack_caveats(attacked_evaluation(post_homoglyph=0.6, wm_whitespace=0.9))
    assert strong[0].endswith("no declared attack defeats it; it withstands all of `homoglyph=1`, `whitespace=0.2`.")
    assert len(strong) == 2 and "Defeat" not in " ".join(strong)
    both = attack_caveats(attacked_evaluation(post_homoglyph=0.01, wm_whitespace=0.9))
    both_e = attacked_evaluation(post_homoglyph=0.01, wm_whitespace=0.01)
    both_e["watermark"]["by_size"]["medium"]["top-k=40"]["homoglyph=1"]["tpr"] = 0.01
    assert "Defeat both detectors: `homoglyph=1`." in attack_caveats(both_e)
    assert "Defeat the post-hoc detector but not the watermark: `homoglyph=1`." in both


def test_cards_without_attack_evidence_have_no_attack_sections():
    text = card_markdown(make_evaluation())
    assert "### Robustness to attacks" not in text and "### Watermark" not in text
    assert attack_caveats(make_evaluation()) == []


@pytest.mark.parametrize("size, shown", [("medium", True), ("large", False)])
def test_a_size_card_shows_only_its_own_rows(size, shown):
    from test_release_cards import make_pair_stage

    e = make_pair_stage()
    e["robustness"] = {"attacks": ["clean"] + ATTACKS, "by_size": {"medium": table(0.9, 0.1, 0.7)}}
    text = card_markdown(e, size=size)
    assert ("### Robustness to attacks" in text) is shown
    assert check_card(text) == []
