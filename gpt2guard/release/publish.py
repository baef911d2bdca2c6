"""Assemble what a released stage publishes, as a Hugging Face-style model directory.

``<stage>/release/`` holds the model card (``README.md``, as on the Hub, plus the HTML page
and its plots), the weights and tokenizer files when the tier allows downloads, the size's
sample sets (like OpenAI's GPT-2 output dataset) and the stage's detector; then
``MANIFEST.json`` lists every file with its size and SHA-256.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from gpt2guard.release.manifest import write_manifest

WEIGHT_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                "vocab.json", "merges.txt", "special_tokens_map.json")


def _copy_tree(src: Path, dst: Path) -> None:
    for p in sorted(src.rglob("*")):
        if p.is_file() and not p.name.endswith(".tmp"):
            target = dst / p.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, target)


def sample_files(samples_dir: Path, set_names: list[str]) -> list[Path]:
    """The files of the named sets (every split, manifests and cards) in a sets directory."""
    return sorted(p for name in set_names for p in samples_dir.glob(f"{name}.*") if p.is_file())


def publish_stage(dest: Path, *, artifacts: list[str], card_dir: Path | None, weight_dirs: dict[str, Path],
                  samples_dir: Path, set_names: list[str], detector_dir: Path | None, meta: dict) -> Path:
    """Write the published directory of one stage; returns its manifest path.

    Parameters
    ----------
    dest : path
        The directory to fill (emptied first).
    artifacts : list of str
        Which of ``weights``, ``model_card``, ``samples``, ``detector`` to publish.
    card_dir : path, optional
        Directory with the model card (``README.md``, ``model-card.html``, ``plots/``).
    weight_dirs : dict of str to path
        Size -> the model directory its weights and tokenizer files are copied from
        (under ``weights/<size>/`` when the stage publishes several sizes).
    samples_dir, set_names
        Where the stage's sample sets are, and their names.
    detector_dir : path, optional
        The saved detector directory.
    meta : dict
        Extra manifest keys (run, scenario, stage, decision).
    """
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    if "model_card" in artifacts and card_dir is not None:
        _copy_tree(card_dir, dest)
    if "weights" in artifacts:
        for size, src in weight_dirs.items():
            target = dest if len(weight_dirs) == 1 else dest / "weights" / size
            target.mkdir(parents=True, exist_ok=True)
            for name in WEIGHT_FILES:
                if (src / name).is_file():
                    shutil.copyfile(src / name, target / name)
    if "samples" in artifacts:
        (dest / "samples").mkdir()
        for p in sample_files(samples_dir, set_names):
            shutil.copyfile(p, dest / "samples" / p.name)
    if "detector" in artifacts and detector_dir is not None:
        _copy_tree(detector_dir, dest / "detector")
    return write_manifest(dest, {**meta, "artifacts": list(artifacts)})
