"""Each gate on constructed evidence; the decision rule; the decision log's chain; manifests."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from gpt2guard.errors import GuardError
from gpt2guard.release.gates import GATES, StageEvidence, decide, evaluate_gates
from gpt2guard.release.log import DecisionLog, read_log, verify_log
from gpt2guard.release.manifest import verify_dir, verify_tree, write_manifest
from gpt2guard.release.plan import GateSpec, Plan, Stage

DAY = dt.date(2019, 5, 3)


def evidence(**kw) -> StageEvidence:
    base = dict(stage=Stage(name="medium", sizes=["medium"]), date=DAY, released=["small"],
                previous=dt.date(2019, 2, 14), publishable=["small", "medium"])
    return StageEvidence(**{**base, **kw})


def cell(tpr, ci=None):
    return {"tpr": tpr, "tpr_ci": ci}


def run(kind, ev, **spec):
    return GATES[kind]("g", GateSpec(kind=kind, **spec), ev)


def test_detectability_takes_the_worst_cell_and_respects_sampling():
    ev = evidence(detection={"medium": {"pure": cell(0.2, [0.1, 0.3]), "top-k=40": cell(0.8, [0.7, 0.9])}})
    r = run("detectability", ev, threshold=0.5)
    assert (r.value, r.passed, r.ci) == (0.2, False, [0.1, 0.3]) and "pure" in r.note
    assert r.reference == "publishable detector trained on small, medium"
    r = run("detectability", ev, threshold=0.5, sampling=["top-k=40"])
    assert (r.value, r.passed) == (0.8, True)
    # conservative: the lower CI bound must clear the threshold
    assert not run("detectability", ev, threshold=0.75, sampling=["top-k=40"], conservative=True).passed
    assert run("detectability", ev, threshold=0.75, sampling=["top-k=40"]).passed
    missing = run("detectability", evidence(), threshold=0.5)
    assert not missing.passed and missing.value is None


def transfer_ev(pub, third, trained=("small",), ci=None):
    ref = f"third parties' detector trained on {', '.join(trained)}" if trained else "chance (AUROC 0.5): not applicable"
    row = {"publishable_auroc": pub, "third_party_auroc": third, "drop": pub - third,
           "third_party_trained_on": list(trained) if trained else None, "reference": ref}
    return {"size": "medium", "drop": pub - third, "drop_ci": ci, "reference": ref, "by_size": {"medium": row},
            "applicable": bool(trained)}


def test_transfer_is_judged_against_third_parties_or_chance_never_skipped():
    assert not run("transfer", evidence(transfer=transfer_ev(0.9, 0.75)), threshold=0.1).passed
    r = run("transfer", evidence(transfer=transfer_ev(0.9, 0.85, ci=[0.0, 0.12])), threshold=0.1)
    assert r.passed and r.value == pytest.approx(0.05) and "trained on small" in r.reference
    assert not run("transfer", evidence(transfer=transfer_ev(0.9, 0.85, ci=[0.0, 0.12])), threshold=0.1,
                   conservative=True).passed
    first = run("transfer", evidence(released=[], transfer=transfer_ev(0.9, 0.5, trained=())), threshold=0.1)
    assert not first.passed and first.value == pytest.approx(0.4) and "not applicable" in first.reference
    assert not run("transfer", evidence(transfer=None), threshold=0.1).passed  # nothing measured is no pass


def test_quality_gain_names_what_it_was_judged_against():
    q = {"vs": "small", "vs_ppl": 60.0, "reference": "public", "size": "medium", "ppl": 45.0, "value": 0.25,
         "ci": [0.2, 0.3]}
    r = run("quality_gain", evidence(quality_gain=q), threshold=0.3)
    assert r.passed and r.reference == "small (public)" and "medium ppl 45.00 vs small ppl 60.00" in r.note
    assert not run("quality_gain", evidence(quality_gain=q), threshold=0.2).passed
    assert not run("quality_gain", evidence(quality_gain={**q, "ci": [0.2, 0.31]}), threshold=0.3,
                   conservative=True).passed
    assert not run("quality_gain", evidence(quality_gain=None), threshold=0.2).passed


def test_min_time():
    assert run("min_time", evidence(), threshold=60).value == (DAY - dt.date(2019, 2, 14)).days
    assert run("min_time", evidence(), threshold=60).passed
    assert not run("min_time", evidence(previous=dt.date(2019, 4, 20)), threshold=60).passed
    # the first step is counted from the plan's start, not let through
    first = run("min_time", evidence(previous=DAY, previous_name="the plan's start"), threshold=60)
    assert first.value == 0 and not first.passed and first.reference == "the plan's start"


def test_signoff_files(tmp_path):
    f = tmp_path / "signoff-medium.toml"
    spec = dict(file=str(tmp_path / "signoff-{size}.toml"))
    r = run("signoff", evidence(), **spec)
    assert not r.passed and "no sign-off file" in r.note
    f.write_text('approved = true\nby = "board"\n')
    r = run("signoff", evidence(), **spec)
    assert r.passed and "board" in r.note and r.evidence == [str(f)]
    f.write_text("approved = false\n")
    assert not run("signoff", evidence(), **spec).passed
    f.write_text("approved = [\n")
    assert "not valid TOML" in run("signoff", evidence(), **spec).note


def test_misuse_reports_count_severe_reports_against_released_sizes(tmp_path):
    f = tmp_path / "reports.jsonl"
    reports = [{"date": "2019-03-01", "size": "small", "severity": "high"},
               {"date": "2019-03-02", "size": "small", "severity": "low"},
               {"date": "2019-09-01", "size": "small", "severity": "critical"},  # after the stage date
               {"date": "2019-03-03", "size": "xl", "severity": "critical"}]  # xl is not released
    f.write_text("".join(json.dumps(r) + "\n" for r in reports))
    r = run("misuse_reports", evidence(), file=str(f), threshold=0)
    assert r.value == 1 and not r.passed
    assert run("misuse_reports", evidence(), file=str(f), threshold=1).passed
    assert run("misuse_reports", evidence(), file=str(f), threshold=0, min_severity="critical").passed
    f.write_text('{"severity": "apocalyptic"}\n')
    assert "needs a severity" in run("misuse_reports", evidence(), file=str(f), threshold=0).note
    f.write_text('{"severity": "high", "date": "last tuesday"}\n')
    assert ":1: date: expected YYYY-MM-DD" in run("misuse_reports", evidence(), file=str(f), threshold=0).note
    f.write_bytes(b'{"severity": "high"}\n\xff\xfe\n')
    assert ":2: not UTF-8" in run("misuse_reports", evidence(), file=str(f), threshold=0).note
    assert not run("misuse_reports", evidence(), file=str(tmp_path / "none.jsonl"), threshold=0).passed


def test_decision_holds_only_on_required_failures():
    plan = Plan(name="p", stages=[Stage(name="medium", sizes=["medium"], gates=["a", "b"])],
                gates={"a": GateSpec(kind="min_time", threshold=60),
                       "b": GateSpec(kind="min_time", threshold=365, required=False)})
    results = evaluate_gates(plan, evidence(stage=plan.stages[0]))
    assert [r.passed for r in results] == [True, False]
    assert decide(results)[0] == "release"
    plan.gates["b"].required = True
    decision, reason = decide(evaluate_gates(plan, evidence(stage=plan.stages[0])))
    assert decision == "hold" and "b (78, needs >= 365)" in reason


def test_log_chain_detects_edits_and_survives_a_torn_line(tmp_path):
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(path)
    for i in range(3):
        log.append({"type": "decision", "stage": f"s{i}", "decision": "release"})
    assert verify_log(path) == [] and [e["seq"] for e in read_log(path)] == [1, 2, 3]
    with open(path, "a") as f:
        f.write('{"type": "decis')  # a crash mid-append
    log = DecisionLog(path)
    assert len(log.entries) == 3
    log.append({"type": "decision", "stage": "s3", "decision": "hold"})
    assert verify_log(path) == []
    lines = path.read_text().splitlines()
    edited = json.loads(lines[1])
    edited["decision"] = "hold"
    lines[1] = json.dumps(edited, sort_keys=True)
    path.write_text("\n".join(lines) + "\n")
    problems = verify_log(path)
    assert problems and "entry 2" in problems[0]
    with pytest.raises(GuardError, match="broken"):
        DecisionLog(path)
    path.write_text("\n".join(lines[:1] + lines[2:]) + "\n")  # an entry removed
    assert any("prev does not match" in p for p in verify_log(path))


def test_manifest_reports_missing_altered_unlisted(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "sub" / "b.bin").write_bytes(b"\x00\x01")
    write_manifest(tmp_path, {"stage": "x"})
    assert verify_dir(tmp_path).ok
    (tmp_path / "a.txt").write_text("A")
    (tmp_path / "sub" / "b.bin").unlink()
    (tmp_path / "extra.txt").write_text("new")
    v = verify_dir(tmp_path)
    assert (v.altered, v.missing, v.unlisted) == (["a.txt"], ["sub/b.bin"], ["extra.txt"])
    assert len(verify_tree(tmp_path)[0].lines()) == 3
    with pytest.raises(GuardError, match="nothing to verify"):
        verify_tree(tmp_path / "sub")
