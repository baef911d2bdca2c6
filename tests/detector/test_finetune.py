"""The fine-tuned classifier on the micro family: training lowers the loss and separates the
classes, a saved detector gives identical probabilities, calibration, `score`, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from gpt2guard.cli import main
from gpt2guard.errors import GuardError


def small_detector(**kw):
    from gpt2guard.detector.finetune import FinetunedDetector

    params = dict(epochs=6, lr=3e-3, batch_size=8, validation_fraction=0.0, random_state=0)
    return FinetunedDetector("micro:small", **{**params, **kw})


@pytest.fixture(scope="module")
def fitted(micro_family, labelled):
    texts, labels = labelled
    return small_detector().fit(texts, labels)


def test_training_lowers_the_loss_and_separates_the_classes(fitted, labelled):
    texts, labels = labelled
    loss = fitted.history_["train_loss"]
    assert len(loss) == 6 and loss[-1] < 0.5 * loss[0]
    y = np.array([lab == "machine" for lab in labels])
    p = fitted.predict_proba_texts(texts)
    ok = ~np.isnan(p)
    assert ok.sum() >= len(texts) - 2  # at most a sample or two decoded to binary bytes
    assert p[ok & y].min() > p[ok & ~y].max()  # training documents: perfectly separated
    assert fitted.meta["n_train"] == ok.sum() and fitted.meta["seconds_per_1000_docs"] > 0
    assert set(fitted.classes_) == {"human", "machine"}
    assert list(fitted.predict(texts[:2])) == ["human", "human"]


def test_training_is_seeded(fitted, labelled):
    texts, labels = labelled
    again = small_detector().fit(texts, labels)
    assert again.history_["train_loss"] == fitted.history_["train_loss"]
    assert np.array_equal(again.decision_function(texts), fitted.decision_function(texts), equal_nan=True)
    other = small_detector(random_state=1).fit(texts, labels)
    assert other.history_["train_loss"] != fitted.history_["train_loss"]


def test_save_load_round_trip_gives_identical_probabilities(fitted, labelled, tmp_path):
    from gpt2guard.detector.trained import load_detector

    texts, _ = labelled
    fitted.save(tmp_path / "det")
    files = sorted(p.name for p in (tmp_path / "det" / "model").iterdir())
    assert "model.safetensors" in files and not any(f.endswith((".bin", ".pt", ".pkl", ".pickle")) for f in files)
    meta = json.loads((tmp_path / "det" / "detector.json").read_text())
    assert meta["kind"] == "finetune" and meta["base"]["name"] == "micro:small" and meta["max_length"] == 128
    again = load_detector(tmp_path / "det")
    assert np.array_equal(again.predict_proba_texts(texts), fitted.predict_proba_texts(texts), equal_nan=True)
    assert [v.to_dict() for v in again.verdicts(texts)] == [v.to_dict() for v in fitted.verdicts(texts)]


def test_damaged_saved_detector_is_refused(fitted, tmp_path):
    from gpt2guard.detector.trained import load_detector

    fitted.save(tmp_path / "det")
    weights = tmp_path / "det" / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(GuardError, match="other weights"):
        load_detector(tmp_path / "det")
    meta = json.loads((tmp_path / "det" / "detector.json").read_text())
    meta["max_length"] = "long"
    (tmp_path / "det" / "detector.json").write_text(json.dumps(meta))
    with pytest.raises(GuardError, match="max_length"):
        load_detector(tmp_path / "det")


def test_verdicts_abstain_and_cut_long_documents(fitted, labelled):
    texts, _ = labelled
    long_doc = " ".join(texts[:24])
    v = fitted.verdicts(["", "Two words.", long_doc])
    assert [x.decision for x in v[:2]] == ["abstain", "abstain"] and v[0].probability is None
    assert v[2].decision in ("human", "machine") and "truncated" in v[2].flags and v[2].n_tokens > 128
    assert v[2].method == "finetune" and v[2].scorer == "micro:small"
    assert np.isnan(fitted.decision_function([""])[0])


def test_calibrate_sets_the_threshold_for_the_rate(fitted, human_docs):
    import copy

    det = copy.copy(fitted)
    det.meta = dict(fitted.meta)
    human = human_docs["valid"][:40]
    det.calibrate(human, fpr=0.1, n_boot=20, seed=0)
    judged = [v for v in det.verdicts(human) if v.decision != "abstain"]
    assert det.calibration_.n_human == len(judged)
    assert np.mean([v.decision == "machine" for v in judged]) <= 0.1
    assert det.meta["calibration"]["threshold"] == det.threshold


def test_early_stopping_keeps_the_best_epoch(micro_family, labelled):
    texts, labels = labelled
    # a rate this high overfits within a few epochs: validation loss turns up, training stops
    det = small_detector(epochs=8, lr=0.05, validation_fraction=0.3, patience=1).fit(texts, labels)
    h = det.history_
    assert len(h["valid_loss"]) == h["epochs_run"] and h["best_epoch"] == int(np.argmin(h["valid_loss"])) + 1
    assert det.meta["n_valid"] > 0 and det.meta["n_train"] + det.meta["n_valid"] <= len(texts)
    if h["epochs_run"] < 8:
        assert h["epochs_run"] == h["best_epoch"] + 1


def test_bad_input_is_a_guard_error(micro_family, labelled):
    from gpt2guard.detector.finetune import FinetunedDetector

    texts, labels = labelled
    with pytest.raises(GuardError, match="human and machine"):
        small_detector().fit(texts[:5], ["human"] * 5)
    with pytest.raises(GuardError, match="base model 'micro:huge'"):
        FinetunedDetector("micro:huge").fit(texts, labels)
    with pytest.raises(GuardError, match="not fitted"):
        FinetunedDetector().decision_function(["text"])


# --- command line ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sets(detector_sets):
    return detector_sets


def test_cli_train_then_score(sets, tmp_path):
    det = tmp_path / "det"
    res = CliRunner().invoke(main, ["detector", "train", "--data", str(sets), "--kind", "finetune", "--base",
                                    "micro:small", "--epochs", "3", "--lr", "0.003", "--batch-size", "8",
                                    "--fpr", "0.1", "--out", str(det)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "saved finetune detector" in res.output and "per 1,000 training documents" in res.output
    meta = json.loads((det / "detector.json").read_text())
    assert meta["metrics"]["split"] == "valid" and meta["threshold"] == meta["calibration"]["threshold"]
    assert meta["n_valid"] > 0 and len(meta["history"]["valid_loss"]) == meta["history"]["epochs_run"]
    machine = [json.loads(line)["text"] for line in (sets / "micro-small.valid.jsonl").read_text().splitlines()]
    res = CliRunner().invoke(main, ["score", str(sets / "micro-small.valid.jsonl"), "--detector", str(det),
                                    "--format", "json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert len(rows) == len(machine) and all(r["method"] == "finetune" for r in rows)
    judged = [r for r in rows if r["decision"] != "abstain"]
    assert judged and all((r["decision"] == "machine") == (r["score"] > meta["threshold"]) for r in judged)
    from gpt2guard.detector.trained import load_detector

    expected = load_detector(det).decision_texts(machine)
    assert [r["score"] for r in rows] == [None if np.isnan(z) else pytest.approx(z) for z in expected]


@pytest.mark.parametrize("case, message", [
    ("micro:huge", "base model 'micro:huge' cannot be loaded"),
    ("/nowhere/model", "base model '/nowhere/model' cannot be loaded"),
    ("no-weights", "cannot be loaded"),
    ("one-class", "needs human and machine documents"),
])
def test_cli_bad_input_is_one_line(sets, tmp_path, case, message):
    import shutil

    data, base = sets, case
    if case == "no-weights":  # a model directory whose weights are missing
        base = tmp_path / "model"
        base.mkdir()
        (base / "config.json").write_text('{"model_type": "gpt2", "n_layer": 1}')
    elif case == "one-class":  # the human set alone
        data, base = tmp_path / "human-only", "micro:small"
        data.mkdir()
        for f in sets.glob("builtin.*"):
            shutil.copy(f, data / f.name)
    res = CliRunner().invoke(main, ["detector", "train", "--data", str(data), "--kind", "finetune", "--base",
                                    str(base), "--out", str(tmp_path / "d")])
    assert res.exit_code != 0 and message in res.output, res.output
    lines = [ln for ln in res.output.strip().splitlines() if not ln.startswith("training on")]
    assert "Traceback" not in res.output and len(lines) == 1 and lines[0].startswith("Error:"), res.output


def test_cli_refuses_options_of_other_kinds(sets, tmp_path):
    res = CliRunner().invoke(main, ["detector", "train", "--data", str(sets), "--kind", "finetune", "--sizes",
                                    "small", "--out", str(tmp_path / "d")])
    assert res.exit_code == 2 and "--sizes" in res.output
    res = CliRunner().invoke(main, ["detector", "train", "--data", str(sets), "--base", "micro", "--out",
                                    str(tmp_path / "d")])
    assert res.exit_code == 2 and "--base is for --kind finetune" in res.output


def test_service_serves_a_finetuned_detector(fitted, labelled, tmp_path):
    pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
    from fastapi.testclient import TestClient

    from gpt2guard.serve import create_app, load_service

    texts, _ = labelled
    fitted.save(tmp_path / "det")
    service = load_service(detector=str(tmp_path / "det"), family="micro")
    with TestClient(create_app(service)) as c:
        body = c.post("/v1/score", json={"texts": texts[:2] + texts[-2:], "details": True}).json()
        info = c.get("/v1/info").json()["detector"]
    assert info["kind"] == "finetune" and info["base"] == "micro:small" and info["weights"]["finetuned"]
    expected = fitted.verdicts(texts[:2] + texts[-2:])
    assert [r["decision"] for r in body["results"]] == [v.decision for v in expected]
    assert [r["score"] for r in body["results"]] == [pytest.approx(v.score) for v in expected]
    sentences = body["results"][0]["details"]["sentences"]
    assert sentences and all(s["probability"] is not None and 0 <= s["probability"] <= 1 for s in sentences)
    first = sentences[0]
    assert first["score"] == pytest.approx(float(fitted.decision_function([first["text"]])[0]))
