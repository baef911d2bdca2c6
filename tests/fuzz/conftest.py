"""A workspace of good inputs for the fuzz tests to damage: sets, detectors, a plan, a run,
cards, a verified tree; built once per session (models: the micro family)."""

from __future__ import annotations

import json
import random
from types import SimpleNamespace

import pytest

WORDS = ("the a of to and in is it that for on with as was by this are be at from or an have not which one "
         "model text human machine release stage size detector score token window sample read write file data "
         "returns list value error path function class module number string option default").split()


def prose(rng: random.Random, n_words: int) -> str:
    words = [rng.choice(WORDS) for _ in range(n_words)]
    return " ".join(words).capitalize() + "."


def evaluation(size: str, index: int) -> dict:
    """A small stage evaluation in the card schema (numbers made up; no model is run)."""
    block = {"auroc": 0.9, "auroc_ci": [0.85, 0.95], "tpr@0.01": 0.6, "n_human": 50, "n_machine": 50}
    return {"schema": "gpt2guard.release.evaluation/1",
            "run": {"plan": "fuzz", "scenario": "staged", "seed": 0},
            "stage": {"index": index, "name": size, "sizes": [size], "date": f"2019-0{index + 1}-01",
                      "tier": "public", "decision": "release", "reason": "all required gates passed"},
            "model": {"family": "micro", "size": size, "n_params": 1000 * index},
            "detector": {"kind": "logistic", "fpr": 0.01, "threshold": 0.5},
            "detection": {"overall": block, "by_sampling": {"pure": block}},
            "perplexity": {size: {"ppl": 100.0 / index, "ci": [90.0 / index, 110.0 / index]}},
            "gates": [{"name": "detectability", "value": 0.6, "threshold": 0.5, "op": ">=", "passed": True,
                       "required": True}]}


@pytest.fixture(scope="session")
def ws(micro_family, tmp_path_factory):
    """Good inputs of every kind the commands read."""
    from gpt2guard.datasets.records import Record
    from gpt2guard.datasets.writer import SetWriter
    from gpt2guard.detector.estimators import FeatureDetector
    from gpt2guard.detector.tfidf import TfidfDetector
    from gpt2guard.detector.trained import TrainedDetector, update_meta
    from gpt2guard.release.card import write_card
    from gpt2guard.release.defaults import init_plan
    from gpt2guard.release.log import DecisionLog
    from gpt2guard.release.manifest import write_manifest

    root = tmp_path_factory.mktemp("fuzz-ws")
    rng = random.Random(0)
    sets = root / "sets"
    for split in ("train", "valid", "test"):
        for name, label, n_words in (("h", "human", 30), ("m", "machine", 20)):
            with SetWriter(sets, name, split) as w:
                for i in range(10):
                    w.write(Record(id=f"{name}{i}", text=prose(rng, n_words + i), label=label, source=f"src{i % 4}"))
    texts = [prose(rng, 25) for _ in range(12)] + [prose(rng, 18) + " token token" for _ in range(12)]
    labels = ["human"] * 12 + ["machine"] * 12
    tfidf = root / "det-tfidf"
    TfidfDetector(min_tokens=4).fit(texts, labels).save(tfidf)
    update_meta(tfidf, threshold=0.0)
    features = root / "det-features"
    TrainedDetector(FeatureDetector("logistic"), "micro", ["small"], min_tokens=4).fit(texts, labels).save(features)

    doc = root / "doc.txt"
    doc.write_text(prose(rng, 40) + "\n", encoding="utf-8")
    jsonl = root / "docs.jsonl"
    jsonl.write_bytes((sets / "h.test.jsonl").read_bytes())
    txtdir = root / "txt"
    txtdir.mkdir()
    for i in range(3):
        (txtdir / f"d{i}.txt").write_text(prose(rng, 20), encoding="utf-8")

    plan_dir = root / "plan"
    init_plan(plan_dir / "release-plan.toml", "micro")

    run = root / "run"
    for index, size in enumerate(("small", "medium"), 1):
        stage = run / "scenarios" / "staged" / "stages" / f"0{index}-{size}"
        stage.mkdir(parents=True)
        (stage / "evaluation.json").write_text(json.dumps(evaluation(size, index), indent=2))
    (run / "run.json").write_text(json.dumps({"scenarios": ["staged"]}))
    cards = root / "cards"
    write_card(evaluation("small", 1), cards / "small")
    write_card(evaluation("medium", 2), cards / "medium")

    tree = root / "tree"
    stage = tree / "stage"
    stage.mkdir(parents=True)
    (stage / "weights.txt").write_text("weights\n")
    (stage / "notes.md").write_text("# notes\n")
    write_manifest(stage, {"stage": "small"})
    log = DecisionLog(tree / "decisions.jsonl")
    log.append({"stage": "small", "decision": "release"})
    log.append({"stage": "medium", "decision": "hold"})

    return SimpleNamespace(root=root, sets=sets, tfidf=tfidf, features=features, doc=doc, jsonl=jsonl, txtdir=txtdir,
                           plan_dir=plan_dir, plan=plan_dir / "release-plan.toml", run=run, cards=cards, tree=tree,
                           evaluation=run / "scenarios" / "staged" / "stages" / "01-small" / "evaluation.json")
