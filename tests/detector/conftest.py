"""Fixtures for the detector tests: tiny random GPT-2 models sharing the micro tokenizer."""

from __future__ import annotations

import pytest

from detector_helpers import tiny_gpt2


@pytest.fixture(scope="session")
def tokenizer(micro_tokenizer):
    return micro_tokenizer


@pytest.fixture(scope="session")
def tiny_pair(tokenizer):
    """Two tiny models (scorer, reference) sharing the micro tokenizer, context 128."""
    from gpt2guard.detector import wrap_model

    vocab = len(tokenizer)
    return (wrap_model(tiny_gpt2(vocab, seed=1), tokenizer, "tiny-a"),
            wrap_model(tiny_gpt2(vocab, n_layer=1, n_embd=48, seed=2), tokenizer, "tiny-b"))


@pytest.fixture(scope="session")
def texts():
    """Documents of varied length, in the micro tokenizer's domain (English prose)."""
    base = ("The module provides functions for working with files and directories. It returns a list of "
            "names, sorted in arbitrary order, and raises an error when the path does not exist. ")
    return [base[:40], base, base * 2 + "Short tail.", "Numbers 12345 and symbols #$%!", base[:90] * 3]


@pytest.fixture(scope="session")
def machine_dir(micro_family, tmp_path_factory):
    """Machine text from both micro sizes, pure sampling and top-k=40 (short documents)."""
    from gpt2guard.generator.run import GenerationJob, run_generation

    out = tmp_path_factory.mktemp("machine")
    run_generation(GenerationJob(out=str(out), family="micro", sizes="all", sampling="pure,top-k=40", n=8,
                                 length=32, seed=0), progress=False)
    return out


@pytest.fixture(scope="session")
def human_docs():
    """Builtin human documents by split, cut to at most 60 words (keeps scoring fast)."""
    from gpt2guard.datasets.builtin import builtin_corpus

    out = {"train": [], "valid": [], "test": []}
    for doc in builtin_corpus():
        out[doc.split].append(" ".join(doc.text.split()[:60]))
    return out


@pytest.fixture(scope="session")
def labelled(machine_dir, human_docs):
    """(texts, labels): 24 human training documents and the machine documents of two sets with 3+ words."""
    from gpt2guard.datasets.sets import open_set

    from gpt2guard.detector.hygiene import is_scorable, prepare_text

    # a sample may end at once or decode to binary bytes; empty and binary input are tested on their own
    machine = [r.text for name in ("micro-small", "micro-medium-k40") for r in open_set(machine_dir, name, "train")
               if len(r.text.split()) >= 3 and is_scorable(prepare_text(r.text)[1])]
    human = human_docs["train"][:24]
    return human + machine, ["human"] * len(human) + ["machine"] * len(machine)


@pytest.fixture(scope="session")
def detector_sets(tmp_path_factory, machine_dir, human_docs):
    """A human set (builtin docs, train/valid/test) next to the machine sets (their train
    samples in every split: enough to exercise the commands' plumbing)."""
    from gpt2guard.datasets.records import Record
    from gpt2guard.datasets.sets import open_set
    from gpt2guard.datasets.writer import SetWriter

    d = tmp_path_factory.mktemp("sets")
    for split, n in (("train", 24), ("valid", 30), ("test", 20)):
        with SetWriter(d, "builtin", split) as w:
            for i, text in enumerate(human_docs[split][:n]):
                w.write(Record(id=f"h{i}", text=text, label="human"))
        for name in ("micro-small", "micro-medium-k40"):
            with SetWriter(d, name, split) as w:
                for rec in open_set(machine_dir, name, "train"):
                    w.write(rec)
    return d
