"""The builtin human corpus: prose cleaning, deterministic leak-free splits by source."""

from gpt2guard.datasets.builtin import builtin_corpus, corpus_hash, prose_paragraphs, split_of


def test_prose_paragraphs_drop_code_tables_and_markup():
    text = """Return the sum of :func:`foo` over ``items``, skipping *empty* ones.

    >>> add(1, 2)
    3

Parameters
----------
x : int
    The number of items to add together before returning.

Example::

    for i in range(3):
        print(i)

short line.
"""
    paras = prose_paragraphs(text)
    assert paras == ["Return the sum of foo over items, skipping empty ones.",
                     "The number of items to add together before returning."]


def test_corpus_splits_by_source_deterministically():
    docs = builtin_corpus(packages=(), seed=0)
    assert len(docs) > 500
    by_source = {}
    for d in docs:
        by_source.setdefault(d.source, set()).add(d.split)
    assert all(len(splits) == 1 for splits in by_source.values())
    assert {d.split for d in docs} == {"train", "valid", "test"}
    assert len({d.id for d in docs}) == len(docs)
    assert all(d.split == split_of(d.source, 0) for d in docs[:50])
    again = builtin_corpus(packages=(), seed=0)
    assert corpus_hash(again) == corpus_hash(docs)
    reseeded = builtin_corpus(packages=(), seed=1)
    assert corpus_hash(reseeded) != corpus_hash(docs)
