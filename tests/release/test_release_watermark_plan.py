"""Plans with attack gates and a watermarked API stage: schema errors and key-file errors as one
line (nothing written), and `release plan check` on a valid one."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from gpt2guard.cli import main
from gpt2guard.release.plan import load_plan, plan_attacks

PLAN = """
name = "wm"
family = "micro"
[gates.robust]
kind = "robust_detectability"
attacks = ["homoglyph=1.0", "whitespace=0.2"]
threshold = 0.5
required = false
[gates.wm]
kind = "watermark_detectability"
attacks = ["whitespace=0.2", "case=0.5"]
threshold = 0.8
[[stages]]
name = "one"
sizes = ["small"]
gates = ["robust"]
[[stages]]
name = "two"
sizes = ["medium"]
after_days = 30
tier = "api"
artifacts = ["model_card", "samples"]
gates = ["robust", "wm"]
watermark = { key = "keys/{stage}.key" }
"""


def write(tmp_path, text):
    path = tmp_path / "plan.toml"
    path.write_text(text)
    return path


@pytest.fixture
def keyed(tmp_path, micro_family):
    """The plan with stage two's key written (seeded: a test key, not a secret)."""
    from gpt2guard.watermark import keygen

    keygen(tmp_path / "keys" / "two.key", seed=1, family="micro")
    return write(tmp_path, PLAN)


def test_valid_plan_parses_attacks_and_watermark(keyed):
    plan = load_plan(keyed)
    assert plan.gates["robust"].attack_keys() == ["homoglyph=1", "whitespace=0.2"]
    assert plan_attacks(plan) == ["homoglyph=1", "whitespace=0.2", "case=0.5"]
    w = plan.stages[1].watermark
    assert (w.key, w.gamma, w.delta, w.scheme, w.z_threshold, w.create) == ("keys/{stage}.key", 0.25, 2.0, "lefthash",
                                                                            4.0, False)
    r = CliRunner().invoke(main, ["release", "plan", "check", str(keyed)])
    assert r.exit_code == 0, r.output
    assert "robust_detectability threshold 0.5 attacks homoglyph=1, whitespace=0.2 (advisory)" in r.output
    assert "watermark lefthash gamma 0.25 delta 2 z >= 4, key keys/{stage}.key" in r.output
    assert "watermark key keys/two.key: sha256 " in r.output and r.output.rstrip().endswith("valid")


BAD = [
    (PLAN.replace('"case=0.5"', '"teleport=0.5"'), "gates.wm.attacks[1]", "unknown attack 'teleport'"),
    (PLAN.replace('"case=0.5"', '"case=1.5"'), "gates.wm.attacks[1]", "[0, 1]"),
    (PLAN.replace('"case=0.5"', '"case=-0.1"'), "gates.wm.attacks[1]", "[0, 1]"),
    (PLAN.replace('"case=0.5"', '"case"'), "gates.wm.attacks[1]", "name=rate"),
    (PLAN.replace('"case=0.5"', '"case=0.5,whitespace=0.1"'), "gates.wm.attacks[1]", "one attack per entry"),
    (PLAN.replace('"case=0.5"', '"whitespace=0.2"'), "gates.wm.attacks[1]", "declared twice"),
    (PLAN.replace('attacks = ["homoglyph=1.0", "whitespace=0.2"]\n', ""), "gates.robust.attacks",
     "at least one attack"),
    (PLAN.replace('threshold = 0.8', 'threshold = 1.2'), "gates.wm.threshold", "between 0 and 1"),
    (PLAN + '[gates.det]\nkind = "detectability"\nthreshold = 0.5\nattacks = ["case=0.1"]\n', "gates.det.attacks",
     "only a robust_detectability or watermark_detectability gate"),
    (PLAN.replace('tier = "api"', 'tier = "partners"'), "stages[1].watermark", "only a stage at the api tier"),
    (PLAN.replace('{ key = "keys/{stage}.key" }', '{ key = "keys/{stage}.key", gamma = 1.0 }'),
     "stages[1].watermark.gamma", "between 0 and 1"),
    (PLAN.replace('{ key = "keys/{stage}.key" }', '{ key = "keys/{stage}.key", delta = nan }'),
     "stages[1].watermark.delta", "above 0"),
    (PLAN.replace('{ key = "keys/{stage}.key" }', '{ key = "keys/{stage}.key", scheme = "rot13" }'),
     "stages[1].watermark.scheme", "unknown watermark scheme"),
    (PLAN.replace('{ key = "keys/{stage}.key" }', '{ key = "keys/{stage}.key", z_threshold = -1 }'),
     "stages[1].watermark.z_threshold", "above 0"),
    (PLAN.replace('{ key = "keys/{stage}.key" }', '{ key = "../keys/{stage}.key" }'), "stages[1].watermark.key",
     "without '..'"),
    (PLAN.replace('{ key = "keys/{stage}.key" }', '{ gamma = 0.5 }'), "stages[1].watermark.key", "required key"),
    (PLAN.replace('{ key = "keys/{stage}.key" }', '{ key = "keys/{stage}.key", secret = "x" }'),
     "stages[1].watermark.secret", "unknown key"),
]


@pytest.mark.parametrize("text, key, what", BAD)
@pytest.mark.parametrize("command", ["check", "simulate"])
def test_bad_attack_and_watermark_plans_are_one_line(tmp_path, micro_family, text, key, what, command):
    from gpt2guard.watermark import keygen

    path = write(tmp_path, text)
    keygen(tmp_path / "keys" / "two.key", seed=1, family="micro")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    out = tmp_path / "run"
    args = ["release", "plan", "check", str(path)] if command == "check" else \
        ["release", "simulate", str(path), "--out", str(out)]
    r = CliRunner().invoke(main, args)
    lines = r.output.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 1, r.output
    assert str(path) in lines[0] and key in lines[0] and what in lines[0], lines[0]
    assert "Traceback" not in r.output and not out.exists()
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written anywhere


def _truncate(path):
    path.write_text(path.read_text()[:40])


def _garbage(path):
    path.write_bytes(b"\xff\xfe not a key")


def _directory(path):
    path.unlink()
    path.mkdir()


@pytest.mark.parametrize("damage, what", [
    (lambda p: p.unlink(), "no key file"),
    (_truncate, "malformed key file"),
    (_garbage, "malformed key file"),
    (_directory, "not a file"),
])
@pytest.mark.parametrize("command", ["check", "simulate"])
def test_missing_or_malformed_key_file_is_one_line(keyed, damage, what, command):
    damage(keyed.parent / "keys" / "two.key")
    out = keyed.parent / "run"
    args = ["release", "plan", "check", str(keyed)] if command == "check" else \
        ["release", "simulate", str(keyed), "--out", str(out)]
    r = CliRunner().invoke(main, args)
    lines = r.output.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 1, r.output
    assert str(keyed) in lines[0] and "stages[1].watermark.key" in lines[0] and what in lines[0], lines[0]
    assert "two.key" in lines[0] and not out.exists()


def test_a_key_for_another_family_is_refused(tmp_path, micro_family):
    from gpt2guard.watermark import keygen

    keygen(tmp_path / "keys" / "two.key", seed=1, family="micro")
    path = write(tmp_path, PLAN.replace('family = "micro"', 'family = "nano"'))
    r = CliRunner().invoke(main, ["release", "plan", "check", str(path)])
    assert r.exit_code == 2 and "is a key for the micro tokenizer, not the plan's family nano" in r.output


def test_create_true_defers_the_key_to_the_first_simulation(tmp_path):
    path = write(tmp_path, PLAN.replace('{ key = "keys/{stage}.key" }', '{ key = "keys/{stage}.key", create = true }'))
    r = CliRunner().invoke(main, ["release", "plan", "check", str(path)])
    assert r.exit_code == 0 and "watermark key keys/two.key: not made yet; the first `release simulate` makes it" \
        in r.output
    assert not (tmp_path / "keys").exists()
    # a simulation refused before it starts (another plan's run in --out) makes no key
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text('{"plan_sha256": "00"}')
    r = CliRunner().invoke(main, ["release", "simulate", str(path), "--out", str(out)])
    assert r.exit_code == 2 and "another plan" in r.output and not (tmp_path / "keys").exists()
