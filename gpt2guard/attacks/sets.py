"""Attacked copies of a set: one derived set per attack spec, every record's attack in its provenance.

``<set>-<label>`` (``webtext-homoglyph-1``, ``webtext-whitespace-0p2``) holds the records of
``<set>`` with their text attacked, their token length counted again and
``provenance["attack"]`` saying what was done (attack, rate, the record's seed, the set's
seed, how many places changed out of how many candidates). Each record gets its own seed,
derived from the set's seed and its id (:func:`record_seed`), so records of equal text are
not attacked in lockstep and any one record is reproduced by
``attack(text, name, rate, record_seed(seed, id))``.

The outputs are written through :class:`~gpt2guard.datasets.staging.StagedSets`: each spec's
set (all its splits) appears whole or not at all, a killed run resumes, a rerun with the
same arguments finds the sets finished and writes nothing, and an existing set made with
other arguments is refused before anything is written.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from gpt2guard.attacks.core import AttackSpec, as_specs, attack, check_seed
from gpt2guard.datasets.names import check_name
from gpt2guard.datasets.records import Record
from gpt2guard.datasets.sets import derived_meta, list_sets, open_set, set_files, set_meta
from gpt2guard.datasets.staging import StagedSets, check_outputs
from gpt2guard.errors import GuardError


def record_seed(seed: int, record_id) -> int:
    """The seed of one record's attack: a 63-bit hash of the set's seed and the record's id."""
    digest = hashlib.blake2b(f"{int(seed)}\x00{record_id!r}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def attacked_name(set_name: str, spec: AttackSpec) -> str:
    """``webtext`` + ``homoglyph=1`` -> ``webtext-homoglyph-1``."""
    return check_name(f"{set_name}-{spec.label}")


def attack_record(rec: Record, spec: AttackSpec, seed: int) -> tuple[Record, int]:
    """A copy of ``rec`` with its text attacked and the attack in its provenance; and the
    number of places changed. The length is left for the caller to count again."""
    out = attack(rec.text, spec.name, spec.rate, record_seed(seed, rec.id))
    provenance = dict(rec.provenance or {})
    provenance["attack"] = {**out.provenance(), "set_seed": seed}
    return Record(id=rec.id, text=out.text, length=None, ended=rec.ended, label=rec.label, source=rec.source,
                  provenance=provenance, flags=list(rec.flags), token_logprobs=None, extra=dict(rec.extra)), \
        out.n_changed


def attack_set(directory, set_name: str, specs, out_dir=None, *, seed: int = 0, splits=None, family: str | None = None,
               tokenizer=None, shard_size: int | None = None, card: bool = True) -> dict:
    """Write one attacked copy of a set per attack spec.

    Parameters
    ----------
    directory : path
        Holds the input set.
    set_name : str
        The input set; outputs are named ``<set_name>-<spec.label>``.
    specs : str or list of AttackSpec
        ``"homoglyph=1.0,whitespace=0.2"`` or parsed specs.
    out_dir : path, optional
        Where the attacked sets go (default ``directory``).
    seed : int
        The set's seed; each record's attack is seeded from it and the record's id.
    splits : list of str, optional
        The splits to attack (default every split of the set).
    family : str, optional
        Model family whose tokenizer counts the attacked texts' lengths (default the one
        named in the input set's manifest, else ``nano``); ``tokenizer`` overrides it.
    shard_size : int, optional
        Shard the outputs.
    card : bool
        Write each output's dataset card.

    Returns
    -------
    dict
        ``{"dir", "input", "seed", "sets": [{"set", "attack", "status", "splits": {split:
        {"records", "changed", "candidates"}}}]}`` where ``status`` is ``written`` or
        ``already complete`` (a rerun with the same arguments writes nothing).

    Raises
    ------
    GuardError
        Before anything is written: a bad spec or seed, a missing or unfinished input, an
        output set made with other arguments, or another job writing one.
    """
    specs = as_specs(specs)
    seed = check_seed(seed)
    out_dir = Path(out_dir if out_dir is not None else directory)
    available = list_sets(directory).get(check_name(set_name))
    if not available:
        raise GuardError(f"no set {set_name!r} in {directory}")
    splits = list(splits) if splits else available
    for split in splits:
        set_files(directory, set_name, split)  # exists and is finished, before anything is written
    plans = []
    for spec in specs:
        name = attacked_name(set_name, spec)
        targets = {}
        for split in splits:
            step = {"op": "attack", "input": f"{set_name}.{split}", "attack": spec.name, "rate": spec.rate,
                    "seed": seed}
            targets[(name, split)] = derived_meta(directory, set_name, split, step)
        done = check_outputs(out_dir, targets)  # every refusal before the first write
        plans.append((spec, name, targets, len(done) == len(targets)))
    result = {"dir": str(out_dir), "input": set_name, "seed": seed, "sets": []}
    todo = [p for p in plans if not p[3]]
    if todo and tokenizer is None:
        from gpt2guard.datasets.tokens import get_tokenizer

        if family is None:
            family = (set_meta(directory, set_name, splits[0]).get("tokenizer") or {}).get("family") or "nano"
        tokenizer = get_tokenizer(family)
    for spec, name, targets, finished in plans:
        entry = {"set": name, "attack": str(spec), "status": "already complete" if finished else "written",
                 "splits": {}}
        result["sets"].append(entry)
        if finished:
            continue
        _write(directory, set_name, spec, seed, targets, out_dir, tokenizer, family, shard_size, entry)
        if card:
            from gpt2guard.datasets.card import write_card

            write_card(out_dir, name)
    return result


def _attacked(directory, set_name: str, split: str, spec: AttackSpec, seed: int, writer, counts: dict):
    """The attacked records of one split that ``writer`` does not hold yet; every record is
    counted (a resumed run reports the whole split)."""
    for rec in open_set(directory, set_name, split):
        new, _ = attack_record(rec, spec, seed)
        done = new.provenance["attack"]
        counts["records"] += 1
        counts["changed"] += done["n_changed"]
        counts["candidates"] += done["n_candidates"]
        if rec.id not in writer.existing_ids:
            yield new


def _write(directory, set_name, spec, seed, targets, out_dir, tokenizer, family, shard_size, entry) -> None:
    from gpt2guard.datasets.tokens import tokenizer_info, with_lengths

    info = tokenizer_info(tokenizer, family)
    for meta in targets.values():
        meta["tokenizer"] = info
    with StagedSets(out_dir, targets, shard_size) as staged:
        for (name, split), writer in staged.writers.items():
            counts = {"records": 0, "changed": 0, "candidates": 0}
            for rec in with_lengths(_attacked(directory, set_name, split, spec, seed, writer, counts), tokenizer):
                writer.write(rec)
            writer.meta["steps"][-1]["result"] = dict(counts)
            entry["splits"][split] = counts
