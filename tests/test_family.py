"""Model families: resolution, loading real Hugging Face-format checkpoints, pickle refusal,
and the micro family's build, manifest and resumability."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpt2guard.errors import GuardError
from gpt2guard.family import get_family, load_model, resolve_size
from gpt2guard.family.build import build_family, read_manifest
from gpt2guard.family.load import weights_hash
from gpt2guard.paths import sha256_file, sha256_text


def save_tiny_gpt2(path: Path, tokenizer, seed: int = 0):
    """Save a small random GPT-2 in Hugging Face format (safetensors + tokenizer)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=32, n_layer=2, n_head=4))
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return model


def write_hub_cache(cache: Path, repo_id: str, tokenizer) -> Path:
    """Lay out a Hugging Face hub cache entry for ``repo_id`` the way huggingface_hub does."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / ("a" * 40)
    save_tiny_gpt2(snapshot, tokenizer)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("a" * 40)
    return snapshot


def test_weights_dir_resolution_by_option_and_env(tmp_path, micro_tokenizer, monkeypatch):
    save_tiny_gpt2(tmp_path / "gpt2-medium", micro_tokenizer)
    gpt2 = get_family("gpt2")
    assert resolve_size(gpt2, "medium", weights_dir=tmp_path) == tmp_path / "gpt2-medium"
    monkeypatch.setenv("GPT2GUARD_WEIGHTS", str(tmp_path))
    assert resolve_size(gpt2, "medium") == tmp_path / "gpt2-medium"
    with pytest.raises(GuardError, match="size 'small'"):
        resolve_size(gpt2, "small")  # only medium is in the directory


def test_hub_cache_resolution(tmp_path, micro_tokenizer, monkeypatch):
    import huggingface_hub.constants as hf

    monkeypatch.setattr(hf, "HF_HUB_CACHE", str(tmp_path))
    snapshot = write_hub_cache(tmp_path, "openai-community/gpt2", micro_tokenizer)
    assert resolve_size(get_family("gpt2"), "small").resolve() == snapshot.resolve()


def test_missing_size_offline_names_size_and_both_remedies(tmp_path, monkeypatch):
    import huggingface_hub.constants as hf

    monkeypatch.setattr(hf, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(GuardError) as err:
        resolve_size(get_family("gpt2"), "xl")
    msg = str(err.value)
    assert "xl" in msg and "openai-community/gpt2-xl" in msg
    assert "--weights-dir" in msg and "GPT2GUARD_WEIGHTS" in msg and "hf download" in msg
    assert "\n" not in msg


def test_load_hf_checkpoint_matches_saved_model(tmp_path, micro_tokenizer):
    import torch

    original = save_tiny_gpt2(tmp_path / "ckpt", micro_tokenizer, seed=3).eval()
    loaded = load_model(str(tmp_path / "ckpt"))
    assert loaded.size == "model" and loaded.device == "cpu"
    assert not loaded.model.training
    assert loaded.n_positions == 64
    ids = torch.tensor([micro_tokenizer.encode("The quick brown fox jumps over the lazy dog.")])
    with torch.inference_mode():
        torch.testing.assert_close(loaded.model(ids).logits, original(ids).logits)
    expected = sha256_text(f"model.safetensors:{sha256_file(tmp_path / 'ckpt' / 'model.safetensors')}")
    assert loaded.model_hash == weights_hash(tmp_path / "ckpt") == expected
    assert loaded.tokenizer.pad_token_id == micro_tokenizer.eos_token_id


def test_pickle_only_checkpoint_is_refused(tmp_path, micro_tokenizer):
    ckpt = tmp_path / "pickled"
    save_tiny_gpt2(ckpt, micro_tokenizer)
    (ckpt / "model.safetensors").rename(ckpt / "pytorch_model.bin")
    with pytest.raises(GuardError, match="pickle"):
        load_model(str(ckpt))


def test_unknown_family_and_size_are_clear_errors():
    with pytest.raises(GuardError, match="unknown family 'nope'"):
        get_family("nope")
    with pytest.raises(GuardError, match="its sizes are small, medium, large, xl"):
        get_family("gpt2").size("huge")


def test_micro_build_loss_decreases_with_size_and_manifest(micro_family):
    from gpt2guard.datasets.builtin import builtin_corpus, corpus_hash

    manifest = json.loads((micro_family / "family.json").read_text())
    sizes = get_family("micro").size_names
    assert list(manifest["sizes"]) == sizes and manifest["complete"]
    losses = [manifest["sizes"][s]["val_loss"] for s in sizes]
    assert all(a > b for a, b in zip(losses, losses[1:])), losses
    for s in sizes:
        entry = manifest["sizes"][s]
        loaded = load_model("micro", s)
        assert entry["params"] == loaded.n_params
        assert entry["config"]["n_layer"] == loaded.model.config.n_layer
        assert entry["train_tokens"] > 0 and entry["train_loss"] > 0
        assert (micro_family / s / "model.safetensors").is_file()
        assert not list((micro_family / s).glob("*.bin"))
    docs = builtin_corpus(packages=(), seed=0)[:400]
    assert manifest["corpus"]["hash"] == corpus_hash(docs)
    assert manifest["seed"] == 0
    assert {"python", "torch", "transformers", "tokenizers"} <= set(manifest["versions"])


def test_build_is_reused_and_seed_mismatch_needs_force(micro_family):
    stamp = (micro_family / "small" / "model.safetensors").stat().st_mtime_ns
    assert build_family("micro") == micro_family
    assert (micro_family / "small" / "model.safetensors").stat().st_mtime_ns == stamp
    with pytest.raises(GuardError, match="--force"):
        build_family("micro", seed=1)


def test_killed_build_resumes_without_retraining(tmp_path, monkeypatch):
    import gpt2guard.family.train as train

    monkeypatch.setenv("GPT2GUARD_CACHE", str(tmp_path))
    real = train.train_size
    calls = []

    def dies_on_second(size, *args, **kwargs):
        calls.append(size.name)
        if size.name == "medium":
            raise KeyboardInterrupt
        return real(size, *args, **kwargs)

    monkeypatch.setattr(train, "train_size", dies_on_second)
    with pytest.raises(KeyboardInterrupt):
        build_family("micro", progress=False)
    manifest = read_manifest("micro")
    assert list(manifest["sizes"]) == ["small"] and not manifest["complete"]
    stamp = (tmp_path / "families/micro/small/model.safetensors").stat().st_mtime_ns

    calls.clear()
    monkeypatch.setattr(train, "train_size", lambda size, *a, **k: calls.append(size.name) or real(size, *a, **k))
    root = build_family("micro", progress=False)
    manifest = read_manifest("micro")
    assert manifest["complete"] and list(manifest["sizes"]) == ["small", "medium"]
    assert (root / "small/model.safetensors").stat().st_mtime_ns == stamp
    assert calls == ["medium"]


def test_build_is_deterministic_given_seed(micro_family, tmp_path, monkeypatch):
    monkeypatch.setenv("GPT2GUARD_CACHE", str(tmp_path))
    other = build_family("micro", progress=False)
    for size in ("small", "medium"):
        assert weights_hash(other / size) == weights_hash(micro_family / size)
