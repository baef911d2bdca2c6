"""Preparing data for detection: leak-free splits, length matching, prompts, dedup, flags."""

from __future__ import annotations

import numpy as np
import pytest
from ds_helpers import prose

from gpt2guard.datasets.dedup import dedup_records, dedup_set
from gpt2guard.datasets.lengths import ks_distance, match_lengths, plan_select, plan_truncate
from gpt2guard.datasets.prompts import make_prompt, make_prompts, prompts_set
from gpt2guard.datasets.quality import degeneracy_flags
from gpt2guard.datasets.records import Record
from gpt2guard.datasets.sets import open_set, read_manifest
from gpt2guard.datasets.splits import find_leaks, group_key, split_set
from gpt2guard.datasets.stats import set_stats
from gpt2guard.datasets.tokens import count_tokens
from gpt2guard.datasets.writer import SetWriter
from gpt2guard.errors import GuardError

ENGLISH = ("The committee met on Tuesday to review the budget for the coming year. Several members raised "
           "concerns about the cost of repairing the old bridge, which has been closed since the spring floods. "
           "After a long discussion, they agreed to ask the county for a grant and to postpone the decision "
           "on the new library until the autumn, when the final figures from the tax office are expected.")


def write_set(directory, name, split, records):
    with SetWriter(directory, name, split) as w:
        for r in records:
            w.write(r)


# --- splits -------------------------------------------------------------------------------

def mixed_records(micro_tokenizer) -> list[Record]:
    """Human documents from 30 sources, their prompts' human continuations, and fake machine
    continuations naming their prompt, all in one set."""
    docs = [Record(id=f"doc{s}-{k}", text=prose(s * 3 + k, 60), source=f"site{s}", label="human")
            for s in range(30) for k in range(3)]
    out = list(docs)
    for prompt, cont in make_prompts(docs[::2], 8, micro_tokenizer, min_continuation=4):
        cont.id = f"human-cont/{cont.id}"
        out.append(cont)
        out.append(Record(id=f"machine/{prompt.id}", text=prompt.text + " generated words", label="machine",
                          provenance={"prompt_id": prompt.id, "prompt_source": prompt.source, "family": "micro"}))
    return out


def test_split_keeps_documents_and_continuations_together(tmp_path, micro_tokenizer):
    recs = mixed_records(micro_tokenizer)
    write_set(tmp_path / "in", "mixed", "all", recs)
    res = split_set(tmp_path / "in", "mixed", "all", tmp_path / "a", seed=1)
    assert sum(res["records"].values()) == len(recs) and min(res["records"].values()) > 0
    splits = {s: list(open_set(tmp_path / "a", "mixed", s)) for s in ("train", "valid", "test")}
    assert find_leaks(splits)["shared"] == 0
    assert sorted(r.id for rs in splits.values() for r in rs) == sorted(r.id for r in recs)  # nothing lost
    machine = [r for rs in splits.values() for r in rs if r.label == "machine"]
    assert machine and all(group_key(r).startswith("site") for r in machine)
    assert set_stats(tmp_path / "a", "mixed")["leakage"]["shared_groups"] == 0
    # a split by record instead of by source leaks: the check can fail
    rng = np.random.default_rng(0)
    naive = {s: [] for s in ("train", "valid", "test")}
    for r in recs:
        naive[("train", "valid", "test")[rng.integers(3)]].append(r)
    assert find_leaks(naive)["shared"] > 10


def test_split_is_deterministic_from_seed(tmp_path):
    recs = [Record(id=i, text=f"text {i}", source=f"s{i % 40}") for i in range(200)]
    write_set(tmp_path / "in", "h", "all", recs)
    split_set(tmp_path / "in", "h", "all", tmp_path / "a", seed=5, card=False)
    split_set(tmp_path / "in", "h", "all", tmp_path / "b", seed=5, card=False)
    split_set(tmp_path / "in", "h", "all", tmp_path / "c", seed=6, card=False)
    files = [f"h.{s}.jsonl" for s in ("train", "valid", "test")]
    assert [(tmp_path / "a" / f).read_bytes() for f in files] == [(tmp_path / "b" / f).read_bytes() for f in files]
    assert [(tmp_path / "a" / f).read_bytes() for f in files] != [(tmp_path / "c" / f).read_bytes() for f in files]
    with pytest.raises(GuardError, match="made by other steps or parameters"):  # never mixes two splits
        split_set(tmp_path / "in", "h", "all", tmp_path / "a", seed=6)
    split_set(tmp_path / "in", "h", "all", tmp_path / "a", seed=5, card=False)  # the same split resumes
    split_set(tmp_path / "in", "h", "all", seed=5)  # next to its input: "all" is not counted as leakage
    assert set_stats(tmp_path / "in", "h")["leakage"]["shared_groups"] == 0
    assert "No source group appears in more than one of train, valid and test." in (tmp_path / "in" / "h.card.md").read_text()
    with pytest.raises(GuardError, match="fractions must be three"):
        split_set(tmp_path / "in", "h", "all", tmp_path / "d", fractions=(0.5, 0.5))


# --- length matching ----------------------------------------------------------------------

def test_plans_match_length_distributions():
    rng = np.random.default_rng(0)
    human = {f"h{i}": int(n) for i, n in enumerate(rng.integers(50, 300, 600))}
    machine = {f"m{i}": int(n) for i, n in enumerate(rng.integers(150, 600, 500))}
    assert ks_distance(list(human.values()), list(machine.values())) > 0.4
    h, m = plan_select(human, machine, bin_width=8, seed=0)
    assert len(h) == len(m) > 100
    assert all(human[k] == v for k, v in h.items())  # select cuts nothing
    assert ks_distance(list(h.values()), list(m.values())) < 0.05
    h, m = plan_truncate(human, machine, seed=0)
    assert len(h) == len(m) == 500
    assert sorted(h.values()) == sorted(m.values())
    assert all(v <= human[k] for k, v in h.items()) and all(v <= machine[k] for k, v in m.items())
    assert plan_truncate(human, machine, seed=0) == (h, m)


def test_match_lengths_truncates_at_token_boundaries(tmp_path, micro_tokenizer):
    human = [Record(id=i, text=prose(i, 30 + i % 20), label="human") for i in range(40)]
    machine = [Record(id=i, text=prose(100 + i, 80 + 3 * i), label="machine") for i in range(50)]
    write_set(tmp_path, "h", "test", human)
    write_set(tmp_path, "m", "test", machine)
    res = match_lengths(tmp_path, "h", "m", "test", tmp_path / "out", tokenizer=micro_tokenizer, family="micro",
                        method="truncate", seed=0)
    assert res["ks_before"] > 0.9 and res["ks_after"] < 0.1
    out_m = list(open_set(tmp_path / "out", "m", "test"))
    assert len(out_m) == 40 and len(list(open_set(tmp_path / "out", "h", "test"))) == 40
    originals = {r.id: r.text for r in machine}
    for r in out_m:
        assert originals[r.id].startswith(r.text) and r.extra["truncated_from"] > r.length and r.ended is False
    assert [r.length for r in out_m] == count_tokens([r.text for r in out_m], micro_tokenizer)
    steps = read_manifest(tmp_path / "out", "m", "test")["meta"]["steps"]
    assert steps[-1]["op"] == "match_lengths" and steps[-1]["method"] == "truncate"
    assert "match_lengths" in (tmp_path / "out" / "m.card.md").read_text()
    with pytest.raises(GuardError, match="another directory"):
        match_lengths(tmp_path, "h", "m", "test", tmp_path, tokenizer=micro_tokenizer)


# --- prompts ------------------------------------------------------------------------------

def test_prompt_and_continuation_rebuild_the_document(micro_tokenizer):
    doc = Record(id=7, text=ENGLISH + " Café naïve – “quoted”.", source="minutes", ended=True)
    prompt, cont = make_prompt(doc, 12, micro_tokenizer)
    assert prompt.text + cont.text == doc.text
    assert prompt.id == cont.id == 7 and cont.provenance["prompt_id"] == prompt.id
    assert prompt.source == cont.source == cont.provenance["prompt_source"] == "minutes"
    assert prompt.length in (12, 13) and prompt.length == count_tokens([prompt.text], micro_tokenizer)[0]
    assert prompt.ended is False and cont.ended is True and cont.label == prompt.label == "human"
    with pytest.raises(GuardError, match="too short"):
        make_prompt(Record(id=1, text="Hi."), 12, micro_tokenizer)


def test_prompts_set_writes_pairs_and_counts_skips(tmp_path, micro_tokenizer):
    docs = [Record(id=i, text=prose(i, 50), source=f"s{i}") for i in range(6)]
    docs += [Record(id=6, text="Too short."), Record(id=7, text="loop " * 80, flags=["repetition"])]
    write_set(tmp_path, "web", "test", docs)
    res = prompts_set(tmp_path, "web", "test", n_tokens=16, tokenizer=micro_tokenizer, family="micro",
                      min_continuation=8)
    assert res["pairs"] == 6 and res["skipped"] == {"too_short": 1, "flagged": 1}
    prompts = list(open_set(tmp_path, "web-prompts", "test"))
    conts = list(open_set(tmp_path, "web-continuations", "test"))
    assert [p.id for p in prompts] == [c.id for c in conts] == list(range(6))
    assert [p.text + c.text for p, c in zip(prompts, conts)] == [d.text for d in docs[:6]]
    step = read_manifest(tmp_path, "web-prompts", "test")["meta"]["steps"][-1]
    assert step["result"] == {"pairs": 6, "skipped": res["skipped"]}


# --- dedup and flags ----------------------------------------------------------------------

def test_dedup_removes_exact_and_near_duplicates(tmp_path):
    near = ENGLISH.replace("Tuesday", "Wednesday")
    recs = [Record(id=0, text=ENGLISH), Record(id=1, text=prose(1, 60)), Record(id=2, text="  " + ENGLISH.replace(" ", "\n ")),
            Record(id=3, text=near), Record(id=4, text=prose(2, 60)), Record(id=5, text=ENGLISH[:120])]
    report = {}
    kept = [r.id for r in dedup_records(recs, report)]
    assert kept == [0, 1, 4, 5]
    assert report["exact"] == 1 and report["near"] == 1
    assert report["removed"][0][:3] == [2, 0, "exact"] and report["removed"][1][:3] == [3, 0, "near"]
    assert [r.id for r in dedup_records(recs, near=False)] == [0, 1, 3, 4, 5]
    write_set(tmp_path, "s", "train", recs)
    res = dedup_set(tmp_path, "s", "train", tmp_path / "out")
    assert [r.id for r in open_set(tmp_path / "out", "s", "train")] == kept and res["kept"] == 4
    step = read_manifest(tmp_path / "out", "s", "train")["meta"]["steps"][-1]
    assert (step["op"], step["result"]["exact"], step["result"]["near"]) == ("dedup", 1, 1)


def test_degeneracy_flags():
    assert degeneracy_flags("") == ["empty"] and degeneracy_flags(" \n\t ") == ["empty"] and degeneracy_flags([]) == ["empty"]
    assert degeneracy_flags(ENGLISH) == [] and degeneracy_flags(ENGLISH + " " + ENGLISH[:100]) == []
    assert degeneracy_flags("I like cats. " * 20) == ["repetition"]
    assert degeneracy_flags(ENGLISH + " and then it was over." * 15) == ["repetition"]  # a late loop
    assert degeneracy_flags("Well " + "the " * 9 + "end of it all.") == ["repetition"]
    assert degeneracy_flags("=" * 100) == ["repetition"]
    assert degeneracy_flags([5, 6, 7, 8] * 20) == ["repetition"] and degeneracy_flags(list(range(100))) == []
