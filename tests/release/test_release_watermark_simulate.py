"""A micro simulation whose second stage is a watermarked API: the watermark is detected in its
texts and not in human text, attacks are measured against both detectors, the key's digest (never
the key) reaches the evidence, the card and the manifest, and the run verifies."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from release_helpers import MICRO_EVALUATION

from gpt2guard.cli import main
from gpt2guard.release.card_check import check_card
from gpt2guard.release.simulate import simulate

ATTACKS = '["homoglyph=1.0", "whitespace=0.5", "case=0.5"]'

PLAN = f"""
name = "micro-wm"
family = "micro"
seed = 3
on_hold = "continue"
{MICRO_EVALUATION}[gates.detect]
kind = "detectability"
threshold = 0.0
[gates.robust]
kind = "robust_detectability"
attacks = {ATTACKS}
threshold = 0.5
required = false
[gates.wm]
kind = "watermark_detectability"
attacks = {ATTACKS}
threshold = 0.0
[[stages]]
name = "first"
sizes = ["small"]
tier = "download"
gates = ["detect", "robust"]
[[stages]]
name = "second"
sizes = ["medium"]
after_days = 90
tier = "api"
artifacts = ["model_card", "samples", "detector"]
gates = ["detect", "robust", "wm"]
watermark = {{ key = "keys/{{stage}}.key", z_threshold = 3.0 }}
[[scenarios]]
name = "together"
mode = "all-at-once"
"""


@pytest.fixture(scope="module")
def wm_run(tmp_path_factory, micro_family):
    from gpt2guard.watermark import keygen

    root = tmp_path_factory.mktemp("wm-plan")
    key = keygen(root / "keys" / "second.key", family="micro")  # a real (random) key: its secret must not leak
    (root / "plan.toml").write_text(PLAN)
    out = tmp_path_factory.mktemp("wm-run") / "run"
    result = simulate(root / "plan.toml", out, progress=False)
    return root, out, result, key


def stage(out, scenario, d):
    return out / "scenarios" / scenario / "stages" / d


def evaluation(out, scenario, d):
    return json.loads((stage(out, scenario, d) / "evaluation.json").read_text())


def test_the_watermark_is_detected_in_api_texts_and_judged(wm_run):
    _, out, result, key = wm_run
    ev = evaluation(out, "staged", "02-second")
    wm = ev["watermark"]
    assert wm["key_sha256"] == key.digest and (wm["scheme"], wm["gamma"], wm["delta"], wm["z_threshold"]) == \
        ("lefthash", 0.25, 2.0, 3.0)
    cells = wm["by_size"]["medium"]
    assert set(cells) == {"pure", "top-k=40"}
    assert list(cells["pure"]) == ["clean", "homoglyph=1", "whitespace=0.5", "case=0.5"]
    clean = [cells[m]["clean"]["tpr"] for m in cells]
    # watermarked API text is detected far more often than human text is wrongly flagged
    assert min(clean) > 0.5 and wm["human"]["fpr"] < 0.1 and wm["human"]["n"] == 40
    for m in cells:
        assert cells[m]["clean"]["n"] == 24 and cells[m]["case=0.5"]["n_changed"] > 0
        assert cells[m]["clean"]["z_median"] > 3.0
    gate = next(g for g in ev["gates"] if g["name"] == "wm")
    worst = min(c["tpr"] for by in cells.values() for c in by.values())
    assert gate["value"] == pytest.approx(worst) and gate["passed"] and "worst attack: " in gate["reference"]
    assert key.digest[:12] in gate["reference"]
    robust = next(g for g in ev["gates"] if g["name"] == "robust")
    rob = ev["robustness"]["by_size"]["medium"]
    assert robust["value"] == pytest.approx(min(c["tpr"] for by in rob.values() for c in by.values()))
    assert rob["top-k=40"]["clean"]["tpr"] == pytest.approx(ev["detection"]["by_size_sampling"]["medium"]
                                                            ["top-k=40"]["tpr"])  # same threshold, same texts
    assert (stage(out, "staged", "02-second") / "evidence" / "watermark.json").is_file()
    # the first stage (download tier, no watermark) measured robustness only
    first = evaluation(out, "staged", "01-first")
    assert "watermark" not in first and set(first["robustness"]["by_size"]) == {"small"}


def test_all_at_once_has_no_watermark_and_the_gate_says_so(wm_run):
    _, out, result, _ = wm_run
    rows = {(r["scenario"], r["name"]): r for r in result.rows}
    assert rows[("staged", "second")]["decision"] == "release"
    ev = evaluation(out, "together", "01-all")
    gate = next(g for g in ev["gates"] if g["name"] == "wm")
    assert not gate["passed"] and "has no watermark" in gate["note"] and ev["stage"]["tier"] == "download"
    assert rows[("together", "all")]["decision"] == "hold" and "wm" in rows[("together", "all")]["reason"]


def test_key_digest_is_published_and_the_key_never_is(wm_run):
    root, out, _, key = wm_run
    release = stage(out, "staged", "02-second") / "release"
    manifest = json.loads((release / "MANIFEST.json").read_text())
    assert manifest["watermark"]["key_sha256"] == key.digest and manifest["tier"] == "api"
    assert not (release / "model.safetensors").exists()
    secret = key.secret.hex()
    for p in out.rglob("*"):
        if p.is_file():
            assert secret.encode() not in p.read_bytes(), p
    run = json.loads((out / "run.json").read_text())
    assert run["watermark_keys"] == {"keys/second.key": key.digest}
    # the published samples are the API's, watermarked
    from gpt2guard.datasets.sets import open_set
    from gpt2guard.family import load_tokenizer
    from gpt2guard.watermark import detect_texts

    texts = [r.text for r in open_set(release / "samples", "micro-medium-k40", "test")]
    scores = detect_texts(texts, key, load_tokenizer("micro"), z_threshold=3.0)
    assert sum(s.detected for s in scores) / len(scores) == pytest.approx(
        evaluation(out, "staged", "02-second")["watermark"]["by_size"]["medium"]["top-k=40"]["clean"]["tpr"])


def test_card_shows_attack_table_and_watermark(wm_run):
    _, out, _, key = wm_run
    text = (stage(out, "staged", "02-second") / "card" / "README.md").read_text()
    assert check_card(text) == []
    assert "### Robustness to attacks" in text and "### Watermark" in text
    assert "| `whitespace=0.5` |" in text and key.digest[:16] in text
    assert "Attacks on the post-hoc detector" in text and "Attacks on the watermark" in text
    first = (stage(out, "staged", "01-first") / "card" / "README.md").read_text()
    assert "### Robustness to attacks" in first and "### Watermark" not in first


def test_verify_passes_and_another_key_is_refused(wm_run, tmp_path):
    import shutil

    from gpt2guard.watermark import keygen

    root, out, _, _ = wm_run
    r = CliRunner().invoke(main, ["release", "verify", str(out)])
    assert r.exit_code == 0 and r.output.startswith("ok:"), r.output
    plan = tmp_path / "plan.toml"
    shutil.copy(root / "plan.toml", plan)
    keygen(tmp_path / "keys" / "second.key", seed=7, family="micro")
    r = CliRunner().invoke(main, ["release", "simulate", str(plan), "--out", str(out)])
    assert r.exit_code == 2 and "another watermark key (keys/second.key)" in r.output
