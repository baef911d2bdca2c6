"""Release plans: parsing TOML and YAML, errors that name the key, scenarios, the default plan."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml

from gpt2guard.errors import GuardError
from gpt2guard.release.defaults import default_plan_text, init_plan
from gpt2guard.release.plan import apply_scenario, load_plan, parse_plan, scenarios, stage_dates

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
    assert "stages[1].after_days: must be 0 or more" in error(tmp_path, yaml.safe_dump(data), "plan.yaml")


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
                                                       "signoff", "misuse_reports"}


def test_init_writes_plan_and_evidence_and_refuses_overwrite(tmp_path):
    written = init_plan(tmp_path / "plan.toml", "micro")
    assert (tmp_path / "evidence" / "signoff-small.toml").is_file()
    assert (tmp_path / "evidence" / "misuse-reports.jsonl") in written
    plan = load_plan(tmp_path / "plan.toml")
    assert plan.family == "micro"
    with pytest.raises(GuardError, match="exists"):
        init_plan(tmp_path / "plan.toml", "micro")
    init_plan(tmp_path / "plan.toml", "micro", force=True)
