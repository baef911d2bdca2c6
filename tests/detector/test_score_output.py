"""``score`` never contradicts itself, in any format: the probability sits on the side of its
threshold that the decision says, abstentions carry no probability, and zero-shot methods,
whose scores are not probabilities, show none."""

from __future__ import annotations

import csv
import io
import json
import math
import re

import pytest
from click.testing import CliRunner

from gpt2guard.cli import main
from gpt2guard.detector.verdict import decide

MACHINE = "the model the model said the model said that the data the data is the data of the model"
SHORT = "Hi there."


def sigmoid(z):
    return 1.0 / (1.0 + math.exp(-z))


def test_human_verdict_shows_the_threshold_on_the_probability_scale():
    """The issue's case: log-odds 5.8 (probability 0.997) under a calibrated threshold of 6.0 is
    human, and the verdict says so on the probability scale too."""
    v = decide(0, "d", 5.8, sigmoid(5.8), 6.0, 100, 1, (), 16, method="m", scorer="s",
               probability_threshold=sigmoid(6.0))
    assert v.decision == "human" and v.probability == pytest.approx(0.99698, abs=1e-5)
    assert v.probability_threshold == pytest.approx(sigmoid(6.0)) and v.probability <= v.probability_threshold
    assert "machine probability 0.997 < 0.998" in v.reason


def test_abstentions_have_no_probability():
    for flags, n in (((), 3), (("empty",), 0), (("binary",), 0)):
        v = decide(0, "d", 2.0, 0.88, 0.0, n, 1, flags, 16, method="m", scorer="s", probability_threshold=0.5)
        assert v.decision == "abstain" and v.probability is None and v.to_dict()["probability"] is None


def test_probability_on_the_wrong_side_is_withheld():
    v = decide(0, "d", 1.0, 0.2, 0.0, 50, 1, (), 16, method="m", scorer="s", probability_threshold=0.5)
    assert v.decision == "machine" and v.probability is None and "withheld" in v.reason


def test_saturated_probabilities_are_printed_apart():
    from gpt2guard.detector.verdict import format_probability

    assert format_probability(0.99962, 0.99971) == "0.9996" and format_probability(0.99971, 0.99962) == "0.9997"
    assert format_probability(None, 0.5) == "-" and format_probability(0.25, 0.5) == "0.250"


@pytest.fixture(scope="module")
def tfidf_dir(tmp_path_factory, human_docs):
    """A TF-IDF detector (no model needed) with an isotonic probability map, whose flat steps
    are where a probability could meet its threshold."""
    from gpt2guard.detector.calibrate import ProbabilityCalibrator
    from gpt2guard.detector.tfidf import TfidfDetector

    human = human_docs["train"][:30]
    machine = [" ".join(MACHINE.split()[i % 7:] + MACHINE.split()[: i % 7]) + f" step {i}" for i in range(30)]
    det = TfidfDetector().fit(human + machine, ["human"] * 30 + ["machine"] * 30)
    scores = det.decision_texts(human_docs["valid"][:20] + machine[:10])
    det.meta["probability_calibration"] = ProbabilityCalibrator("isotonic").fit(scores, [0] * 20 + [1] * 10).to_dict()
    det.threshold = float(sorted(scores)[15])
    out = tmp_path_factory.mktemp("det") / "tfidf"
    det.save(out)
    return out


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, human_docs):
    d = tmp_path_factory.mktemp("in")
    with open(d / "docs.jsonl", "w", encoding="utf-8") as f:
        docs = human_docs["test"][:12] + [MACHINE + f" again {i}" for i in range(6)] + [SHORT, "", "\u200b" * 5]
        for i, text in enumerate(docs):
            f.write(json.dumps({"id": f"d{i}", "text": text}) + "\n")
    return d / "docs.jsonl"


def _check(rows):
    """Every row agrees with itself; returns the judged rows."""
    judged = []
    for r in rows:
        if r["decision"] == "abstain":
            assert r["probability"] is None, r
            continue
        judged.append(r)
        assert (r["decision"] == "machine") == (r["score"] > r["threshold"]), r
        if r["probability"] is not None:
            p, t = r["probability"], r["probability_threshold"]
            assert (p >= t) if r["decision"] == "machine" else (p <= t), r
    return judged


def test_score_formats_agree_with_the_decision(tfidf_dir, inputs, micro_family, tmp_path):
    base = ["score", str(inputs), "--detector", str(tfidf_dir), "--family", "micro"]
    res = CliRunner().invoke(main, base + ["--format", "json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    judged = _check(rows)
    assert {r["decision"] for r in judged} == {"machine", "human"} and len(judged) >= 15
    assert all(r["probability"] is not None and r["probability_threshold"] is not None for r in judged)
    short = next(r for r in rows if r["name"].endswith(":d18"))
    assert short["decision"] == "abstain" and "too short" in short["reason"]
    hidden = next(r for r in rows if r["name"].endswith(":d20"))
    assert hidden["decision"] == "abstain" and "zero_width" in hidden["flags"]

    res = CliRunner().invoke(main, base + ["--format", "csv"], catch_exceptions=False)
    table = list(csv.DictReader(io.StringIO(res.output)))
    assert [r["name"] for r in table] == [r["name"] for r in rows]
    for c, j in zip(table, rows):
        assert c["decision"] == j["decision"]
        if j["decision"] == "abstain":
            assert c["probability"] == ""
        else:
            p, t = float(c["probability"]), float(c["probability_threshold"])
            assert (p >= t) if c["decision"] == "machine" else (p <= t)

    res = CliRunner().invoke(main, base, catch_exceptions=False)
    lines = res.output.strip().splitlines()
    assert "machine probability above" in lines[-1]
    t = json_threshold = rows[0]["probability_threshold"]
    for line, j in zip(lines[1:-1], rows):
        decision, prob = line.split()[1:3]
        assert decision == j["decision"]
        if decision == "abstain":
            assert prob == "-"
        else:  # printed with enough digits to sit on the right side of the threshold
            assert (float(prob) >= round(t, 3) - 1e-12) if decision == "machine" else (float(prob) <= t + 1e-12)
    assert json_threshold is not None

    page = tmp_path / "r.html"
    res = CliRunner().invoke(main, base + ["--html", str(page), "--format", "json"], catch_exceptions=False)
    sections = page.read_text(encoding="utf-8").split('<section class="doc">')[1:]
    assert len(sections) == len(rows)
    for sec, j in zip(sections, rows):
        assert f"<b>{j['decision']}</b>" in sec
        m = re.search(r"machine probability ([0-9.]+)", sec)
        assert (m is None) == (j["probability"] is None)
        if m:
            assert float(m.group(1)) == pytest.approx(j["probability"], abs=5e-4)


def test_zero_shot_output_shows_no_probability(inputs, micro_family):
    res = CliRunner().invoke(main, ["score", str(inputs), "--family", "micro", "--threshold", "0", "--format", "json"],
                             catch_exceptions=False)
    rows = json.loads(res.output)
    assert all(r["probability"] is None and r["probability_threshold"] is None for r in rows)
    assert _check(rows)
    res = CliRunner().invoke(main, ["score", str(inputs), "--family", "micro", "--threshold", "0"],
                             catch_exceptions=False)
    assert "not probabilities" in res.output.splitlines()[-1]


def test_max_tokens_cuts_with_a_flag_and_one_line(inputs, micro_family):
    res = CliRunner().invoke(main, ["score", str(inputs), "--family", "micro", "--threshold", "0", "--format", "json",
                                    "--max-tokens", "20"], catch_exceptions=False)
    assert res.exit_code == 0
    rows = json.loads(res.stdout)
    long = [r for r in rows if "truncated" in r["flags"]]
    assert long and all(r["n_tokens"] == 20 for r in long) and all(r["n_tokens"] <= 20 for r in rows)
    assert f"{len(long)} document(s) cut at --max-tokens 20" in res.stderr
    res = CliRunner().invoke(main, ["score", str(inputs), "--family", "micro", "--max-tokens", "0"])
    assert res.exit_code == 2 and "Traceback" not in res.output
