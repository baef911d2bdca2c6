"""Release plans: parsing TOML and YAML, errors that name the key, scenarios, the default plan."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml

from gpt2guard.errors import GuardError
from gpt2guard.release.defaults import default_plan_text, init_plan
from gpt2guard.release.plan import (
    apply_scenario,
    load_plan,
    parse_plan,
    scenarios,
    stage_dates,
)

BASE = """
name = "p"
family = "micro"
[gates.det]
kind = "detectability"
threshold = 0.5
[[stages]]
name = "one"
sizes = ["small"]
gates = ["det"]
[[stages]]
name = "two"
sizes = ["medium"]
after_days = 30
gates = ["det"]
"""


def write(tmp_path, text, name="plan.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def error(tmp_path, text, name="plan.toml") -> str:
    with pytest.raises(GuardError) as exc:
        load_plan(write(tmp_path, text, name))
    return str(exc.value)


def test_valid_plan_dates_and_sizes(tmp_path):
    plan = load_plan(write(tmp_path, BASE))
    assert plan.sizes == ["small", "medium"]
    assert stage_dates(plan) == [dt.date(2019, 2, 14), dt.date(2019, 3, 16)]
    assert plan.gates["det"].threshold == 0.5 and plan.gates["det"].required


@pytest.mark.parametrize("change, where", [
    (("[[stages]]\nname = \"one\"", "[[stages]]\nname = \"one\"\nsize = \"small\""), "stages[0].size: unknown key"),
    (("after_days = 30", "after_days = \"soon\""), "stages[1].after_days: expected an integer"),
    (("threshold = 0.5", "threshold = \"high\""), "gates.det.threshold: expected a number"),
    (("threshold = 0.5\n", ""), "gates.det.threshold: required for a detectability gate"),
    (("gates = [\"det\"]\n[[stages]]", "gates = [\"nope\"]\n[[stages]]"), "stages[0].gates: no gate named 'nope'"),
    (("sizes = [\"medium\"]", "sizes = [\"huge\"]"), "stages[1].sizes: family 'micro' has no size 'huge'"),
    (("sizes = [\"medium\"]", "sizes = [\"small\"]"), "stages[1].sizes: 'small' is already published"),
    (("name = \"two\"", "name = \"two\"\ntier = \"secret\""), "stages[1].tier: expected one of closed"),
    (("name = \"two\"", "name = \"two\"\ntier = \"api\""), "stages[1].artifacts: weights are only published"),
    (("kind = \"detectability\"", "kind = \"vibes\""), "gates.det.kind: expected one of"),
])
def test_errors_name_the_key(tmp_path, change, where):
    old, new = change
    assert old in BASE
    assert where in error(tmp_path, BASE.replace(old, new, 1))


def test_missing_required_and_unknown_top_level(tmp_path):
    assert "name: required key is missing" in error(tmp_path, BASE.replace('name = "p"\n', "", 1))
    assert "colour: unknown key" in error(tmp_path, 'colour = "red"\n' + BASE)
    assert "stages[0].sizes: a stage publishes at least one size" in error(
        tmp_path, BASE.replace('sizes = ["small"]', "sizes = []"))


def test_bad_files(tmp_path):
    assert "not valid TOML" in error(tmp_path, "name = [unclosed")
    assert "no such file" in str(pytest.raises(GuardError, load_plan, tmp_path / "none.toml").value)
    assert ".toml, .yaml" in error(tmp_path, BASE, "plan.txt")


def test_yaml_plan_and_error(tmp_path):
    import tomllib

    data = tomllib.loads(BASE)
    plan = load_plan(write(tmp_path, yaml.safe_dump(data), "plan.yaml"))
    assert [s.name for s in plan.stages] == ["one", "two"]
    data["stages"][1]["after_days"] = -3
    assert "stages[1].after_days: must be between 0 and" in error(tmp_path, yaml.safe_dump(data), "plan.yaml")


def test_scenarios(tmp_path):
    text = BASE + """
[[scenarios]]
name = "flip"
order = ["medium", "small"]
thresholds = { det = 0.9 }
[[scenarios]]
name = "together"
mode = "all-at-once"
[[scenarios]]
name = "quick"
after_days = 1
"""
    plan = load_plan(write(tmp_path, text))
    got = dict(scenarios(plan))
    assert list(got) == ["staged", "flip", "together", "quick"]
    assert [s.sizes for s in got["flip"].stages] == [["medium"], ["small"]]
    assert got["flip"].gates["det"].threshold == 0.9 and plan.gates["det"].threshold == 0.5
    assert [s.sizes for s in got["together"].stages] == [["small", "medium"]]
    assert stage_dates(got["quick"])[1] == dt.date(2019, 2, 15)
    assert apply_scenario(plan, None) is plan
    with pytest.raises(GuardError, match="no scenario 'nope'"):
        scenarios(plan, ["nope"])
    bad = text.replace('order = ["medium", "small"]', 'order = ["medium"]')
    assert "scenarios[0].order: must list the plan's sizes" in error(tmp_path, bad)
    bad = text.replace("thresholds = { det = 0.9 }", "thresholds = { other = 0.9 }")
    assert "scenarios[0].thresholds: no gate named 'other'" in error(tmp_path, bad)


@pytest.mark.parametrize("family", ["nano", "micro", "gpt2"])
def test_default_plan_validates_for_every_family(family):
    import tomllib

    plan = parse_plan(tomllib.loads(default_plan_text(family)))
    assert plan.family == family
    assert plan.stages[0].after_days == 0 and len(plan.stages) >= 2
    assert {g.kind for g in plan.gates.values()} == {"detectability", "transfer", "quality_gain", "min_time",
                                                       "signoff", "misuse_reports", "robust_detectability",
                                                       "watermark_detectability"}
    # the largest size is served through a watermarked API, gated on the watermark (required) and
    # tracking the post-hoc detector's robustness (advisory) with the same attacks
    last = plan.stages[-1]
    assert last.tier == "api" and last.watermark is not None and "weights" not in last.artifacts
    robust, wm = plan.gates["robust-detectability"], plan.gates["watermark"]
    assert not robust.required and wm.required and robust.attacks == wm.attacks and len(wm.attacks) >= 3
    assert "watermark" in last.gates and all("watermark" not in st.gates for st in plan.stages[:-1])
    assert all("robust-detectability" in st.gates for st in plan.stages)


def test_init_writes_plan_and_evidence_and_refuses_overwrite(tmp_path):
    written = init_plan(tmp_path / "plan.toml", "micro")
    assert (tmp_path / "evidence" / "signoff-small.toml").is_file()
    assert (tmp_path / "evidence" / "misuse-reports.jsonl") in written
    plan = load_plan(tmp_path / "plan.toml")
    assert plan.family == "micro"
    with pytest.raises(GuardError, match="exists"):
        init_plan(tmp_path / "plan.toml", "micro")
    init_plan(tmp_path / "plan.toml", "micro", force=True)


DATED = BASE.replace('after_days = 30\n', 'date = 2019-03-01\n')
TRANSFER = BASE + '[gates.tr]\nkind = "transfer"\nthreshold = 0.1\n[gates.q]\nkind = "quality_gain"\nthreshold = 0.3\n'


@pytest.mark.parametrize("text, key", [
    (BASE.replace("threshold = 0.5", "threshold = nan"), "gates.det.threshold"),
    (BASE.replace("threshold = 0.5", "threshold = -0.1"), "gates.det.threshold"),
    (BASE.replace("threshold = 0.5", "threshold = 1.5"), "gates.det.threshold"),
    (BASE.replace("threshold = 0.5", "threshold = inf"), "gates.det.threshold"),
    (TRANSFER.replace("threshold = 0.1", "threshold = 2.0"), "gates.tr.threshold"),
    (TRANSFER.replace("threshold = 0.3", "threshold = 1.0"), "gates.q.threshold"),
    (BASE + "[evaluation]\nfpr = nan\n", "evaluation.fpr"),
    (BASE + "[evaluation]\nfpr = 1.5\n", "evaluation.fpr"),
    (BASE + "[evaluation]\nsamples = -4\n", "evaluation.samples"),
    (BASE + "[evaluation]\nlength = 128\n", "evaluation.length"),  # micro's context window is 128 tokens
    (BASE.replace("after_days = 30", "after_days = 5000000"), "stages[1].after_days"),
    (BASE.replace("after_days = 30", "after_days = -3"), "stages[1].after_days"),
    (DATED.replace("date = 2019-03-01", "date = 2019-01-01"), "stages[1].date"),
    (DATED.replace('name = "one"', 'name = "one"\ndate = 2019-06-01'), "stages[1].date"),
    (BASE + '[[scenarios]]\nname = "slow"\nafter_days = 9999999\n', "scenarios[0].after_days"),
    (BASE + '[[scenarios]]\nname = "odd"\nthresholds = { det = nan }\n', "scenarios[0].thresholds.det"),
    (BASE.replace('name = "two"', 'name = "../../evil"'), "stages[1].name"),
    (BASE.replace('name = "two"', 'name = "a/b"'), "stages[1].name"),
    (BASE.replace('name = "two"', 'name = "/tmp/abs"'), "stages[1].name"),
    (BASE.replace('name = "two"', 'name = ".."'), "stages[1].name"),
    (BASE + '[[scenarios]]\nname = "../up"\n', "scenarios[0].name"),
    ('baseline = "x/y"\n' + BASE, "baseline"),
    (BASE.replace('name = "p"', 'name = "p\\\\q"'), "name"),
    (BASE + '[gates.s]\nkind = "signoff"\nfile = "/etc/passwd"\n', "gates.s.file"),
    (BASE + '[gates.s]\nkind = "signoff"\nfile = "../../signoff-{size}.toml"\n', "gates.s.file"),
    (BASE + '[prerelease]\nsize = "huge"\n', "prerelease.size"),
    (BASE + '[prerelease]\nperplexity = nan\n', "prerelease.perplexity"),
    (BASE + '[prerelease]\ndetector_auroc = 0.2\n', "prerelease.detector_auroc"),
    ("seed = -1\n" + BASE, "seed"),
    (BASE.replace("threshold = 0.5", 'threshold = 0.5\nsampling = ["top-p=0.9"]'), "gates.det.sampling"),
])
@pytest.mark.parametrize("command", ["check", "simulate"])
def test_bad_plans_are_one_line_naming_the_file_and_key(tmp_path, text, key, command):
    from click.testing import CliRunner

    from gpt2guard.cli import main

    path = write(tmp_path, text)
    out = tmp_path / "run"
    args = ["release", "plan", "check", str(path)] if command == "check" else \
        ["release", "simulate", str(path), "--out", str(out)]
    r = CliRunner().invoke(main, args)
    lines = r.output.strip().splitlines()
    assert r.exit_code != 0 and len(lines) == 1, r.output
    assert str(path) in lines[0] and key in lines[0], lines[0]
    assert "Traceback" not in r.output and not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.toml"]  # nothing written anywhere


@pytest.mark.parametrize("command", ["check", "simulate"])
def test_invalid_utf8_names_the_file_and_line(tmp_path, command):
    from click.testing import CliRunner

    from gpt2guard.cli import main

    path = tmp_path / "plan.toml"
    path.write_bytes(BASE.encode().replace(b'name = "two"', b'name = "tw\xff\xfeo"'))
    line = BASE.splitlines().index('name = "two"') + 1
    args = ["release", "plan", "check", str(path)] if command == "check" else \
        ["release", "simulate", str(path), "--out", str(tmp_path / "run")]
    r = CliRunner().invoke(main, args)
    assert r.exit_code != 0 and len(r.output.strip().splitlines()) == 1, r.output
    assert f"{path}:{line}: not UTF-8" in r.output


@pytest.mark.parametrize("tiers", [("download", "api"), ("api", "download"), ("partners", "open"),
                                   ("open", "closed")])
def test_the_tier_rule_holds_in_every_scenario_mode(tmp_path, tiers):
    """Weights only at download or open: a stage without them may sit at any tier, and every
    scenario (all at once, another order, shorter waits) keeps the rule."""
    text = BASE
    for i, (name, tier) in enumerate(zip(("one", "two"), tiers)):
        arts = '["weights", "model_card"]' if tier in ("download", "open") else '["model_card", "samples"]'
        text = text.replace(f'name = "{name}"', f'name = "{name}"\ntier = "{tier}"\nartifacts = {arts}', 1)
    text += ('[[scenarios]]\nname = "together"\nmode = "all-at-once"\n[[scenarios]]\nname = "flip"\n'
             'order = ["medium", "small"]\n[[scenarios]]\nname = "quick"\nafter_days = 1\n')
    plan = load_plan(write(tmp_path, text))
    for _, variant in scenarios(plan):
        for st in variant.stages:
            assert "weights" not in st.artifacts or st.tier in ("download", "open"), (variant.baseline, st)
    together = dict(scenarios(plan))["together"].stages[0]
    assert together.tier == max(tiers, key=["closed", "partners", "api", "download", "open"].index)


def test_check_notes_evidence_files_a_gate_will_not_find_or_read(tmp_path):
    from click.testing import CliRunner

    from gpt2guard.cli import main

    text = BASE.replace('gates = ["det"]\n[[stages]]', 'gates = ["det", "s"]\n[[stages]]') + \
        '[gates.s]\nkind = "signoff"\nfile = "evidence/signoff-{size}.toml"\n'
    path = write(tmp_path, text)
    (tmp_path / "evidence").mkdir()
    r = CliRunner().invoke(main, ["release", "plan", "check", str(path)])
    assert r.exit_code == 0 and "note: gate 's' of stage 'one' (scenario staged) will fail: no file" in r.output
    (tmp_path / "evidence" / "signoff-small.toml").write_bytes(b"approved = \xff\n")
    r = CliRunner().invoke(main, ["release", "plan", "check", str(path)])
    assert r.exit_code == 0 and "signoff-small.toml:1: not UTF-8" in r.output and r.output.rstrip().endswith("valid")
