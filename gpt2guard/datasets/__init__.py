"""Datasets: human corpora and generated sets in OpenAI's gpt-2-output-dataset format.

The names below are importable from ``gpt2guard.datasets`` directly; each loads its module
on first use, so importing the package stays cheap (see the modules for details):

========================  ==============================================================
``Record``                the one record schema (:mod:`.records`)
``SetWriter``             resumable, sharded, atomic writer with a manifest (:mod:`.writer`)
``open_set``              stream a set by directory, name and split, any layout (:mod:`.sets`)
``list_sets``             sets and splits in a directory (:mod:`.sets`)
``iter_jsonl``            stream any JSONL file with a bad-line policy (:mod:`.jsonl`)
``read_source``           JSONL, ``.txt`` directory or OpenAI directory (:mod:`.readers`)
``read_builtin``          the builtin human corpus as records (:mod:`.readers`)
``set_name``              ``nano-small-k40``-style set names (:mod:`.names`)
``count_tokens``          batched token counts (:mod:`.tokens`)
``degeneracy_flags``      ``empty`` / ``repetition`` flags (:mod:`.quality`)
``make_prompt``           ``(prompt, human continuation)`` from a document (:mod:`.prompts`)
``make_prompts``          the same for a stream of documents (:mod:`.prompts`)
``group_key``             the source group used for leak-free splits (:mod:`.splits`)
``write_card``            the datasheet-style card of a set (:mod:`.card`)
========================  ==============================================================
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Record": "records", "SetWriter": "writer", "open_set": "sets", "list_sets": "sets", "iter_jsonl": "jsonl",
    "read_source": "readers", "read_builtin": "readers", "set_name": "names", "count_tokens": "tokens",
    "degeneracy_flags": "quality", "make_prompt": "prompts", "make_prompts": "prompts", "group_key": "splits",
    "write_card": "card",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"gpt2guard.datasets.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'gpt2guard.datasets' has no attribute {name!r}")
