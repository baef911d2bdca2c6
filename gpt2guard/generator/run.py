"""Generate sets: N documents per size and sampling method, written as dataset sets.

One :class:`GenerationJob` (configuration as data) names the family, sizes, sampling
methods, count, length, prompts, seed and output directory. :func:`run_generation`
validates all of it before any model loads, then for each size and method writes the set
``<family>-<size>[-<method>]`` (OpenAI's names for the real GPT-2 family), split by split,
through the datasets part's resumable :class:`~gpt2guard.datasets.writer.SetWriter`, with a
dataset card. Record ``i`` of split ``p`` of set ``s`` samples with the seed
:func:`record_seed` derives from (job seed, ``s``, ``p``, ``i``), so two splits or two sets
never share a record's seed, a killed run resumes with exactly the records an uninterrupted
run would have written, and any record regenerates from its provenance (:func:`regenerate`).

Each split's manifest names the job that made it (``meta["job"]``: an id digesting the
settings that decide what the records are, the settings, and when and with which library
versions it began) and lists every run that wrote to it (``meta["runs"]``, resumes
included). A run whose settings differ from the job's is refused before it writes anything
(:func:`check_resume`): one set never mixes the records of two jobs.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, replace
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
        Job seed; record ``i`` of split ``p`` of set ``s`` samples with the seed
        :func:`record_seed` derives from (seed, s, p, i).
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
    watermark : gpt2guard.watermark.WatermarkConfig, optional
        Kirchenbauer et al.'s green-list watermark, applied inside the sampling loop and
        named (scheme, gamma, delta, key digest) in every record's provenance; a set
        begun with another watermark (or none) is not resumed.
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
    watermark: "WatermarkConfig | None" = None


#: What a generated record means; changes when the same settings would write other records
#: (2: per-record seeds depend on the split; ``length`` counts the tokens of ``text``).
GENERATOR_FORMAT = "gpt2guard.generate/2"

#: The settings that decide what a set's records are, each with the option that sets it.
#: A resumed run must agree on all of them (``--n`` may grow: record ``i`` does not depend on it).
SETTINGS = {"format": "the generator format", "family": "--family", "seed": "--seed", "sampling": "--sampling",
            "length": "--length", "prompts": "--prompts", "match_length": "--no-match-length",
            "stop_at_eos": "--continue-past-eos", "logprobs": "--logprobs", "min_rows": "--batch-size",
            "model_hash": "the model", "tokenizer_hash": "the tokenizer", "watermark": "--watermark"}


def record_seed(job_seed: int, set_name: str, split: str, index: int) -> int:
    """The seed of record ``index`` of split ``split`` of set ``set_name``.

    The first 8 bytes of the SHA-256 of the UTF-8 string ``"{job_seed}:{set_name}:{split}:{index}"``,
    read big-endian, shifted right by one bit (a seed in [0, 2**63)). A hash, so two splits,
    two sets or two records never share a seed, whatever job seed they were given.
    """
    digest = hashlib.sha256(f"{job_seed}:{set_name}:{split}:{index}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _prompts_digest(path: str | None) -> str | None:
    """SHA-256 of a prompts file's bytes (the prompts, wherever the file has moved)."""
    if not path:
        return None
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def job_settings(job: "GenerationJob", set_name: str, cfg, prompts_digest: str | None) -> dict:
    """The settings that decide the records of one set's split, without the model (see
    :data:`SETTINGS`); ``min_rows``, ``model_hash`` and ``tokenizer_hash`` join them once
    the model is loaded. A watermarked job adds ``watermark`` (its provenance: no key);
    an unwatermarked one has no such entry, so its id is what it was before watermarks."""
    settings = {"format": GENERATOR_FORMAT, "family": job.family, "set": set_name, "split": job.split,
                "seed": job.seed, "sampling": cfg.to_dict(), "length": job.length, "prompts": prompts_digest,
                "match_length": job.match_length if job.prompts else None, "stop_at_eos": job.stop_at_eos,
                "logprobs": job.logprobs}
    if job.watermark is not None:
        settings["watermark"] = job.watermark.provenance()
    return settings


def job_id(settings: dict) -> str:
    """A job's id: the first 16 hex digits of the SHA-256 of its settings as canonical JSON."""
    return sha256_text(json.dumps(settings, sort_keys=True, separators=(",", ":")))[:16]


def _shown(key: str, value) -> str:
    if key == "sampling" and isinstance(value, dict):
        return value.get("spec") or json.dumps(value, sort_keys=True)
    if key in ("prompts", "model_hash", "tokenizer_hash") and isinstance(value, str):
        return value[:12]
    if key == "watermark":
        if not value:
            return "none"
        return (f"{value.get('scheme')} gamma {value.get('gamma')} delta {value.get('delta')} "
                f"key {str(value.get('key_digest'))[:12]}")
    return json.dumps(value) if isinstance(value, (bool, type(None))) else str(value)


def _has_records(out, name: str, split: str, manifest: dict | None) -> bool:
    """Whether a split holds records: finished ones, or a killed run's unfinished shard."""
    if manifest and manifest.get("records"):
        return True
    out = Path(out)
    return out.is_dir() and any(p.stat().st_size for p in out.glob(f".{name}.{split}.*partial"))


def check_resume(manifest: dict | None, settings: dict, where: str, has_records: bool | None = None) -> None:
    """Refuse to add records to a split that another job began.

    Parameters
    ----------
    manifest : dict or None
        The split's manifest (None: nothing to check).
    settings : dict
        The new run's settings (:func:`job_settings`, possibly with the model's).
    where : str
        ``<set>.<split> in <dir>``, for the message.
    has_records : bool, optional
        Whether the split holds records (default: its manifest counts some); a split
        without records may be begun again with any settings.

    Raises
    ------
    GuardError
        Naming the first setting of :data:`SETTINGS` that differs, e.g.
        ``--seed 1 differs from the set's seed 0 (...): use a new --out or the same settings``.
    """
    if has_records is None:
        has_records = bool(manifest and manifest.get("records"))
    if not manifest or not has_records:
        return
    meta = manifest.get("meta") or {}
    stored = (meta.get("job") or {}).get("settings")
    if stored is None:
        if meta.get("config"):
            raise GuardError(f"{where} was begun by an older gpt2guard generator whose records mean something else "
                             "(per-record seeds did not depend on the split): use a new --out")
        raise GuardError(f"{where} holds records not written by `gpt2guard generate`: use a new --out")
    for key, option in SETTINGS.items():
        if key == "watermark":  # absent means unwatermarked, on either side
            if settings.get(key) != stored.get(key):
                raise GuardError(f"--watermark ({_shown(key, settings.get(key))}) differs from the set's watermark "
                                 f"({_shown(key, stored.get(key))}) ({where}): use a new --out or the same key "
                                 "and parameters")
            continue
        if key in settings and key in stored and settings[key] != stored[key]:
            if key == "min_rows":
                def passes(rows):
                    return "one-row passes" if rows == 1 else "wider passes"

                raise GuardError(f"--batch-size gives {passes(settings[key])}, not the set's {passes(stored[key])} "
                                 f"({where}): use a new --out or the same settings (--batch-size 1 runs "
                                 "one-row passes, any other size wider ones)")
            if option.startswith("--"):
                raise GuardError(f"{option} {_shown(key, settings[key])} differs from the set's {key} "
                                 f"{_shown(key, stored[key])} ({where}): use a new --out or the same settings")
            raise GuardError(f"{option} ({key} {_shown(key, settings[key])}) differs from the set's "
                             f"({_shown(key, stored[key])}) ({where}): use a new --out or the same settings")


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
    from gpt2guard.datasets.names import check_name
    from gpt2guard.datasets.sets import read_manifest

    check_name(job.split, "split")
    if job.watermark is not None:  # a missing, malformed or foreign key fails before anything is written
        from gpt2guard.family import load_tokenizer
        from gpt2guard.watermark import WatermarkConfig

        if not isinstance(job.watermark, WatermarkConfig):
            raise GuardError(f"watermark must be a WatermarkConfig, not {type(job.watermark).__name__}")
        job.watermark.key().check_tokenizer(load_tokenizer(job.family))
    prompts, human = _read_prompts(job.prompts) if job.prompts else (None, {})
    _check_writable(Path(job.out))
    digest = _prompts_digest(job.prompts)
    sets = [(s.name, cfg, gen_set_name(spec, s.name, cfg)) for s in sizes for cfg in configs]
    for _, cfg, name in sets:  # a resumed set must be the same job: refuse before any model loads
        manifest = read_manifest(job.out, name, job.split)
        check_resume(manifest, job_settings(job, name, cfg, digest), f"{name}.{job.split} in {job.out}",
                     _has_records(job.out, name, job.split, manifest))
    return {"spec": spec, "sets": sets, "prompts": prompts, "human": human, "prompts_digest": digest}


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


def _min_rows(batch_size: int) -> int | None:
    """Rows every forward pass computes. A record's bits depend on this (recorded), never on
    its batch-mates (see :func:`~gpt2guard.generator.sample.sample_batch`): one row when the
    job runs one record at a time (fastest there), else (None) the loop's padded minimum,
    measured for this CPU."""
    return 1 if batch_size == 1 else None


def _set_backend(out: Path, name: str, split: str, loaded, requested: str = "auto", job_rows: int = 8) -> str:
    """The linear backend of a set's records: a resumed set keeps the one it was begun with
    (sets begun before backends were recorded ran torch's default, ``aten``), so a resumed
    run writes what the uninterrupted run would have; a new set gets ``requested``."""
    from gpt2guard.datasets.sets import read_manifest
    from gpt2guard.family.linear import backend_for

    manifest = read_manifest(out, name, split)
    if not manifest or not manifest.get("records"):
        return backend_for(requested, loaded.model, rows=job_rows)
    begun = ((manifest.get("meta") or {}).get("config") or {}).get("linear", "aten")
    if requested not in ("auto", begun):
        raise GuardError(f"set {name}.{split} in {out} was begun on the {begun!r} linear backend, not {requested!r}: "
                         "a set keeps one backend; write to a new --out")
    try:
        return backend_for(begun, loaded.model)
    except GuardError as exc:
        raise GuardError(f"set {name}.{split} in {out} was begun on the {begun!r} linear backend, which cannot "
                         f"run here ({exc}); finish it where it began or write to a new --out") from None


def _record(i: int, result, length: int, loaded, set_name: str, prompt: Record | None, job: GenerationJob,
            versions: dict, jid: str) -> Record:
    """A generated record: ``length`` counts the tokens of its text (the tokens generated
    are ``provenance["new_tokens"]``)."""
    from gpt2guard.datasets.quality import degeneracy_flags

    prov = {"family": loaded.family, "size": loaded.size, "set": set_name, "split": job.split, "index": i,
            "job": jid, "job_seed": job.seed, "format": GENERATOR_FORMAT, **result.provenance(),
            "new_tokens": result.length,
            "prompt_id": prompt.id if prompt else None, "prompt_source": prompt.source if prompt else None,
            "prompt_text": prompt.text if prompt else None, "stop_at_eos": job.stop_at_eos,
            "model_hash": loaded.model_hash, "tokenizer_hash": loaded.tokenizer_hash, "versions": versions}
    return Record(id=i, text=result.text, length=length, ended=result.ended, label="machine",
                  source=prompt.source if prompt else None, provenance=prov,
                  flags=degeneracy_flags(result.token_ids), token_logprobs=result.logprobs)


@dataclass(frozen=True)
class SetTask:
    """What every record of one set's split shares: the job, the set, its sampling method,
    linear backend, rows per product and job id, and the library versions of the run."""

    job: GenerationJob
    name: str
    cfg: object
    backend: str
    min_rows: int | None
    jid: str
    versions: dict


def make_records(loaded, task: SetTask, items) -> list[Record]:
    """The records of ``items`` (``(index, prompt ids, max new tokens, prompt record or
    None)``, any subset of a set in any grouping: a record's bits depend on its seed, never
    on its batch-mates), made with ``loaded``; the one record maker of every engine."""
    from gpt2guard.datasets.tokens import count_tokens
    from gpt2guard.generator.sample import generate_tokens

    job, name = task.job, task.name
    idx = [it[0] for it in items]
    results = generate_tokens(loaded, [it[1] for it in items], [it[2] for it in items], task.cfg,
                              [record_seed(job.seed, name, job.split, i) for i in idx],
                              stop_at_eos=job.stop_at_eos, return_logprobs=job.logprobs,
                              batch_size=job.batch_size, min_rows=task.min_rows, linear=task.backend,
                              watermark=job.watermark)
    lengths = count_tokens([res.text for res in results], loaded.tokenizer)
    return [_record(it[0], res, length, loaded, name, it[3], job, task.versions, task.jid)
            for it, res, length in zip(items, results, lengths)]


def record_stream(loaded, task: SetTask, items: list, engine=None):
    """Lists of records of ``items``, in their order: made here a chunk (four batches) at
    a time, or on Ray Data actors (:func:`~gpt2guard.engine.ray_generate.ray_records`)."""
    from gpt2guard.engine import as_engine

    chunk = max(task.job.batch_size * 4, 1)
    if as_engine(engine).is_ray:
        from gpt2guard.engine.ray_generate import ray_records

        yield from ray_records(loaded, task, items, engine, chunk)
        return
    for c in range(0, len(items), chunk):
        yield make_records(loaded, task, items[c:c + chunk])


def run_generation(job: GenerationJob, progress: bool = True, log=None, engine=None) -> list[dict]:
    """Generate every set of ``job``; resume any set a killed run left unfinished.

    Parameters
    ----------
    job : GenerationJob
        What to generate.
    progress : bool
        One bar per set on a terminal.
    log : callable, optional
        Receives one line per finished set.
    engine : Engine or str, optional
        Where the records are made (:class:`~gpt2guard.engine.Engine`): here (default), or on
        Ray Data actors. Either way this process plans the records and writes them in record
        order through the same writer, so a set made on Ray is the set made here on the
        same kind of device, and resumes the same way.

    Returns
    -------
    list of dict
        Per set: name, size, sampling, records written now and in all, tokens, seconds,
        tokens per second, flagged records, and the card's path.
    """
    from gpt2guard.engine import as_engine

    engine = as_engine(engine)
    plan = plan_job(job)
    if engine.is_ray:
        from gpt2guard.engine.ray_session import ray_session

        with ray_session(engine):
            return _run_sets(job, plan, progress, log, engine)
    return _run_sets(job, plan, progress, log, engine)


def _run_sets(job: GenerationJob, plan: dict, progress: bool, log, engine) -> list[dict]:
    import torch
    from gpt2guard.datasets.card import write_card
    from gpt2guard.datasets.runs import finish_run, start_run, utc_now
    from gpt2guard.datasets.sets import read_manifest
    from gpt2guard.datasets.tokens import tokenizer_info
    from gpt2guard.datasets.writer import SetWriter
    from gpt2guard.family import load_model
    from gpt2guard.family.build import library_versions
    from gpt2guard.progress import progress_bar

    say = log or (lambda msg: None)
    out = Path(job.out)
    versions = library_versions()
    summary = []
    for size in dict.fromkeys(s for s, _, _ in plan["sets"]):
        loaded = load_model(job.family, size, device=job.device)
        tok_info = tokenizer_info(loaded.tokenizer, job.family)
        prompt_ids, limits, prompt_recs = _prompt_ids(job, plan, loaded.tokenizer, loaded.n_positions)
        for _, cfg, name in (t for t in plan["sets"] if t[0] == size):
            where = f"{name}.{job.split} in {out}"
            requested = job.linear
            if engine.is_ray and engine.gpus_per_worker > 0 and requested == "auto":
                requested = "aten"  # what "auto" gives the GPU actors (oneDNN runs on CPUs only)
            backend = _set_backend(out, name, job.split, loaded, requested, job.batch_size)
            min_rows = _min_rows(job.batch_size)
            settings = {**job_settings(job, name, cfg, plan["prompts_digest"]), "min_rows": min_rows,
                        "model_hash": loaded.model_hash, "tokenizer_hash": loaded.tokenizer_hash}
            manifest = read_manifest(out, name, job.split)
            check_resume(manifest, settings, where, _has_records(out, name, job.split, manifest))
            jid = job_id(settings)
            threads = torch.get_num_threads()
            config = {"generator": "gpt2guard", "format": GENERATOR_FORMAT, "job": jid, **asdict(replace(job, watermark=None)),
                      "watermark": settings.get("watermark"),  # the key's digest, never the key
                      "set": name, "size": size, "sampling": cfg.to_dict(), "model_hash": loaded.model_hash,
                      "tokenizer_hash": loaded.tokenizer_hash, "versions": versions,
                      "linear": backend, "torch_threads": threads}
            meta = {"config": config, "label": "machine", "tokenizer": tok_info,
                    "motivation": f"Machine-written text from {loaded.family} {size} ({cfg.spec or 'pure'} sampling) "
                                  "for training and evaluating detectors of GPT-2 text."}
            start, written, tokens, flagged = time.perf_counter(), 0, 0, 0
            with SetWriter(out, name, job.split, shard_size=job.shard_size, resume=True) as writer:
                first = writer.meta.get("job") is None or not writer.records
                if first and writer.records:
                    raise GuardError(f"{where} holds {writer.records} records of a run that recorded no job "
                                     "(an older gpt2guard's killed run?): use a new --out")
                if not first:  # the job that began the split keeps describing it; --n may have grown
                    meta["config"] = {**writer.meta.get("config", {}), "n": max(job.n, writer.meta["config"]["n"])}
                writer.meta.update(meta)
                if not writer.records:  # a split without records is begun (again) by this job
                    writer.meta["job"], writer.meta["runs"] = None, []
                if not writer.meta.get("job"):
                    writer.meta["job"] = {"id": jid, "settings": settings, "started": utc_now(), "versions": versions}
                run = start_run(writer, job=jid, n=job.n, batch_size=job.batch_size, device=job.device,
                                torch_threads=threads, versions=versions)
                writer.save_meta()
                todo = [i for i in range(job.n) if i not in writer.existing_ids]
                bar = progress_bar(total=job.n, initial=job.n - len(todo), desc=name, unit="doc", progress=progress)
                task = SetTask(job, name, cfg, backend, min_rows, jid, versions)
                items = [(i, prompt_ids[i], limits[i], prompt_recs[i]) for i in todo]
                try:
                    for records in record_stream(loaded, task, items, engine):
                        for rec in records:
                            writer.write(rec)
                            run["written"] += 1
                            written, flagged = written + 1, flagged + bool(rec.flags)
                            tokens += rec.provenance["new_tokens"]
                        elapsed = time.perf_counter() - start
                        bar.update(len(records))
                        bar.set_postfix(tok_s=f"{tokens / elapsed:.0f}", doc_s=f"{written / elapsed:.1f}")
                finally:
                    bar.close()
                    finish_run(writer, run)
                total = writer.records
            seconds = time.perf_counter() - start
            card = write_card(out, name)
            summary.append({"set": name, "size": size, "sampling": cfg.spec or "pure", "written": written,
                            "records": total, "tokens": tokens, "seconds": round(seconds, 2),
                            "tokens_per_s": round(tokens / seconds, 1) if seconds > 0 and tokens else 0.0,
                            "flagged": flagged, "card": str(card)})
            say(f"{name}: {written} written now, {total} in all, {tokens} tokens in {seconds:.1f}s")
    return summary


def regenerate(record: Record | dict, loaded=None, *, watermark_key=None) -> str:
    """Regenerate a machine record's text from its provenance alone.

    Parameters
    ----------
    record : Record or dict
        A record written by :func:`run_generation`.
    loaded : LoadedModel, optional
        The generating model; loaded from the provenance's family and size if omitted.
        Its hash must match the recorded ``model_hash``.
    watermark_key : path or WatermarkKey, optional
        The key of a watermarked record (its provenance names only the key's digest, which
        this key must match).

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
    if "job_seed" in prov and seed != record_seed(prov["job_seed"], prov.get("set"), prov.get("split"),
                                                  prov.get("index")):
        raise GuardError(f"record {record.id!r}: its seed does not derive from its job seed, set, split and index")
    loaded = loaded or load_model(prov["family"], prov["size"])
    if prov.get("model_hash") and loaded.model_hash != prov["model_hash"]:
        raise GuardError(f"record {record.id!r} was generated by model {prov['model_hash'][:12]}, "
                         f"not {loaded.model_hash[:12]}")
    watermark = None
    if prov.get("watermark"):
        from gpt2guard.watermark import WatermarkConfig

        if watermark_key is None:
            raise GuardError(f"record {record.id!r} is watermarked (key {str(prov['watermark'].get('key_digest'))[:12]}"
                             "): regenerating it needs its key file")
        watermark = WatermarkConfig.from_provenance(prov["watermark"], getattr(watermark_key, "path", watermark_key))
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
    # Bits are promised only on the kernels the record was made with (kernel_provenance);
    # the recorded thread count is used where this machine allows it.
    import torch

    threads = torch.get_num_threads()
    want = prov.get("torch_threads")
    if isinstance(want, int) and 1 <= want <= max(threads, os.cpu_count() or 1):
        torch.set_num_threads(want)
    try:
        result = generate_tokens(loaded, [prompt], [limit], cfg, [seed], stop_at_eos=prov.get("stop_at_eos", True),
                                 min_rows=prov.get("min_rows"), linear=linear, watermark=watermark)[0]
    finally:
        torch.set_num_threads(threads)
    if result.text != record.text and prov.get("kernel_id") != result.kernels.get("kernel_id", ""):
        warnings.warn(f"record {record.id!r} was made on other kernels ({prov.get('cpu', 'unknown CPU')}, torch "
                      f"{prov.get('torch', '?')}, {want} thread(s)) than here ({result.kernels.get('cpu')}, torch "
                      f"{result.kernels.get('torch')}, {result.kernels.get('torch_threads')}): bits are promised only "
                      "on the same kernels, so a differing text here is not proof of tampering", stacklevel=2)
    return result.text
