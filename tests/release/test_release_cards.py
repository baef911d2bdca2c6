"""Model cards from stage evaluations: sections, numbers, metadata, HTML, checks, diffs, CLI.

The evaluations are constructed inputs filled with plausible numbers (no model is run).
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from gpt2guard.cli import GuardGroup
from gpt2guard.cli.release_card import card
from gpt2guard.errors import GuardError
from gpt2guard.release.card import (
    card_markdown,
    family_card_markdown,
    write_card,
    write_family_card,
)
from gpt2guard.release.card_check import (
    check_card,
    diff_cards,
    format_diff,
    parse_front_matter,
    sections,
)
from gpt2guard.release.card_format import SECTIONS
from gpt2guard.release.card_io import (
    evaluation_for_size,
    load_evaluation,
    stage_evaluations,
)

SIZES = ["small", "medium", "large", "xl"]
PARAMS = {"small": 301_234, "medium": 612_345, "large": 1_043_210, "xl": 1_712_345}


def metric_block(auroc: float, tpr: float, n_human: int = 100, n_machine: int = 200) -> dict:
    """A metrics dict with the keys of gpt2guard.detector.evaluate.metrics: TPRs at thresholds
    set on the test human scores, and ``tpr`` at the calibrated threshold with abstentions
    left out (figures a card must not show as flagged rates)."""
    return {"n_human": n_human, "n_machine": n_machine, "n_abstain": 0,
            "auroc": auroc, "auroc_ci": [round(auroc - 0.04, 3), round(auroc + 0.03, 3)],
            "tpr@0.05": round(tpr + 0.15, 3), "tpr@0.05_ci": [round(tpr + 0.05, 3), round(tpr + 0.25, 3)],
            "tpr@0.01": round(tpr + 0.027, 3), "tpr@0.01_ci": [round(tpr - 0.08, 3), round(tpr + 0.08, 3)],
            "tpr@0.001": round(tpr / 2, 3), "tpr@0.001_ci": None,
            "threshold": 0.42, "accuracy": 0.8, "tpr": round(tpr + 0.013, 3), "fpr": 0.012}


def cell(auroc: float, flagged: float, n_machine: int = 100, n_abstain: int = 0) -> dict:
    """One size and sampling method of ``detection.by_size_sampling``: ``tpr`` is the share
    flagged at the calibrated threshold with abstentions not flagged (what the gate judges);
    ``n_machine`` counts the scored documents only."""
    return {**metric_block(auroc, flagged, 100, n_machine), "n_abstain": n_abstain, "tpr": flagged,
            "tpr_ci": [round(flagged - 0.08, 3), round(flagged + 0.08, 3)]}


def sample_sets(size: str) -> list[dict]:
    return [{"set": f"nano-{size}{suffix}", "size": size, "sampling": method, "split": split, "n": 100,
             "sha256": f"{digest}{split[:2]}" * 16}
            for method, suffix, digest in (("pure", "-pure", "34"), ("top-k=40", "-k40", "56"))
            for split in ("train", "test")]


def model_block(size: str) -> dict:
    index = SIZES.index(size) + 1
    return {"family": "nano", "size": size, "source": f"nano/{size}", "n_params": PARAMS[size],
            "n_layer": index, "n_head": 2 + index, "n_embd": 64 + 32 * index, "n_positions": 256,
            "vocab_size": 4096, "weights_sha256": f"{index}d" * 32, "tokenizer_sha256": "ef" * 32,
            "training": {"corpus": "builtin prose (docstrings and docs of numpy, sklearn, click, tqdm)",
                         "train_tokens": 465463, "val_loss": 5.539, "recipe": {"steps": 400, "lr": 0.003}}}


def make_evaluation(index: int = 2, decision: str = "release", auroc: float = 0.913, tpr: float = 0.634) -> dict:
    """An evaluation.json of stage ``index`` (1 = small, ...) following the schema."""
    size = SIZES[index - 1]
    before = SIZES[:index - 1]
    evaluated = SIZES[:index]
    ppl = {s: {"ppl": round(320.1 - 65.8 * i, 1), "ci": [round(300.2 - 65.8 * i, 1), round(341.0 - 65.8 * i, 1)],
               "n_docs": 100, "n_tokens": 12800} for i, s in enumerate(evaluated)}
    n = len(evaluated)
    transfer = None if index == 1 else {
        "sizes": evaluated,
        "auroc": [[0.93 if i == j else 0.85 for j in range(n)] for i in range(n)],
        "tpr@0.01": [[0.6 if i == j else 0.4 for j in range(n)] for i in range(n)]}
    gate_ok = decision == "release"
    return {
        "schema": "gpt2guard.release.evaluation/1",
        "run": {"plan": "gpt2-style-staged", "scenario": "staged", "plan_sha256": "ab" * 32, "seed": 0,
                "versions": {"gpt2guard": "0.1.0", "torch": "2.13.0"}},
        "stage": {"index": index, "name": size, "sizes": [size], "date": f"2019-0{index + 1}-03",
                  "tier": "partners" if gate_ok else "download", "decision": decision,
                  "reason": "all required gates passed" if gate_ok else "detectability gate failed",
                  "artifacts": ["weights", "model_card", "samples", "detector"]},
        "model": model_block(size),
        "models": {size: model_block(size)},
        "released_before": before,
        "detector": {"kind": "logistic", "trained_on": before or [size], "scorers": ["small"], "fallback": None,
                     "fpr": 0.01, "threshold": 0.42, "threshold_ci": [0.3, 0.55], "n_human_calibration": 200},
        "detection": {"overall": metric_block(auroc, tpr),
                      "by_sampling": {"pure": metric_block(0.95, 0.81, 100, 100),
                                      "top-k=40": metric_block(0.88, tpr, 100, 100)},
                      "by_length": {"64-127": metric_block(0.93, 0.7, 50, 100),
                                    "0-63": metric_block(0.79, 0.41, 50, 100)},
                      "by_size_sampling": {size: {"pure": cell(0.95, 0.81), "top-k=40": cell(0.88, tpr)}}},
        "transfer": transfer,
        "perplexity": ppl,
        "quality_gain": None if index == 1 else {"vs": before[-1], "size": size, "value": 0.206, "ci": [0.18, 0.23]},
        "gates": [{"name": "detectability", "metric": "tpr (worst of pure, top-k=40)",
                   "value": tpr if gate_ok else 0.45, "ci": [0.4, 0.65], "threshold": 0.5, "op": ">=",
                   "passed": gate_ok, "required": True, "evidence": [f"stages/0{index}-{size}/detection.json"],
                   "note": ""}],
        "data": {"human": {"set": "builtin", "splits": {"train": 300, "calibration": 200, "test": 100},
                           "sha256": "12" * 32},
                 "samples": sample_sets(size)},
        "evaluation_sha256": f"{index:02d}" * 32,
    }


def make_pair_stage(decision: str = "release") -> dict:
    """One stage that measures two sizes at once (medium and large), as an all-at-once plan does."""
    e = make_evaluation(3, decision=decision)
    e["stage"].update(name="together", sizes=["medium", "large"])
    e["models"] = {z: model_block(z) for z in ("medium", "large")}
    e["model"] = {**model_block("large"), "stage_sizes": ["medium", "large"]}
    e["released_before"] = ["small"]
    e["detection"]["by_size_sampling"] = {
        "medium": {"pure": cell(0.97, 0.9, 98, 2), "top-k=40": cell(0.91, 0.7)},
        "large": {"pure": cell(0.93, 0.75), "top-k=40": cell(0.84, 0.52, 95, 5)}}
    e["data"]["samples"] = sample_sets("small") + sample_sets("medium") + sample_sets("large")
    e["quality_gain"] = {"vs": "small", "size": "large", "value": 0.4, "ci": [0.35, 0.45]}
    return e


@pytest.fixture
def evaluation():
    return make_evaluation()


def section_text(markdown: str, name: str) -> str:
    _, body, _ = parse_front_matter(markdown)
    return "\n".join(dict(sections(body))[name])


def test_every_section_present_and_filled(evaluation):
    text = card_markdown(evaluation)
    _, body, _ = parse_front_matter(text)
    found = sections(body)
    assert [h for h, _ in found] == list(SECTIONS)
    assert all("".join(lines).strip() for _, lines in found)
    assert check_card(text) == []


def test_numbers_come_from_the_evaluation(evaluation):
    text = card_markdown(evaluation)
    assert "0.913 [0.873, 0.943]" in text  # overall AUROC with CI
    assert "63.4% [55.4%, 71.4%] of top-k 40 samples" in section_text(text, "Intended use")
    assert "612,345" in section_text(text, "Model details")
    assert "254.3 [234.4, 275.2]" in text and "320.1" in text  # this size and the previous release
    assert "0.206 [0.18, 0.23]" in text  # quality gain
    assert ">= 0.5" in text and "pass" in section_text(text, "Quantitative analyses")
    changed = copy.deepcopy(evaluation)
    changed["detection"]["overall"]["auroc"] = 0.777
    changed["models"]["medium"]["n_params"] = 999_001
    other = card_markdown(changed)
    assert "0.777" in other and "0.913 [" not in other and "999,001" in other


def test_missing_pieces_say_not_measured():
    first = make_evaluation(index=1)
    first["detection"]["by_length"] = None
    first["detection"]["by_size_sampling"]["small"]["pure"]["auroc_ci"] = None
    text = card_markdown(first)
    quant = section_text(text, "Quantitative analyses")
    assert "Transfer matrix: not measured: the first stage" in quant
    assert "Quality gain: not measured: no earlier released size" in quant
    assert "By length: not measured" in quant
    assert "(CI not measured)" in quant
    assert check_card(text) == []
    bare = card_markdown({"schema": "gpt2guard.release.evaluation/1", "model": {"family": "nano", "size": "xl"}})
    assert "Release decision not recorded" in bare and "Detection of this size's samples: not measured" in bare
    assert "- **Parameters:** not recorded" in bare
    assert check_card(bare) == ["model-index nano-xl: no results (nothing measured)"]


def test_nan_cells_in_transfer_render_as_not_measured(evaluation):
    evaluation["transfer"]["auroc"][0][1] = None
    evaluation["transfer"]["auroc"][1][0] = float("nan")
    quant = section_text(card_markdown(evaluation), "Quantitative analyses")
    assert quant.count("not measured: cell not evaluated") == 2


def test_held_size_says_not_released():
    held = make_evaluation(index=3, decision="hold")
    text = card_markdown(held)
    meta, body, _ = parse_front_matter(text)
    assert "**NOT RELEASED.**" in body.split("## Model details")[0]
    assert "detectability gate failed" in body.split("## Model details")[0]
    assert "**FAIL**" in section_text(text, "Quantitative analyses")
    assert meta["gpt2guard"]["decision"] == "hold" and meta["gpt2guard"]["released"] is False
    assert meta["gpt2guard"]["tier"] is None  # the plan's tier for the stage was never given
    details = section_text(text, "Model details")
    assert "- **Access tier:** none (not released)" in details
    assert "- **Published artifacts:** none (not released)" in details
    assert "Weights sha256" not in details and held["model"]["weights_sha256"] not in text
    assert "download" not in body.lower()
    assert check_card(text) == []
    released = card_markdown(make_evaluation(index=3))
    assert "- **Weights sha256:** `" + "3d" * 32 + "`" in released
    assert parse_front_matter(released)[0]["gpt2guard"]["tier"] == "partners"


def test_front_matter_and_model_index(evaluation):
    meta, _, problem = parse_front_matter(card_markdown(evaluation))
    assert problem is None
    assert meta["language"] == "en" and meta["library_name"] == "transformers"
    assert meta["pipeline_tag"] == "text-generation" and meta["license"]
    assert set(meta["tags"]) >= {"gpt2", "text-generation", "gpt2guard", "staged-release"}
    (entry,) = meta["model-index"]
    assert entry["name"] == "nano-medium"
    (ppl,) = [r for r in entry["results"] if r["task"]["type"] == "text-generation"]
    assert ppl["metrics"] == [{"type": "perplexity", "value": 254.3, "name": "Perplexity", "verified": False}]
    assert ppl["dataset"]["revision"] == "12" * 32 and ppl["dataset"]["split"] == "test"
    detection = {r["dataset"]["type"]: r for r in entry["results"] if r["task"]["type"] == "text-classification"}
    assert set(detection) == {"gpt2guard/nano-medium-pure", "gpt2guard/nano-medium-k40"}
    k40 = detection["gpt2guard/nano-medium-k40"]
    assert {m["name"]: m["value"] for m in k40["metrics"]} == {
        "AUROC": 0.88, "Flagged at the calibrated 1% FPR threshold": 0.634}
    assert k40["dataset"]["revision"] == "56te" * 16 and k40["dataset"]["split"] == "test"  # the set's digest
    assert k40["dataset"]["args"] == {"size": "medium", "sampling": "top-k=40"}
    assert meta["gpt2guard"]["evaluation_sha256"] == evaluation["evaluation_sha256"]
    assert meta["gpt2guard"]["stage"]["index"] == 2 and meta["gpt2guard"]["decision"] == "release"


def test_hugging_face_reads_the_model_index(evaluation):
    from huggingface_hub import ModelCard

    data = ModelCard(card_markdown(evaluation)).data
    assert data.model_name == "nano-medium" and data.license == "mit"
    results = {(r.dataset_type, r.metric_type): r.metric_value for r in data.eval_results}
    assert results == {("gpt2guard/builtin", "perplexity"): 254.3,
                       ("gpt2guard/nano-medium-pure", "roc_auc"): 0.95,
                       ("gpt2guard/nano-medium-pure", "flagged_at_calibrated_threshold"): 0.81,
                       ("gpt2guard/nano-medium-k40", "roc_auc"): 0.88,
                       ("gpt2guard/nano-medium-k40", "flagged_at_calibrated_threshold"): 0.634}


def test_one_flagged_rate_per_sample_set(evaluation):
    """Headline, detection table, plot data, ethics, caveats and model-index give the gate's
    rate (calibrated threshold, abstentions not flagged); the rates at thresholds set on the
    test human scores and the rate with abstentions left out appear nowhere."""
    evaluation["detection"]["by_size_sampling"]["medium"]["top-k=40"] = cell(0.88, 0.6, n_machine=96, n_abstain=4)
    text = card_markdown(evaluation)
    gate_rate = "60% [52%, 68%]"
    assert f"{gate_rate} of top-k 40 samples (`nano-medium-k40`)" in section_text(text, "Intended use")
    row = next(line for line in section_text(text, "Quantitative analyses").splitlines()
               if line.startswith("| `nano-medium-k40`"))
    assert row.endswith(f"| 100 | 4 | 0.880 [0.840, 0.910] | {gate_rate} |")  # 96 scored + 4 abstained
    assert "40% of them pass the released detector unflagged" in section_text(text, "Ethical considerations")
    # all of medium's samples: (81 + 60) flagged of 200, not a rate with another threshold
    assert "| all medium samples | all | 2 sets above | 200 | 4 | 0.913 [0.873, 0.943] | 70.5% (CI not measured) |" \
        in text
    meta, body, _ = parse_front_matter(text)
    values = {(r["dataset"]["type"], m["type"]): m["value"] for r in meta["model-index"][0]["results"]
              for m in r["metrics"]}
    assert values[("gpt2guard/nano-medium-k40", "flagged_at_calibrated_threshold")] == 0.6
    other_rates = {evaluation["detection"]["by_sampling"]["top-k=40"]["tpr@0.01"],  # threshold on test humans
                   evaluation["detection"]["by_sampling"]["top-k=40"]["tpr"],  # abstentions left out
                   evaluation["detection"]["overall"]["tpr@0.01"], evaluation["detection"]["overall"]["tpr"]}
    for rate in other_rates:
        assert f"{rate * 100:.1f}".rstrip("0").rstrip(".") + "%" not in body
    assert "TPR@" not in body
    from gpt2guard.release.card_detect import set_rows

    assert [r["flagged"] for r in set_rows(card_view(evaluation))] == [0.81, 0.6]


def card_view(evaluation):
    from gpt2guard.release.card_size import size_view

    return size_view(evaluation, evaluation["model"]["size"])


def test_a_stage_of_two_sizes_gets_a_card_per_size(tmp_path):
    from gpt2guard.release.card import write_stage_cards

    stage = make_pair_stage()
    written = write_stage_cards(stage, tmp_path / "card")
    assert set(written) == {"medium", "large"} and not (tmp_path / "card" / "README.md").exists()
    for size, other in (("medium", "large"), ("large", "medium")):
        text = (tmp_path / "card" / size / "README.md").read_text()
        assert check_card(text) == [], size
        meta, body, _ = parse_front_matter(text)
        assert meta["gpt2guard"]["model"] == f"nano-{size}" and meta["gpt2guard"]["stage_sizes"] == ["medium", "large"]
        details = section_text(text, "Model details")
        assert f"- **Parameters:** {PARAMS[size]:,}" in details
        assert stage["models"][size]["weights_sha256"] in details
        assert stage["models"][other]["weights_sha256"] not in text
        (entry,) = meta["model-index"]
        sets = {r["dataset"]["type"] for r in entry["results"] if r["task"]["type"] == "text-classification"}
        assert sets == {f"gpt2guard/nano-{size}-pure", f"gpt2guard/nano-{size}-k40"}
        assert f"nano-{other}-" not in section_text(text, "Quantitative analyses")
        assert f"nano-{other}-" not in section_text(text, "Evaluation data")
        ppl = next(r for r in entry["results"] if r["task"]["type"] == "text-generation")
        assert ppl["metrics"][0]["value"] == stage["perplexity"][size]["ppl"]
        # the stage pooled both sizes for AUROC and length: not shown as this size's
        assert "not of " + size + " alone" in section_text(text, "Quantitative analyses")
        assert "By length: not measured: the stage measured length buckets over the samples of medium, large" in text
    medium = (tmp_path / "card" / "medium" / "README.md").read_text()
    assert "90% [82%, 98%] of pure samples (`nano-medium-pure`), 70% [62%, 78%] of top-k 40" in medium
    assert "| all medium samples | all | 2 sets above | 200 | 2 | not measured" in medium
    assert "80% (CI not measured)" in medium  # (90 + 70) of 200
    large = (tmp_path / "card" / "large" / "README.md").read_text()
    assert "Quality gain over small: 0.4 [0.35, 0.45]" in large
    assert "Quality gain over small: 0.2056 (CI not measured: the stage bootstrapped the gain of large)" in medium
    one = write_stage_cards(make_evaluation(2), tmp_path / "one")
    assert set(one) == {"medium"} and (tmp_path / "one" / "README.md").is_file()  # one size: card/README.md


def test_family_card_survives_a_model_card_load_and_save(tmp_path):
    from huggingface_hub import ModelCard

    evaluations = [make_evaluation(1), make_evaluation(2), make_pair_stage()]
    evaluations[2]["stage"]["sizes"] = ["large", "xl"]
    evaluations[2]["models"] = {z: model_block(z) for z in ("large", "xl")}
    cells = evaluations[2]["detection"]["by_size_sampling"]
    evaluations[2]["detection"]["by_size_sampling"] = {"large": cells["medium"], "xl": cells["large"]}
    evaluations[2]["data"]["samples"] = sample_sets("large") + sample_sets("xl")
    evaluations[2]["perplexity"]["xl"] = {"ppl": 101.5, "ci": [90.0, 111.0], "n_docs": 100, "n_tokens": 12800}
    evaluations[2]["stage"]["decision"] = "hold"
    write_family_card(evaluations, tmp_path / "fam")
    path = tmp_path / "fam" / "README.md"
    original = parse_front_matter(path.read_text())[0]["model-index"]
    ModelCard.load(path).save(tmp_path / "saved.md")
    saved_text = (tmp_path / "saved.md").read_text()
    again = parse_front_matter(saved_text)[0]["model-index"]

    def entries(model_index):
        out = []
        for e in model_index:
            for r in e["results"]:
                for m in r["metrics"]:
                    out.append((e["name"], r["task"]["type"], r["task"].get("name"), r["dataset"]["type"],
                                r["dataset"]["name"], r["dataset"]["config"], r["dataset"]["split"],
                                r["dataset"].get("revision"), tuple(sorted(r["dataset"]["args"].items())),
                                m["type"], m["name"], m["value"]))
        return sorted(out)

    assert entries(again) == entries(original)
    assert len(entries(original)) == 4 * 1 + 4 * 2 * 2  # 4 sizes: perplexity, and 2 sets x (AUROC, flagged)
    for r in again[0]["results"]:  # each result still names its own size
        size = r["dataset"]["args"]["size"]
        assert r["dataset"]["config"] == f"nano-{size}"
        assert r["task"]["type"] == "text-generation" or r["dataset"]["type"].startswith(f"gpt2guard/nano-{size}-")
    by_size = {r["dataset"]["args"]["size"]: r["metrics"][0]["value"] for r in again[0]["results"]
               if r["task"]["type"] == "text-generation"}
    assert by_size == {"small": 320.1, "medium": 254.3, "large": 188.5, "xl": 101.5}
    assert check_card(saved_text) == []
    one = tmp_path / "one.md"
    one.write_text(card_markdown(make_evaluation(2)))
    ModelCard.load(one).save(tmp_path / "one-saved.md")
    assert entries(parse_front_matter((tmp_path / "one-saved.md").read_text())[0]["model-index"]) == \
        entries(parse_front_matter(one.read_text())[0]["model-index"])


def test_check_fails_a_card_whose_metadata_and_body_disagree(evaluation, tmp_path):
    text = card_markdown(evaluation)
    assert check_card(text) == []
    edited = text.replace("      value: 0.634\n", "      value: 0.7\n", 1)
    assert check_card(edited) == ["model-index nano-medium (nano-medium-k40): Flagged at the calibrated 1% FPR "
                                  "threshold 0.7 is not what the body's tables show"]
    body_edit = text.replace("| 0.880 [0.840, 0.910] |", "| 0.890 [0.840, 0.910] |")
    assert check_card(body_edit) == ["model-index nano-medium (nano-medium-k40): AUROC 0.88 is not what the body's "
                                     "tables show"]
    ppl_edit = text.replace("| medium | this size | 254.3", "| medium | this size | 257.3")
    assert check_card(ppl_edit) == ["model-index nano-medium (medium): Perplexity 254.3 is not what the body's "
                                    "tables show"]
    held = card_markdown(make_evaluation(3, decision="hold"))
    tiered = held.replace("  tier: null\n", "  tier: partners\n")
    assert check_card(tiered) == ["front matter: access tier 'partners' for a size that was not released"]
    claims_release = held.replace("  decision: hold\n  released: false\n", "  decision: release\n  released: true\n")
    problems = check_card(claims_release)
    assert "Model details: decision '**NOT RELEASED** (held): detectability gate failed' but front matter says " \
           "release" in problems
    assert "banner: does not say released but front matter decision is 'release'" in problems
    flag_only = held.replace("  released: false\n", "  released: true\n")
    assert check_card(flag_only) == ["front matter: released is True but the decision is 'hold'"]
    tier_body = text.replace("- **Access tier:** **partners**", "- **Access tier:** **download**")
    assert check_card(tier_body) == ["Model details: access tier '**download** (the weights go only to partner "
                                     "organisations under a sharing agreement)' but front matter says 'partners'"]
    family = family_card_markdown([make_evaluation(1), make_evaluation(2, decision="hold")])
    assert check_card(family) == []
    lying = family.replace("    decision: hold\n    released: false\n", "    decision: release\n    released: true\n")
    assert check_card(lying) == ["Model details: size medium (stage 2) decision 'NOT RELEASED' but front matter "
                                 "says 'release'",
                                 "Model details: size medium (stage 2) access tier 'none (not released)' but front "
                                 "matter says None"]
    card_file = tmp_path / "README.md"
    card_file.write_text(edited)
    result = invoke("check", card_file)
    assert result.exit_code == 1
    assert result.output.splitlines() == [f"{card_file}: 1 problem(s)",
                                          "  - " + check_card(edited)[0]]


def test_write_card_html_is_self_contained(evaluation, tmp_path):
    written = write_card(evaluation, tmp_path / "medium")
    assert set(written) >= {"README.md", "model-card.html", "plots/detection_by_sampling.png",
                            "plots/auroc_by_length.png", "plots/transfer.png", "plots/perplexity.png"}
    readme = written["README.md"].read_text()
    assert "![Transfer AUROC heatmap](plots/transfer.png)" in readme
    page = written["model-card.html"].read_text()
    assert 'src="http' not in page and "<script" not in page and "<link" not in page
    srcs = re.findall(r'src="([^"]*)"', page)
    assert len(srcs) == 4 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "0.913 [0.873, 0.943]" in page and "612,345" in page and "<table>" in page
    assert all(p.read_bytes().startswith(b"\x89PNG") for k, p in written.items() if k.startswith("plots/"))


def test_first_stage_draws_no_transfer_plot_and_removes_a_stale_one(tmp_path):
    write_card(make_evaluation(index=2), tmp_path)
    written = write_card(make_evaluation(index=1), tmp_path)
    assert "plots/transfer.png" not in written and not (tmp_path / "plots" / "transfer.png").exists()


def test_family_card(tmp_path):
    evaluations = [make_evaluation(3, decision="hold", auroc=0.81, tpr=0.45), make_evaluation(1), make_evaluation(2)]
    text = family_card_markdown(evaluations)
    assert check_card(text) == []
    meta, _, _ = parse_front_matter(text)
    (entry,) = meta["model-index"]
    assert entry["name"] == "nano-family"
    assert [r["dataset"]["config"] for r in entry["results"] if r["task"]["type"] == "text-generation"] == \
        ["nano-small", "nano-medium", "nano-large"]
    assert meta["gpt2guard"]["card"] == "family"
    assert [(z["size"], z["released"], z["tier"]) for z in meta["gpt2guard"]["sizes"]] == \
        [("small", True, "partners"), ("medium", True, "partners"), ("large", False, None)]
    assert "**NOT RELEASED:** `large`" in text
    quant = section_text(text, "Quantitative analyses")
    assert "0.810 [0.770, 0.840]" in quant and "188.5" in quant
    written = write_family_card(evaluations, tmp_path)
    assert {"plots/family_detectability.png", "plots/family_perplexity.png", "plots/transfer.png"} <= set(written)
    page = written["model-card.html"].read_text()
    assert 'src="http' not in page and page.count('src="data:image/png;base64,') == 3


def test_text_from_the_evaluation_cannot_break_the_card(evaluation, tmp_path):
    evaluation["stage"]["decision"] = "hold"
    evaluation["stage"]["reason"] = "gate failed\n## Factors\n<script>alert(1)</script> | x"
    text = card_markdown(evaluation)
    assert check_card(text) == []
    _, body, _ = parse_front_matter(text)
    assert [h for h, _ in sections(body)] == list(SECTIONS)
    page = write_card(evaluation, tmp_path)["model-card.html"].read_text()
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_family_card_refuses_mixed_or_no_stages():
    other = make_evaluation(2)
    other["model"]["family"] = "gpt2"
    with pytest.raises(GuardError, match="several families"):
        family_card_markdown([make_evaluation(1), other])
    with pytest.raises(GuardError, match="at least one"):
        family_card_markdown([])


def test_importing_cards_and_the_cli_is_light():
    code = ("import sys; import gpt2guard.cli.release_card, gpt2guard.release.card, gpt2guard.release.card_check; "
            "heavy = [m for m in ('matplotlib', 'torch', 'transformers', 'sklearn') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_check_card_names_each_problem(evaluation):
    text = card_markdown(evaluation)
    no_factors = re.sub(r"## Factors\n.*?(?=## Metrics)", "", text, flags=re.S)
    assert check_card(no_factors) == ["section 'Factors': missing"]
    empty = re.sub(r"(## Training data\n).*?(?=## Quantitative)", r"\1\nTODO\n\n", text, flags=re.S)
    assert check_card(empty) == ["section 'Training data': empty"]
    broken = text.replace("library_name: transformers", "library_name: [transformers", 1)
    problems = check_card(broken)
    assert len(problems) == 1 and problems[0].startswith("front matter: invalid YAML")
    assert check_card(text.split("---\n", 2)[2])[0].startswith("front matter: missing")
    no_index = re.sub(r"model-index:\n(?:[- ].*\n)+", "", text)
    assert check_card(no_index) == ["front matter: model-index missing"]
    no_params = re.sub(r"- \*\*Parameters:\*\*.*\n", "", text)
    assert check_card(no_params) == ["Model details: 'Parameters' missing"]


def test_diff_of_two_stages_reports_changed_metrics():
    a = card_markdown(make_evaluation(index=1, auroc=0.95, tpr=0.7))
    b = card_markdown(make_evaluation(index=2, auroc=0.913, tpr=0.634))
    d = diff_cards(a, b)
    flagged = next(m for m in d["metrics"]
                   if m["name"] == "text-classification/top-k=40/Flagged at the calibrated 1% FPR threshold")
    assert (flagged["a"], flagged["b"]) == (0.7, 0.634) and flagged["delta"] == pytest.approx(-0.066)
    ppl = next(m for m in d["metrics"] if m["name"] == "text-generation/Perplexity")
    assert (ppl["a"], ppl["b"]) == (320.1, 254.3)
    assert {"key": "gpt2guard.stage.name", "a": "small", "b": "medium"} in d["metadata"]
    assert "Quantitative analyses" in d["sections"] and not d["sections_added"]
    text = format_diff(d)
    assert "text-classification/top-k=40/Flagged at the calibrated 1% FPR threshold: 0.7 -> 0.634 (-0.066)" in text
    assert any(line.startswith("+") and "0.913" in line for line in d["sections"]["Quantitative analyses"])
    no_ethics = re.sub(r"## Ethical considerations\n.*?(?=## Caveats)", "", b, flags=re.S)
    assert diff_cards(a, no_ethics)["sections_removed"] == ["Ethical considerations"]
    assert diff_cards(a, a) == {"metrics": [], "metadata": [], "sections_added": [], "sections_removed": [],
                                "sections": {}}


# ---- command line -----------------------------------------------------------------------------

def guarded() -> click.Group:
    """The card group under a GuardGroup, as the top-level CLI mounts it (GuardError -> exit 2)."""
    root = GuardGroup(name="gpt2guard")
    root.add_command(card)
    return root


def fake_run(tmp_path, scenarios=("staged",), listed=True):
    run = tmp_path / "run"
    for scenario in scenarios:
        for i in (1, 2, 3):
            e = make_evaluation(i, decision="hold" if i == 3 else "release")
            e["run"]["scenario"] = scenario
            stage = run / "scenarios" / scenario / "stages" / f"0{i}-{SIZES[i - 1]}"
            stage.mkdir(parents=True)
            (stage / "evaluation.json").write_text(json.dumps(e))
    if listed:
        (run / "run.json").write_text(json.dumps({"scenarios": list(scenarios)}))
    return run


def invoke(*args):
    return CliRunner().invoke(guarded(), ["card", *map(str, args)])


def test_cli_build_from_run_for_a_size_and_the_family(tmp_path):
    run = fake_run(tmp_path, scenarios=("staged", "open"))
    result = invoke("build", "--run", run, "--size", "medium", "--out", tmp_path / "medium")
    assert result.exit_code == 0, result.output
    assert str(tmp_path / "medium" / "README.md") in result.output.splitlines()
    assert "# Model card: nano-medium" in (tmp_path / "medium" / "README.md").read_text()
    result = invoke("build", "--run", run, "--family", "--scenario", "open", "--out", tmp_path / "fam")
    assert result.exit_code == 0, result.output
    meta, _, _ = parse_front_matter((tmp_path / "fam" / "README.md").read_text())
    assert meta["gpt2guard"]["run"]["scenario"] == "open" and len(meta["gpt2guard"]["sizes"]) == 3
    result = invoke("build", "--evaluation", run / "scenarios/staged/stages/01-small/evaluation.json",
                    "--out", tmp_path / "small")
    assert result.exit_code == 0 and (tmp_path / "small" / "model-card.html").is_file()


def test_cli_build_any_size_of_a_stage_of_several(tmp_path):
    run = tmp_path / "run"
    stages = {"01-small": make_evaluation(1), "02-together": make_pair_stage(decision="hold")}
    for name, e in stages.items():
        (run / "scenarios" / "staged" / "stages" / name).mkdir(parents=True)
        (run / "scenarios" / "staged" / "stages" / name / "evaluation.json").write_text(json.dumps(e))
    for size in ("small", "medium", "large"):
        result = invoke("build", "--run", run, "--size", size, "--out", tmp_path / size)
        assert result.exit_code == 0, result.output
        text = (tmp_path / size / "README.md").read_text()
        assert check_card(text) == [] and f"# Model card: nano-{size}" in text
        assert f"- **Parameters:** {PARAMS[size]:,}" in text
    for size in ("medium", "large"):  # held together: neither shows a tier or a weights digest
        meta, body, _ = parse_front_matter((tmp_path / size / "README.md").read_text())
        assert meta["gpt2guard"]["released"] is False and meta["gpt2guard"]["tier"] is None
        assert "**NOT RELEASED.**" in body and "Weights sha256" not in body
    result = invoke("build", "--run", run, "--size", "xl", "--out", tmp_path / "xl")
    assert result.exit_code == 2 and "sizes evaluated: small, medium, large" in result.output
    pair = run / "scenarios" / "staged" / "stages" / "02-together" / "evaluation.json"
    result = invoke("build", "--evaluation", pair, "--out", tmp_path / "stage")
    assert result.exit_code == 0, result.output
    assert str(tmp_path / "stage" / "large" / "README.md") in result.output.splitlines()
    assert (tmp_path / "stage" / "medium" / "README.md").read_text() == (tmp_path / "medium" / "README.md").read_text()
    result = invoke("build", "--evaluation", pair, "--size", "large", "--out", tmp_path / "one")
    assert result.exit_code == 0 and (tmp_path / "one" / "README.md").read_text() == \
        (tmp_path / "large" / "README.md").read_text()
    result = invoke("build", "--evaluation", pair, "--size", "xl", "--out", tmp_path / "none")
    assert result.exit_code == 2 and result.output.strip().splitlines()[-1].endswith(
        "size 'xl' is not in this stage (sizes: medium, large)")


def test_cli_build_errors_are_one_line(tmp_path):
    run = fake_run(tmp_path)
    result = invoke("build", "--run", run, "--size", "xl", "--out", tmp_path / "x")
    assert result.exit_code == 2 and "size 'xl' is not in run" in result.output
    assert "sizes evaluated: small, medium, large" in result.output
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = invoke("build", "--evaluation", bad, "--out", tmp_path / "x")
    assert result.exit_code == 2 and "invalid JSON at line 1" in result.output
    result = invoke("build", "--evaluation", tmp_path / "missing.json", "--out", tmp_path / "x")
    assert result.exit_code == 2 and "evaluation not found" in result.output
    result = invoke("build", "--run", run, "--out", tmp_path / "x")
    assert result.exit_code == 2 and "--size SIZE or --family" in result.output
    result = CliRunner().invoke(card, ["build", "--run", str(run), "--size", "xl", "--out", str(tmp_path / "x")])
    assert isinstance(result.exception, GuardError)


def test_run_discovery(tmp_path):
    run = fake_run(tmp_path, scenarios=("b", "a"))
    assert [e["stage"]["index"] for e in stage_evaluations(run)] == [1, 2, 3]
    assert evaluation_for_size(run, "large")["run"]["scenario"] == "b"  # first listed in run.json
    (run / "run.json").unlink()
    with pytest.raises(GuardError, match="several scenarios"):
        stage_evaluations(run)
    with pytest.raises(GuardError, match="scenario 'c' not found"):
        stage_evaluations(run, "c")
    only = fake_run(tmp_path / "one", listed=False)
    assert len(stage_evaluations(only)) == 3
    (tmp_path / "other.json").write_text(json.dumps({"schema": "something/2"}))
    with pytest.raises(GuardError, match="schema"):
        load_evaluation(tmp_path / "other.json")


def test_cli_check_and_diff(tmp_path, evaluation):
    good = tmp_path / "good.md"
    good.write_text(card_markdown(evaluation))
    bad = tmp_path / "bad.md"
    bad.write_text(re.sub(r"## Factors\n.*?(?=## Metrics)", "", good.read_text(), flags=re.S))
    result = invoke("check", good)
    assert result.exit_code == 0 and result.output.strip() == f"{good}: complete"
    result = invoke("check", good, bad)
    assert result.exit_code == 1 and "section 'Factors': missing" in result.output
    result = invoke("check", tmp_path / "none.md")
    assert result.exit_code == 2 and "card not found" in result.output
    first = tmp_path / "small.md"
    first.write_text(card_markdown(make_evaluation(index=1, tpr=0.7)))
    result = invoke("diff", first, good)
    name = "text-classification/top-k=40/Flagged at the calibrated 1% FPR threshold"
    assert result.exit_code == 0 and f"{name}: 0.7 -> 0.634" in result.output
    result = invoke("diff", first, good, "--json")
    assert {"name": name, "a": 0.7, "b": 0.634, "delta": pytest.approx(-0.066)} in json.loads(result.output)["metrics"]


def test_help_has_examples():
    for command in ("build", "check", "diff"):
        result = CliRunner().invoke(card, [command, "--help"])
        assert result.exit_code == 0 and "Example:" in result.output


# ---- a real simulation on the micro family --------------------------------------------------

SIM_PLAN = """
name = "micro-cards"
family = "micro"
seed = 3
on_hold = "stop"
[evaluation]
samples = 16
test_samples = 16
length = 32
human_train = 30
human_calibration = 40
human_test = 30
n_boot = 10
batch_size = 8
[gates.detect]
kind = "detectability"
threshold = 0.0
[[stages]]
name = "first"
sizes = ["small"]
tier = "download"
gates = ["detect"]
[[stages]]
name = "second"
sizes = ["medium"]
after_days = 90
tier = "open"
gates = ["detect"]
[[scenarios]]
name = "together"
mode = "all-at-once"
[[scenarios]]
name = "held"
mode = "all-at-once"
thresholds = {detect = 1.0}
"""


@pytest.fixture(scope="module")
def simulated(micro_family, tmp_path_factory):
    """A run whose ``together`` scenario releases both micro sizes in one stage and whose
    ``held`` scenario holds them both (the detectability gate asks for every sample flagged)."""
    from gpt2guard.release.simulate import simulate

    root = tmp_path_factory.mktemp("cards-sim")
    (root / "plan.toml").write_text(SIM_PLAN)
    simulate(root / "plan.toml", root / "run", progress=False, only=["together", "held"])
    return root / "run"


def test_simulated_stage_of_two_sizes_has_a_card_per_size(simulated):
    from gpt2guard.release.card_format import fmt_ci

    stage = simulated / "scenarios" / "together" / "stages" / "01-all"
    ev = json.loads((stage / "evaluation.json").read_text())
    assert ev["stage"]["decision"] == "release" and set(ev["models"]) == {"small", "medium"}
    assert not (stage / "card" / "README.md").exists()
    for size, other in (("small", "medium"), ("medium", "small")):
        text = (stage / "card" / size / "README.md").read_text()
        assert check_card(text) == [], size
        meta, body, _ = parse_front_matter(text)
        model = ev["models"][size]
        assert f"# Model card: micro-{size}" in body and f"- **Parameters:** {model['n_params']:,}" in body
        assert model["weights_sha256"] in body and ev["models"][other]["weights_sha256"] not in text
        assert meta["gpt2guard"]["released"] is True and meta["gpt2guard"]["tier"] == "open"
        quant = section_text(text, "Quantitative analyses")
        values = {(r["dataset"]["type"], m["type"]): m["value"] for r in meta["model-index"][0]["results"]
                  for m in r["metrics"]}
        sets = {(s["size"], s["sampling"]): s for s in ev["data"]["samples"] if s["split"] == "test"}
        for method, c in ev["detection"]["by_size_sampling"][size].items():
            s = sets[(size, method)]
            row = next(line for line in quant.splitlines() if line.startswith(f"| `{s['set']}` |"))
            assert f"| {fmt_ci(c['tpr'], c['tpr_ci'], 'pct')} |" in row and f"`{s['sha256'][:16]}`" in row
            assert values[(f"gpt2guard/{s['set']}", "flagged_at_calibrated_threshold")] == round(c["tpr"], 6)
            assert f"{fmt_ci(c['tpr'], c['tpr_ci'], 'pct')} of" in section_text(text, "Intended use")
        assert f"micro-{other}" not in quant.split("### Transfer")[0]
        ppl = next(r for r in meta["model-index"][0]["results"] if r["task"]["type"] == "text-generation")
        assert ppl["metrics"][0]["value"] == round(ev["perplexity"][size]["ppl"], 6)
        assert (stage / "release" / size / "README.md").read_text() == text  # published as written
    report = (stage / "report.md").read_text()
    assert all(s["set"] in report for s in ev["data"]["samples"] if s["split"] == "test")
    family = (simulated / "scenarios" / "together" / "family-card" / "README.md").read_text()
    assert check_card(family) == []
    results = parse_front_matter(family)[0]["model-index"][0]["results"]
    assert {r["dataset"]["args"]["size"] for r in results} == {"small", "medium"}


def test_simulated_held_sizes_say_not_released(simulated, tmp_path):
    stage = simulated / "scenarios" / "held" / "stages" / "01-all"
    ev = json.loads((stage / "evaluation.json").read_text())
    assert ev["stage"]["decision"] == "hold" and not (stage / "release").exists()
    for size in ("small", "medium"):
        result = invoke("build", "--run", simulated, "--scenario", "held", "--size", size, "--out", tmp_path / size)
        assert result.exit_code == 0, result.output
        for text in ((stage / "card" / size / "README.md").read_text(), (tmp_path / size / "README.md").read_text()):
            assert check_card(text) == []
            meta, body, _ = parse_front_matter(text)
            assert meta["gpt2guard"]["released"] is False and meta["gpt2guard"]["tier"] is None
            assert "**NOT RELEASED.**" in body and ev["stage"]["reason"] in body
            assert "- **Access tier:** none (not released)" in body
            assert "open" not in section_text(text, "Model details")  # the stage's tier, never given
            assert "Weights sha256" not in body and ev["models"][size]["weights_sha256"] not in text
    result = invoke("check", *sorted(simulated.glob("scenarios/*/stages/*/card/*/README.md")),
                    *sorted(simulated.glob("scenarios/*/family-card/README.md")))
    assert result.exit_code == 0, result.output


def test_no_absolute_paths_in_cards_reports_or_evaluations(simulated):
    import os

    needles = {str(simulated), str(simulated.resolve()), os.path.expanduser("~"), "/tmp/",
               os.environ["GPT2GUARD_CACHE"]}
    files = [p for p in simulated.glob("scenarios/*/stages/*/*") if p.name in ("evaluation.json", "report.md")]
    files += [p for pattern in ("scenarios/*/stages/*/card/**/*", "scenarios/*/stages/*/release/**/*",
                                "scenarios/*/family-card/**/*")
              for p in simulated.glob(pattern) if p.suffix in (".md", ".html", ".json") and "samples" not in p.parts]
    assert len([p for p in files if p.name == "README.md"]) >= 8
    for path in files:
        text = path.read_text()
        found = [n for n in needles if n in text]
        assert not found, f"{path.relative_to(simulated)} holds {found}"
