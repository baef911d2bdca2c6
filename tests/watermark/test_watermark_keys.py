"""Key files: written private and atomically, read back, refused when damaged or foreign."""

from __future__ import annotations

import hashlib
import json
import os
import stat

import pytest

from gpt2guard.errors import GuardError
from gpt2guard.watermark import keygen, load_key


def test_keygen_writes_a_private_key_that_loads_back(micro_key, micro_tokenizer):
    key, path = micro_key
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    doc = json.loads(path.read_text())
    assert doc["format"] == "gpt2guard.watermark-key" and doc["family"] == "micro"
    assert doc["vocab_size"] == len(micro_tokenizer)
    loaded = load_key(path)
    assert loaded.secret == key.secret and len(loaded.secret) == 32
    assert loaded.digest == hashlib.sha256(bytes.fromhex(doc["key"])).hexdigest() == doc["digest"]
    assert doc["key"] not in repr(loaded)
    loaded.check_tokenizer(micro_tokenizer)  # the tokenizer it was made for


def test_seeded_keys_repeat_and_random_keys_differ(micro_tokenizer, tmp_path):
    a = keygen(tmp_path / "a", seed=7, tokenizer=micro_tokenizer)
    b = keygen(tmp_path / "b", seed=7, tokenizer=micro_tokenizer)
    c = keygen(tmp_path / "c", tokenizer=micro_tokenizer)
    d = keygen(tmp_path / "d", tokenizer=micro_tokenizer)
    assert a.secret == b.secret
    assert len({a.secret, c.secret, d.secret}) == 3


def test_an_existing_key_is_replaced_only_with_force(micro_tokenizer, tmp_path):
    path = tmp_path / "k.key"
    keygen(path, seed=1, tokenizer=micro_tokenizer)
    before = path.read_bytes()
    with pytest.raises(GuardError, match="exists: use --force"):
        keygen(path, seed=2, tokenizer=micro_tokenizer)
    assert path.read_bytes() == before
    keygen(path, seed=2, force=True, tokenizer=micro_tokenizer)
    assert path.read_bytes() != before and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["k.key"]  # no temporary left behind


@pytest.mark.parametrize("content, message", [
    (b"", "not JSON"),
    (b"\xff\xfe", "not JSON"),
    (b"[1, 2]", "not a gpt2guard.watermark-key file"),
    (b'{"format": "gpt2guard.watermark-key", "version": 9}', "version 9"),
    (b'{"format": "gpt2guard.watermark-key", "version": 1, "key": "zz"}', "not hex"),
    (b'{"format": "gpt2guard.watermark-key", "version": 1, "key": "00ff"}', "at least 64"),
])
def test_malformed_key_files_are_one_clear_line(tmp_path, content, message):
    path = tmp_path / "bad.key"
    path.write_bytes(content)
    with pytest.raises(GuardError, match=message) as err:
        load_key(path)
    assert "\n" not in str(err.value) and "malformed" in str(err.value)


def test_an_edited_key_no_longer_matches_its_digest(micro_key, tmp_path):
    doc = json.loads(micro_key[1].read_text())
    doc["key"] = "00" + doc["key"][2:]
    path = tmp_path / "edited.key"
    path.write_text(json.dumps(doc))
    with pytest.raises(GuardError, match="digest does not match"):
        load_key(path)


def test_missing_key_file(tmp_path):
    with pytest.raises(GuardError, match="no such file.*keygen"):
        load_key(tmp_path / "none.key")


def test_a_key_refuses_another_tokenizer(foreign_key, micro_tokenizer):
    with pytest.raises(GuardError, match="is for the foreign tokenizer"):
        foreign_key[0].check_tokenizer(micro_tokenizer)
