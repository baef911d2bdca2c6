"""Generate sets: N documents per size and sampling method, written as dataset sets.

One :class:`GenerationJob` (configuration as data) names the family, sizes, sampling
methods, count, length, prompts, seed and output directory. :func:`run_generation`
validates all of it before any model loads, then for each size and method writes the set
``<family>-<size>[-<method>]`` (OpenAI's names for the real GPT-2 family), split by split,
through the datasets part's resumable :class:`~gpt2guard.datasets.writer.SetWriter`, with a
dataset card. Record ``i`` of a set always has the same seed, so a killed run resumes with
exactly the records an uninterrupted run would have written, and any record regenerates
from its provenance (:func:`regenerate`).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from gpt2guard.datasets.records import Record
from gpt2guard.errors import GuardError
from gpt2guard.paths import sha256_text


@dataclass(frozen=True)
class GenerationJob:
    """What to generate.

    Parameters
    ----------
    out : str
        Output directory.
    family : str
        ``nano``, ``gpt2``, ``micro``, a model directory or a hub id.
    sizes : str
        ``all`` or comma-separated size names.
    sampling : str
        Comma-separated sampling specs (see :func:`~gpt2guard.generator.sampling.parse_sampling`).
    n : int
        Documents per size and method.
    length : int
        Maximum new tokens per document (unconditional, or when not matching lengths).
    prompts : str, optional
        A prompts set file made by ``gpt2guard datasets prompts``; its paired
        ``-continuations`` set next to it sets each continuation's length.
    match_length : bool
        With prompts, cap each continuation at its paired human continuation's length.
    split : str
        Split name of the written sets.
    seed : int
        Job seed; record ``i`` of set ``s`` samples with a seed derived from (seed, s, i).
    stop_at_eos : bool
        Stop a document at ``<|endoftext|>``; otherwise continue to ``length``.
    logprobs : bool
        Store per-token log-probabilities of the generated tokens.
    batch_size : int
        Documents per forward pass.
    shard_size : int, optional
        Records per shard (default: one file per split, OpenAI's layout).
    device : str, optional
        ``cpu`` or ``cuda``; default CUDA when present.
    linear : str
        Backend of the linear layers (:mod:`gpt2guard.family.linear`): ``auto`` (oneDNN
        on CPU where available), ``onednn`` or ``aten`` (torch's default). A resumed set
        keeps the one it began with.
    """

    out: str
    family: str = "nano"
    sizes: str = "all"
    sampling: str = "pure,top-k=40"
    n: int = 100
    length: int = 200
    prompts: str | None = None
    match_length: bool = True
    split: str = "train"
    seed: int = 0
    stop_at_eos: bool = True
    logprobs: bool = False
    batch_size: int = 8
    shard_size: int | None = None
    device: str | None = None
    linear: str = "auto"


def record_seed(job_seed: int, set_name: str, index: int) -> int:
    """The seed of record ``index`` of ``set_name``: a hash, so sets and records never share one."""
    return int(sha256_text(f"{job_seed}:{set_name}:{index}")[:15], 16)


def _context_window(spec, size: str) -> int | None:
    """The context window of a size without loading it (None when it cannot be known yet)."""
    import json

    from gpt2guard.family.resolve import find_size

    if spec.kind == "hub":
        return 1024
    if spec.kind == "builtin":
        return spec.recipe.n_positions
    path = find_size(spec, size)
    if path is None or not (path / "config.json").is_file():
        return None
    cfg = json.loads((path / "config.json").read_text())
    return cfg.get("n_positions") or cfg.get("max_position_embeddings")


def gen_set_name(spec, size: str, cfg) -> str:
    """``nano-small-k40``; for the real GPT-2 family OpenAI's ``small-117M-k40``.

    Set names hold no dots (a file name must parse one way), so ``nucleus0.9`` becomes
    ``nucleus0_9``.
    """
    from gpt2guard.datasets.names import OPENAI_SIZES, check_name, set_name

    method = cfg.name.replace(".", "_")
    if spec.kind == "hub" and spec.name == "gpt2":
        base = OPENAI_SIZES[spec.size_names.index(size)]
        return check_name(f"{base}-{method}" if method else base)
    family = spec.name if spec.kind != "single" else Path(spec.name).name.replace(".", "_") or "model"
    return set_name(family, size, method or None)


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise GuardError(f"cannot write to output directory {out}: {exc.strerror or exc}") from None


def _read_prompts(path: str):
    """Prompt records and, when the paired continuation set exists, their human continuations."""
    from gpt2guard.datasets.names import parse_file
    from gpt2guard.datasets.sets import open_set, set_files

    p = Path(path)
    parsed = parse_file(p.name)
    if not p.is_file() or parsed is None:
        raise GuardError(f"{path}: not a prompts set file (expected <set>.<split>.jsonl from `gpt2guard datasets prompts`)")
    set_name, split = parsed
    prompts = list(open_set(p.parent, set_name, split))
    if not prompts:
        raise GuardError(f"{path} holds no prompts")
    human = {}
    if set_name.endswith("-prompts"):
        cont = set_name[: -len("-prompts")] + "-continuations"
        try:
            set_files(p.parent, cont, split)
            human = {r.id: r for r in open_set(p.parent, cont, split)}
        except GuardError:
            human = {}
    return prompts, human


def plan_job(job: GenerationJob) -> dict:
    """Check a job completely before any model loads; return its resolved plan.

    Raises GuardError for unknown sizes or sampling specs, k <= 0, p outside (0, 1], a
    length beyond the context window, a bad count, or an unwritable output directory.
    """
    from gpt2guard.family import get_family
    from gpt2guard.generator.sampling import parse_sampling

    spec = get_family(job.family)
    sizes = spec.select(job.sizes)
    if not sizes:
        raise GuardError("no sizes selected")
    configs = parse_sampling(job.sampling)
    for what, value, low in (("--n", job.n, 1), ("--length", job.length, 1), ("--batch-size", job.batch_size, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise GuardError(f"{what} must be an integer >= {low}, not {value!r}")
    for s in sizes:
        window = _context_window(spec, s.name)
        if window is not None and job.length + 1 > window:
            raise GuardError(f"--length {job.length} does not fit {spec.name} {s.name}'s context window of "
                             f"{window} tokens (at most {window - 1} new tokens after <|endoftext|>)")
    prompts, human = _read_prompts(job.prompts) if job.prompts else (None, {})
    _check_writable(Path(job.out))
    sets = [(s.name, cfg, gen_set_name(spec, s.name, cfg)) for s in sizes for cfg in configs]
    return {"spec": spec, "sets": sets, "prompts": prompts, "human": human}


def _prompt_ids(job, plan, tokenizer, window: int) -> tuple[list[list[int]], list[int], list[Record | None]]:
    """Per record: prompt token ids, max new tokens, and the prompt record (None if unconditional)."""
    if plan["prompts"] is None:
        return [[] for _ in range(job.n)], [job.length] * job.n, [None] * job.n
    prompts = [plan["prompts"][i % len(plan["prompts"])] for i in range(job.n)]
    ids = [tokenizer.encode(p.text) for p in prompts]
    limits = []
    for p, toks in zip(prompts, ids):
        limit = job.length
        paired = plan["human"].get(p.id)
        if job.match_length and paired is not None:
            limit = max(1, len(tokenizer.encode(paired.text)))
        limits.append(max(1, min(limit, window - len(toks))))
    return ids, limits, prompts


def _min_rows(batch_size: int, backend: str) -> int:
    """Rows every forward pass computes. A record's bits depend on this alone, never on its
    batch-mates (see :func:`~gpt2guard.generator.sample.sample_batch`): one row when the job
    runs one record at a time (fastest there), else the loop's padded minimum."""
    from gpt2guard.generator.forward import min_rows_for

    return 1 if batch_size == 1 else min_rows_for(backend)


def _set_backend(out: Path, name: str, split: str, loaded, requested: str = "auto") -> str:
    """The linear backend of a set's records: a resumed set keeps the one it was begun with
    (sets begun before backends were recorded ran torch's default, ``aten``), so a resumed
    run writes what the uninterrupted run would have; a new set gets ``requested``."""
    from gpt2guard.datasets.sets import read_manifest
    from gpt2guard.family.linear import backend_for

    manifest = read_manifest(out, name, split)
    if not manifest or not manifest.get("records"):
        return backend_for(requested, loaded.model)
    begun = ((manifest.get("meta") or {}).get("config") or {}).get("linear", "aten")
    if requested not in ("auto", begun):
        raise GuardError(f"set {name}.{split} in {out} was begun on the {begun!r} linear backend, not {requested!r}: "
                         "a set keeps one backend; write to a new --out")
    try:
        return backend_for(begun, loaded.model)
    except GuardError as exc:
        raise GuardError(f"set {name}.{split} in {out} was begun on the {begun!r} linear backend, which cannot "
                         f"run here ({exc}); finish it where it began or write to a new --out") from None


def _record(i: int, result, loaded, set_name: str, prompt: Record | None, job: GenerationJob, versions: dict) -> Record:
    from gpt2guard.datasets.quality import degeneracy_flags

    prov = {"family": loaded.family, "size": loaded.size, "set": set_name, "index": i, **result.provenance(),
            "prompt_id": prompt.id if prompt else None, "prompt_source": prompt.source if prompt else None,
            "prompt_text": prompt.text if prompt else None, "stop_at_eos": job.stop_at_eos,
            "min_rows": _min_rows(job.batch_size, result.linear),
            "model_hash": loaded.model_hash, "tokenizer_hash": loaded.tokenizer_hash, "versions": versions}
    return Record(id=i, text=result.text, length=result.length, ended=result.ended, label="machine",
                  source=prompt.source if prompt else None, provenance=prov,
                  flags=degeneracy_flags(result.token_ids), token_logprobs=result.logprobs)


def run_generation(job: GenerationJob, progress: bool = True, log=None) -> list[dict]:
    """Generate every set of ``job``; resume any set a killed run left unfinished.

    Returns
    -------
    list of dict
        Per set: name, size, sampling, records written now and in all, tokens, seconds,
        tokens per second, flagged records, and the card's path.
    """
    import torch
    from gpt2guard.datasets.card import write_card
    from gpt2guard.datasets.writer import SetWriter
    from gpt2guard.family import load_model
    from gpt2guard.family.build import library_versions
    from gpt2guard.generator.sample import generate_tokens
    from gpt2guard.progress import progress_bar

    plan = plan_job(job)
    say = log or (lambda msg: None)
    out = Path(job.out)
    versions = library_versions()
    summary = []
    for size in dict.fromkeys(s for s, _, _ in plan["sets"]):
        loaded = load_model(job.family, size, device=job.device)
        prompt_ids, limits, prompt_recs = _prompt_ids(job, plan, loaded.tokenizer, loaded.n_positions)
        for _, cfg, name in (t for t in plan["sets"] if t[0] == size):
            backend = _set_backend(out, name, job.split, loaded, job.linear)
            config = {"generator": "gpt2guard", **asdict(job),
                      "set": name, "size": size, "sampling": cfg.to_dict(), "model_hash": loaded.model_hash,
                      "tokenizer_hash": loaded.tokenizer_hash, "versions": versions,
                      "linear": backend, "torch_threads": torch.get_num_threads()}
            meta = {"config": config, "label": "machine",
                    "motivation": f"Machine-written text from {loaded.family} {size} ({cfg.spec or 'pure'} sampling) "
                                  "for training and evaluating detectors of GPT-2 text."}
            start, written, tokens, flagged = time.perf_counter(), 0, 0, 0
            with SetWriter(out, name, job.split, shard_size=job.shard_size, resume=True, meta=meta) as writer:
                todo = [i for i in range(job.n) if i not in writer.existing_ids]
                bar = progress_bar(total=job.n, initial=job.n - len(todo), desc=name, unit="doc", progress=progress)
                chunk = max(job.batch_size * 4, 1)
                for c in range(0, len(todo), chunk):
                    idx = todo[c:c + chunk]
                    results = generate_tokens(loaded, [prompt_ids[i] for i in idx], [limits[i] for i in idx], cfg,
                                              [record_seed(job.seed, name, i) for i in idx],
                                              stop_at_eos=job.stop_at_eos, return_logprobs=job.logprobs,
                                              batch_size=job.batch_size, min_rows=_min_rows(job.batch_size, backend),
                                              linear=backend)
                    for i, res in zip(idx, results):
                        rec = _record(i, res, loaded, name, prompt_recs[i], job, versions)
                        writer.write(rec)
                        written, tokens, flagged = written + 1, tokens + res.length, flagged + bool(rec.flags)
                    elapsed = time.perf_counter() - start
                    bar.update(len(idx))
                    bar.set_postfix(tok_s=f"{tokens / elapsed:.0f}", doc_s=f"{written / elapsed:.1f}")
                bar.close()
                total = writer.records
            seconds = time.perf_counter() - start
            card = write_card(out, name)
            summary.append({"set": name, "size": size, "sampling": cfg.spec or "pure", "written": written,
                            "records": total, "tokens": tokens, "seconds": round(seconds, 2),
                            "tokens_per_s": round(tokens / seconds, 1) if seconds > 0 and tokens else 0.0,
                            "flagged": flagged, "card": str(card)})
            say(f"{name}: {written} written now, {total} in all, {tokens} tokens in {seconds:.1f}s")
    return summary


def regenerate(record: Record | dict, loaded=None) -> str:
    """Regenerate a machine record's text from its provenance alone.

    Parameters
    ----------
    record : Record or dict
        A record written by :func:`run_generation`.
    loaded : LoadedModel, optional
        The generating model; loaded from the provenance's family and size if omitted.
        Its hash must match the recorded ``model_hash``.

    Returns
    -------
    str
        The text the recorded settings produce; equal to ``record.text`` when the record is
        what it says it is.
    """
    import warnings

    from gpt2guard.family import load_model
    from gpt2guard.family.linear import BACKENDS, backend_for
    from gpt2guard.generator.sample import generate_tokens
    from gpt2guard.generator.sampling import SamplingConfig

    if isinstance(record, dict):
        record = Record.from_dict(record)
    prov = record.provenance or {}
    try:
        cfg = SamplingConfig.from_dict(prov["sampling"])
        seed, limit = prov["seed"], prov["max_new_tokens"]
    except KeyError as exc:
        raise GuardError(f"record {record.id!r} has no generation provenance ({exc.args[0]} missing)") from None
    loaded = loaded or load_model(prov["family"], prov["size"])
    if prov.get("model_hash") and loaded.model_hash != prov["model_hash"]:
        raise GuardError(f"record {record.id!r} was generated by model {prov['model_hash'][:12]}, "
                         f"not {loaded.model_hash[:12]}")
    prompt = loaded.tokenizer.encode(prov["prompt_text"]) if prov.get("prompt_text") else []
    # The recorded linear backend (records before it was recorded ran torch's default path);
    # where it cannot run here (another device or dtype, a torch without oneDNN), the best
    # one available, whose last bits may differ: then a mismatch is not proof of forgery.
    linear = prov.get("linear", "aten")
    if linear not in BACKENDS:
        raise GuardError(f"record {record.id!r} names an unknown linear backend {linear!r}")
    try:
        backend_for(linear, loaded.model)
    except GuardError:
        warnings.warn(f"record {record.id!r} was generated on the {linear!r} linear backend, which cannot run "
                      "here; regenerating on another, whose text may differ in its last bits", stacklevel=2)
        linear = "auto"
    result = generate_tokens(loaded, [prompt], [limit], cfg, [seed], stop_at_eos=prov.get("stop_at_eos", True),
                             min_rows=prov.get("min_rows"), linear=linear)[0]
    return result.text
