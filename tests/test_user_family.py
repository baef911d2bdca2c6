"""User-defined families: a family file naming sizes (local directories or hub ids) that
share one tokenizer, registered with ``family add``, and used by every part of gpt2guard.

The sizes are tiny random GPT-2 checkpoints saved here with the micro tokenizer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from gpt2guard.cli import main
from gpt2guard.errors import GuardError
from gpt2guard.family import get_family, load_model, load_tokenizer
from gpt2guard.family.userfile import parse_family_file, tokenizer_identity


def save_size(path: Path, tokenizer, n_layer: int, seed: int) -> Path:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=32, n_layer=n_layer,
                               n_head=4)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


FAMILY = """name = "lab"
description = "a lab's own two sizes"
[[sizes]]
name = "small"
path = "models/small"
[[sizes]]
name = "big"
path = "models/big"
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory, micro_tokenizer):
    """A directory holding two sizes and a valid family file ``lab.toml``."""
    d = tmp_path_factory.mktemp("lab")
    save_size(d / "models" / "small", micro_tokenizer, 1, 0)
    save_size(d / "models" / "big", micro_tokenizer, 2, 1)
    (d / "lab.toml").write_text(FAMILY, encoding="utf-8")
    return d


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """A fresh registry: an empty cache for this test (the micro build is not needed in it)."""
    monkeypatch.setenv("GPT2GUARD_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GPT2GUARD_FAMILIES", raising=False)
    return tmp_path / "cache" / "user-families"


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_family_file_is_a_family_everywhere(lab, micro_tokenizer):
    spec = get_family(str(lab / "lab.toml"))
    assert spec.kind == "user" and spec.name == "lab" and spec.size_names == ["small", "big"]
    assert spec.local_path("big") == str((lab / "models" / "big").resolve())
    big = load_model(str(lab / "lab.toml"), "big", device="cpu")
    assert big.family == "lab" and big.size == "big" and big.model.config.n_layer == 2
    assert load_model(str(lab / "lab.toml"), device="cpu").size == "small"  # the smallest by default
    tok = load_tokenizer(str(lab / "lab.toml"))
    assert tok("Some text.")["input_ids"] == micro_tokenizer("Some text.")["input_ids"]
    # the same family as YAML, sizes in the same order
    (lab / "lab.yaml").write_text("name: lab\nsizes:\n  - {name: small, path: models/small}\n"
                                  "  - {name: big, path: models/big}\n", encoding="utf-8")
    assert get_family(str(lab / "lab.yaml")).size_names == ["small", "big"]


def test_add_list_info_remove(lab, registry, monkeypatch):
    res = cli("family", "add", lab / "lab.toml")
    assert res.exit_code == 0, res.output
    assert "lab: 2 size(s) (small, big); 2 size(s) on this machine share one tokenizer" in res.output
    assert (registry / "lab.toml").is_file()
    spec = get_family("lab")  # by name, from any directory
    assert spec.kind == "user" and spec.local_path("small") == str((lab / "models" / "small").resolve())
    res = cli("family", "list")
    rows = [ln.split() for ln in res.output.splitlines()]
    assert res.exit_code == 0 and ["lab", "big", "2", "32"] == rows[-1][:4] and rows[-2][:2] == ["lab", "small"]
    assert rows[-1][4].replace(",", "").isdigit() and rows[-1][5] == str((lab / "models" / "big").resolve())
    assert [r[0] for r in rows[1:4]] == ["gpt2"] * 3  # builtin families first
    listed = json.loads(cli("family", "list", "--json").output)
    assert {(r["family"], r["size"], r["kind"]) for r in listed if r["family"] == "lab"} == \
        {("lab", "small", "user"), ("lab", "big", "user")}
    assert "lab (user)" in cli("family", "info", "lab").output
    assert cli("family", "path", "lab", "big").output.strip() == str((lab / "models" / "big").resolve())
    # registered once; --force replaces
    res = cli("family", "add", lab / "lab.toml")
    assert res.exit_code == 2 and "already registered" in res.output
    assert cli("family", "add", lab / "lab.toml", "--force").exit_code == 0
    assert cli("family", "remove", "lab").exit_code == 0 and not (registry / "lab.toml").exists()
    res = cli("family", "remove", "lab")
    assert res.exit_code == 2 and "no registered family 'lab'" in res.output
    # GPT2GUARD_FAMILIES names more family files (or directories of them)
    monkeypatch.setenv("GPT2GUARD_FAMILIES", str(lab / "lab.toml"))
    assert get_family("lab").name == "lab" and "lab" in cli("family", "list").output


def test_registered_family_broken_later_is_listed_with_why(lab, registry, tmp_path):
    d = tmp_path / "copy"
    shutil.copytree(lab / "models", d / "models")
    (d / "lab.toml").write_text(FAMILY, encoding="utf-8")
    assert cli("family", "add", d / "lab.toml").exit_code == 0
    shutil.rmtree(d / "models" / "big")
    res = cli("family", "list")
    assert res.exit_code == 0 and "lab" in res.output and "error:" in res.output and "no such directory" in res.output
    res = cli("family", "info", "lab")
    assert res.exit_code == 2 and "size 'big': no such directory" in res.output


def test_tokenizer_identity_ignores_the_file_format(lab, tmp_path):
    """The same vocabulary and merges saved as vocab.json + merges.txt is the same tokenizer."""
    src = lab / "models" / "small"
    model = json.loads((src / "tokenizer.json").read_text(encoding="utf-8"))["model"]
    other = tmp_path / "slow"
    other.mkdir()
    (other / "vocab.json").write_text(json.dumps(model["vocab"]), encoding="utf-8")
    merges = [" ".join(m) if isinstance(m, list) else m for m in model["merges"]]
    (other / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    assert tokenizer_identity(other) == tokenizer_identity(src)
    (other / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges[:-1]) + "\n", encoding="utf-8")
    assert tokenizer_identity(other) != tokenizer_identity(src)


def write(d: Path, text: str, name: str | None = None) -> Path:
    path = d / (name or f"bad{len(list(d.glob('bad*.toml')))}.toml")
    path.write_text(text, encoding="utf-8")
    return path


def test_bad_family_files_are_one_line(lab, registry, tmp_path):
    # a size whose tokenizer differs (one merge fewer): refused by add and by any command
    odd = tmp_path / "odd"
    shutil.copytree(lab / "models" / "big", odd)
    data = json.loads((odd / "tokenizer.json").read_text(encoding="utf-8"))
    data["model"]["merges"] = data["model"]["merges"][:-1]
    (odd / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    mixed = write(tmp_path, FAMILY.replace("path = \"models/big\"", f"path = {json.dumps(str(odd))}"), "mixed.toml")
    (tmp_path / "models").symlink_to(lab / "models")
    cases = [
        (mixed, "sizes 'small' and 'big' do not share a tokenizer"),
        (write(tmp_path, FAMILY.replace("models/big", "models/gone")), "size 'big': no such directory"),
        (write(tmp_path, FAMILY + "colour = 1\n"), "unknown key 'colour'"),
        (write(tmp_path, FAMILY.replace('"lab"', '"nano"')), "'nano' is a builtin family"),
        (write(tmp_path, FAMILY.replace('"big"', '"small"')), "size 'small' is named twice"),
        (write(tmp_path, FAMILY.replace('path = "models/big"', 'hub = "not an id"')), "not a Hugging Face id"),
        (write(tmp_path, FAMILY.replace('path = "models/big"\n', '')), "exactly one of hub"),
        (write(tmp_path, 'name = "lab"\nsizes = []\n'), "one or more sizes"),
        (write(tmp_path, 'name = "lab"\n[[sizes]\n'), "not valid TOML"),
        (write(tmp_path, 'name = "my.lab"\n'), "invalid family name"),
    ]
    for path, why in cases:
        with pytest.raises(GuardError, match=why.replace("(", r"\(")):
            parse_family_file(path)
        for args in (["family", "add", path], ["family", "info", path],
                     ["score", "-", "--family", path, "--threshold", "0"]):
            res = CliRunner().invoke(main, [str(a) for a in args], input="Some text to judge here.")
            assert res.exit_code == 2, (args, res.output)
            assert why in res.output and len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output
    assert not registry.exists() or not any(registry.iterdir())  # nothing bad was registered


def test_generate_and_release_plan_on_a_user_family(lab, registry, tmp_path, monkeypatch):
    """Generation names its sets after the family; a staged-release plan for it is valid."""
    from gpt2guard.datasets.sets import list_sets

    assert cli("family", "add", lab / "lab.toml").exit_code == 0
    res = cli("generate", "--family", "lab", "--sizes", "all", "--sampling", "pure", "--n", "2", "--length", "8",
              "--seed", "0", "--out", tmp_path / "gen", "--no-progress")
    assert res.exit_code == 0, res.output
    assert set(list_sets(tmp_path / "gen")) == {"lab-small", "lab-big"}
    monkeypatch.chdir(tmp_path)
    res = cli("release", "plan", "init", "plan.toml", "--family", "lab")
    assert res.exit_code == 0, res.output
    res = cli("release", "plan", "check", "plan.toml")
    assert res.exit_code == 0, res.output
    assert "family lab" in res.output and "small" in res.output and "big" in res.output
