"""A full staged-release simulation on the micro family: decisions, evidence, cards, manifests,
the decision log's chain, resume after an interruption, tamper detection and the CLI."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner
from release_helpers import MICRO_PLAN

from gpt2guard.cli import main
from gpt2guard.release.card_check import check_card, diff_cards
from gpt2guard.release.log import read_log, verify_log
from gpt2guard.release.manifest import verify_tree
from gpt2guard.release.simulate import simulate

PLAN = MICRO_PLAN


@pytest.fixture(scope="module")
def run_dir(plan_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "run"
    result = simulate(plan_file, out, progress=False)
    return out, result


def evaluation(out, scenario, stage_dir):
    return json.loads((out / "scenarios" / scenario / "stages" / stage_dir / "evaluation.json").read_text())


def test_decisions_follow_the_gates(run_dir):
    out, result = run_dir
    rows = {(r["scenario"], r["name"]): r for r in result.rows}
    assert rows[("staged", "first")]["decision"] == "release"
    assert rows[("staged", "second")]["decision"] == "release"
    # the rushed scenario waits 10 days: the waiting-period gate holds the second stage
    assert rows[("rushed", "second")]["decision"] == "hold"
    assert "wait" in rows[("rushed", "second")]["reason"]
    ev = evaluation(out, "rushed", "02-second")
    wait = next(g for g in ev["gates"] if g["name"] == "wait")
    assert (wait["value"], wait["threshold"], wait["passed"]) == (10.0, 60.0, False)


def test_stage_evidence_asks_the_same_questions_at_every_stage(run_dir):
    out, _ = run_dir
    first, second = evaluation(out, "staged", "01-first"), evaluation(out, "staged", "02-second")
    # the publishable detector is trained on every size public after the stage
    assert first["detector"]["trained_on"] == ["small"] and not first["detector"]["fallback"]
    assert second["detector"]["trained_on"] == ["small", "medium"] and second["released_before"] == ["small"]
    assert second["detector"]["scorers"] == ["small"]
    assert set(second["detection"]["by_size_sampling"]) == {"medium"}
    for cell in second["detection"]["by_size_sampling"]["medium"].values():
        assert 0.0 <= cell["tpr"] <= 1.0 and cell["tpr_ci"][0] <= cell["tpr"] <= cell["tpr_ci"][1]
    assert second["transfer"]["sizes"] == ["small", "medium"]
    # third parties: nothing before the first stage (chance), small's detector before the second
    t1, t2 = first["transfer_gate"], second["transfer_gate"]
    assert not t1["applicable"] and "not applicable" in t1["reference"] and t1["by_size"]["small"][
        "third_party_auroc"] == 0.5
    assert t2["applicable"] and t2["by_size"]["medium"]["third_party_trained_on"] == ["small"]
    assert t2["drop"] == pytest.approx(t2["by_size"]["medium"]["publishable_auroc"]
                                       - max(0.5, t2["by_size"]["medium"]["third_party_auroc"]))
    assert t2["drop_ci"][0] <= t2["drop"] <= t2["drop_ci"][1]
    # quality: small against the pre-release reference (small itself), medium against what is public
    ppl = second["perplexity"]
    assert set(ppl) == {"small", "medium"}
    q1, q2 = first["quality_gain"], second["quality_gain"]
    assert (q1["vs"], q1["reference"], q1["value"]) == ("small", "pre-release reference", 0.0)
    assert (q2["vs"], q2["reference"]) == ("small", "public")
    assert q2["value"] == pytest.approx(max(0.0, 1 - ppl["medium"]["ppl"] / ppl["small"]["ppl"]))
    assert second["model"]["n_params"] > first["model"]["n_params"]
    detect = next(g for g in second["gates"] if g["name"] == "detect")
    worst = min(c["tpr"] for c in second["detection"]["by_size_sampling"]["medium"].values())
    assert detect["value"] == pytest.approx(worst)
    assert detect["reference"] == "publishable detector trained on small, medium"
    assert (out / "scenarios" / "staged" / detect["evidence"][0]).is_file()


def test_decisions_do_not_depend_on_the_order_scenarios_run_in(run_dir, plan_file, tmp_path):
    out, _ = run_dir
    other = tmp_path / "reversed"
    simulate(plan_file, other, progress=False, only=["rushed"])  # rushed first this time, in a fresh run
    simulate(plan_file, other, progress=False, only=["staged"])
    for scenario in ("staged", "rushed"):
        a = [e for e in read_log(out / "scenarios" / scenario / "decisions.jsonl") if e["type"] == "decision"]
        b = [e for e in read_log(other / "scenarios" / scenario / "decisions.jsonl") if e["type"] == "decision"]
        assert [(e["stage"], e["decision"], e["reason"]) for e in a] == \
            [(e["stage"], e["decision"], e["reason"]) for e in b]
        assert [[(g["name"], g["value"], g["passed"]) for g in e["gates"]] for e in a] == \
            [[(g["name"], g["value"], g["passed"]) for g in e["gates"]] for e in b]


def test_log_chain_and_entries(run_dir):
    out, _ = run_dir
    for scenario in ("staged", "rushed"):
        path = out / "scenarios" / scenario / "decisions.jsonl"
        assert verify_log(path) == []
        entries = read_log(path)
        assert [e["type"] for e in entries] == ["start", "decision", "decision"]
        assert entries[1]["prev"] == entries[0]["hash"]
        assert all(g["evidence"] is not None for g in entries[1]["gates"])


def test_cards_are_complete_and_published_with_manifests(run_dir):
    out, _ = run_dir
    staged = out / "scenarios" / "staged"
    cards = [staged / "stages" / d / "card" / "README.md" for d in ("01-first", "02-second")]
    for card in cards:
        assert check_card(card.read_text()) == []
    assert check_card((staged / "family-card" / "README.md").read_text()) == []
    diff = diff_cards(cards[0].read_text(), cards[1].read_text())
    assert diff["metrics"], "the two stages' metrics differ"
    release = staged / "stages" / "02-second" / "release"
    assert (release / "model.safetensors").is_file() and (release / "README.md").is_file()
    assert (release / "detector" / "detector.json").is_file()
    first = evaluation(out, "staged", "01-first")
    saved = json.loads((staged / "stages" / "01-first" / "detector" / "detector.json").read_text())
    assert saved["model_hashes"] == {"small": first["model"]["weights_sha256"]}  # scorer weights checked on load
    assert any(p.name.startswith("micro-medium") for p in (release / "samples").iterdir())
    held = out / "scenarios" / "rushed" / "stages" / "02-second"
    assert (held / "card" / "README.md").is_file() and not (held / "release").exists()
    assert all(v.ok for v in verify_tree(out))
    for name in ("summary.md", "summary.png", "summary.json", "MANIFEST.json", "run.json"):
        assert (out / name).is_file()


def test_resume_after_interruption_gives_the_same_run(run_dir, plan_file, tmp_path):
    out, _ = run_dir
    again = tmp_path / "again"

    def stop_at_second(msg):
        if "stage 2 second" in msg and "measuring" in msg:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        simulate(plan_file, again, progress=False, only=["staged"], log=stop_at_second)
    staged = again / "scenarios" / "staged"
    assert [e["stage"] for e in read_log(staged / "decisions.jsonl") if e["type"] == "decision"] == ["first"]
    assert (staged / "stages" / "02-second").is_dir()  # left unfinished
    lines = []
    simulate(plan_file, again, progress=False, only=["staged"], log=lines.append)
    assert any("stage 1 first already decided" in m for m in lines)
    entries = read_log(staged / "decisions.jsonl")
    assert [e["stage"] for e in entries if e["type"] == "decision"] == ["first", "second"]
    assert verify_log(staged / "decisions.jsonl") == []
    for d in ("01-first", "02-second"):
        assert evaluation(again, "staged", d)["evaluation_sha256"] == evaluation(out, "staged", d)["evaluation_sha256"]


def test_another_plan_in_the_same_directory_is_refused(run_dir, plan_file, tmp_path):
    out, _ = run_dir
    other = tmp_path / "plan.toml"
    other.write_text(PLAN.replace("seed = 3", "seed = 4"))
    shutil.copytree(plan_file.parent / "evidence", tmp_path / "evidence")
    result = CliRunner().invoke(main, ["release", "simulate", str(other), "--out", str(out)])
    assert result.exit_code == 2 and "another plan" in result.output


def test_verify_cli_finds_tampering(run_dir, tmp_path):
    out, _ = run_dir
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    runner = CliRunner()
    ok = runner.invoke(main, ["release", "verify", str(copy)])
    assert ok.exit_code == 0 and ok.output.startswith("ok:")
    release = copy / "scenarios" / "staged" / "stages" / "01-first" / "release"
    (release / "README.md").write_text("a card that says something else\n")
    (release / "config.json").unlink()
    (release / "backdoor.py").write_text("print('hi')\n")
    log = copy / "scenarios" / "staged" / "decisions.jsonl"
    lines = log.read_text().splitlines()
    lines[1] = lines[1].replace('"decision": "release"', '"decision": "hold"')
    log.write_text("\n".join(lines) + "\n")
    bad = runner.invoke(main, ["release", "verify", str(copy)])
    assert bad.exit_code == 1
    for what in ("altered", "missing", "unlisted"):
        assert any(line.startswith(what) and "01-first/release" in line for line in bad.output.splitlines())
    assert "entry 2: content does not match its hash" in bad.output
    missing = runner.invoke(main, ["release", "verify", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "no such directory" in missing.output


def test_cli_plan_init_check_and_card_build(run_dir, tmp_path):
    out, _ = run_dir
    runner = CliRunner()
    plan = tmp_path / "p" / "plan.toml"
    r = runner.invoke(main, ["release", "plan", "init", str(plan), "--family", "micro"])
    assert r.exit_code == 0 and str(plan) in r.output
    r = runner.invoke(main, ["release", "plan", "check", str(plan)])
    assert r.exit_code == 0 and "valid" in r.output and "all-at-once" in r.output
    plan.write_text(plan.read_text().replace('kind = "min_time"', 'kind = "someday"'))
    r = runner.invoke(main, ["release", "plan", "check", str(plan)])
    assert r.exit_code == 2 and "gates.waiting-period.kind" in r.output and "Traceback" not in r.output
    r = runner.invoke(main, ["release", "card", "build", "--run", str(out), "--size", "medium",
                             "--out", str(tmp_path / "card")])
    assert r.exit_code == 0, r.output
    assert check_card((tmp_path / "card" / "README.md").read_text()) == []


def test_cli_simulate_on_a_finished_run_returns_the_tables(run_dir, plan_file):
    out, _ = run_dir
    r = CliRunner().invoke(main, ["release", "simulate", str(plan_file), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "already decided" in r.output  # nothing recomputed
    assert "worst released TPR" in r.output and "rushed" in r.output
    assert f"gpt2guard release verify {out}" in r.output
    summary = (out / "summary.md").read_text()
    assert "Scenarios side by side" in summary and "| rushed |" in summary


@pytest.mark.parametrize("family", ["micro", "nano"])
def test_plan_init_writes_a_plan_that_checks_and_runs(family, micro_family, tmp_path):
    runner = CliRunner()
    plan = tmp_path / "plan.toml"
    assert runner.invoke(main, ["release", "plan", "init", str(plan), "--family", family]).exit_code == 0
    r = runner.invoke(main, ["release", "plan", "check", str(plan)])
    assert r.exit_code == 0 and r.output.rstrip().endswith("valid") and "note:" not in r.output, r.output
    if family == "micro":  # nano would build four models here; micro runs the plan's evidence in full
        r = runner.invoke(main, ["release", "simulate", str(plan), "--out", str(tmp_path / "run"),
                                 "--scenario", "all-at-once"])
        assert r.exit_code == 0, r.output
        row = json.loads((tmp_path / "run" / "summary.json").read_text())[0]
        assert row["sizes"] == ["small", "medium"] and row["decision"] == "hold"  # third parties at chance
        assert "transfer" in row["reason"] and row["transfer_vs"] == "chance"
        # the all-at-once stage is not watermarked, and its inherited watermark gate says so
        assert "watermark (stage 'all' (download tier) has no watermark" in row["reason"]
        # create = true: the first simulation made the api stage's key next to the plan, for micro
        from gpt2guard.watermark import load_key

        assert load_key(tmp_path / "keys" / "medium.key").family == "micro"
        r = runner.invoke(main, ["release", "plan", "check", str(plan)])
        assert "watermark key keys/medium.key: sha256 " in r.output
    # what simulate would refuse, check refuses: a length past the context window
    text = plan.read_text()
    window = 128 if family == "micro" else 256
    plan.write_text(text.replace("\nlength = ", f"\nlength = {window}  # was ", 1))
    r = runner.invoke(main, ["release", "plan", "check", str(plan)])
    assert r.exit_code != 0 and "evaluation.length" in r.output and len(r.output.strip().splitlines()) == 1
