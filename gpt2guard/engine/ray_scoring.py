"""Scoring on Ray Data: documents flow through ``map_batches`` into a pool of actors, each
holding one :class:`~gpt2guard.detector.scoring.Scorer` (its models loaded once); results
come back in input order.

:class:`RayScorer` is a ``Scorer`` whose :meth:`~RayScorer.score` and
:meth:`~RayScorer.score_sums` run there, so every user of a scorer (``gpt2guard score``,
the features of ``detector train|eval``, ``release simulate``) runs on Ray unchanged.
Records cross the cluster as data, never pickles: per-document sums as JSON, full records
as the ``.npz`` archives of plain arrays the stats cache writes
(:meth:`~gpt2guard.detector.stats.TokenStats.to_arrays`). Window
batches differ from a local run's (each actor sees its share of the documents), so the
statistics equal local ones to float rounding, not bit for bit.
"""

from __future__ import annotations

import io
import json

import numpy as np

from gpt2guard.detector.scoring import Scorer
from gpt2guard.errors import GuardError

#: Documents per batch handed to an actor: enough for its window batches to fill up.
DOCS_PER_BATCH = 128


def _pack(record) -> bytes:
    """A record as bytes: a :class:`~gpt2guard.detector.stats.TokenSums` as JSON (floats
    round-trip exactly; a few hundred bytes), a
    :class:`~gpt2guard.detector.stats.TokenStats` as the stats cache's ``.npz`` of arrays."""
    from gpt2guard.detector.stats import TokenSums

    if isinstance(record, TokenSums):
        return json.dumps({"n_tokens": record.n_tokens, "sums": record.sums, "n_windows": record.n_windows,
                           "model_hash": record.model_hash, "reference_hash": record.reference_hash,
                           "flags": list(record.flags), "text_hash": record.text_hash,
                           "repairs": record.repairs}).encode("utf-8")
    buf = io.BytesIO()
    np.savez(buf, **record.to_arrays())
    return buf.getvalue()


def _unpack(data: bytes, sums: bool):
    """Inverse of :func:`_pack` (never unpickles)."""
    from gpt2guard.detector.stats import TokenStats, TokenSums

    if sums:
        obj = json.loads(data)
        return TokenSums(obj["n_tokens"], obj["sums"], obj["n_windows"], obj["model_hash"],
                         reference_hash=obj["reference_hash"], flags=tuple(obj["flags"]),
                         text_hash=obj["text_hash"], repairs=obj["repairs"])
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        return TokenStats.from_arrays(arrays)


class ScoreActor:
    """One :class:`~gpt2guard.detector.scoring.Scorer`, built once; scores batches of documents.

    Parameters
    ----------
    models : list of (family, size, model_hash)
        The scorer and, if any, the reference; a worker whose weights differ from the
        driver's refuses to work.
    device : str
    threads : int or None
        Torch threads (CPU actors).
    kwargs : dict
        The Scorer's settings (batch_tokens, chunk_elements, bf16, max_tokens, linear, cache).
    """

    def __init__(self, models: list, device: str, threads: int | None, kwargs: dict):
        from gpt2guard.detector.cache import StatsCache
        from gpt2guard.family import load_model

        loaded = []
        for family, size, model_hash in models:
            m = load_model(family, size, device=device)
            if m.model_hash != model_hash:
                raise GuardError(f"a Ray worker's {family} {size} has weights {m.model_hash[:12]}, the driver's "
                                 f"{model_hash[:12]}: give every node the same weights")
            loaded.append(m)
        if threads and loaded[0].model.device.type == "cpu":
            import torch

            torch.set_num_threads(threads)
        kwargs = dict(kwargs)
        cache = kwargs.pop("cache")
        self.scorer = Scorer(loaded[0], loaded[1] if len(loaded) > 1 else None,
                             cache=StatsCache(cache) if cache else False, progress=False, **kwargs)

    def __call__(self, batch: dict) -> dict:
        texts = [bytes(d) if b else str(t) for t, d, b in zip(batch["text"], batch["data"], batch["is_bytes"])]
        sums = bool(batch["sums"][0])
        records = self.scorer.score_sums(texts) if sums else self.scorer.score(texts)
        return {"pos": batch["pos"], "record": np.array([_pack(r) for r in records], dtype=object)}


class RayScorer(Scorer):
    """A :class:`~gpt2guard.detector.scoring.Scorer` that scores on Ray Data actors.

    Parameters
    ----------
    scorer, reference : LoadedModel
        Loaded here too (for hashes and settings); each actor loads its own copy by family
        and size and checks it has the same weights.
    engine : Engine
        A Ray engine (:class:`~gpt2guard.engine.Engine`).
    **kwargs
        The Scorer's parameters; ``cache`` is the actors' (a directory every node reaches
        shares its entries).
    """

    def __init__(self, scorer, reference=None, *, engine, **kwargs):
        super().__init__(scorer, reference, **kwargs)
        self.engine = engine

    def _remote(self, texts, sums: bool) -> list:
        from gpt2guard.engine.ray_session import actor_threads, cluster_workers, ray_failure, ray_session
        from gpt2guard.progress import progress_bar

        texts = list(texts)
        if not texts:
            return []
        with ray_session(self.engine) as ray:
            batches = -(-len(texts) // DOCS_PER_BATCH)
            workers = min(cluster_workers(self.engine), batches)
            device = "cuda" if self.engine.gpus_per_worker > 0 else "cpu"
            models = [(m.family, m.size, m.model_hash) for m in [self.scorer] + [self.reference] if m is not None]
            kwargs = {"batch_tokens": self.batch_tokens, "chunk_elements": self.chunk_elements, "bf16": self.bf16,
                      "max_tokens": self.max_tokens, "linear": "auto" if device == "cuda" else self.backend,
                      "cache": str(self.cache.root) if self.cache else None}
            rows = [{"pos": i, "text": t if isinstance(t, str) else "", "data": t if isinstance(t, bytes) else b"",
                     "is_bytes": isinstance(t, bytes), "sums": sums} for i, t in enumerate(texts)]
            ds = ray.data.from_items(rows, override_num_blocks=batches)
            ds = ds.map_batches(ScoreActor, batch_size=DOCS_PER_BATCH, batch_format="numpy",
                                compute=ray.data.ActorPoolStrategy(size=workers),
                                fn_constructor_kwargs={"models": models, "device": device,
                                                       "threads": actor_threads(self.engine), "kwargs": kwargs},
                                num_cpus=1, num_gpus=self.engine.gpus_per_worker or None)
            out = [None] * len(texts)
            bar = progress_bar(total=len(texts), desc="scoring", unit="doc", progress=self.progress)
            try:
                for batch in ds.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=1):
                    for pos, data in zip(batch["pos"], batch["record"]):
                        out[int(pos)] = _unpack(data, sums)
                    bar.update(len(batch["pos"]))
            except GuardError:
                raise
            except Exception as exc:  # noqa: BLE001 - Ray's many failure types end as one line
                raise ray_failure(exc) from None
            finally:
                bar.close()
        if any(r is None for r in out):
            raise GuardError("a Ray scoring job returned fewer records than documents; run it again")
        return out

    def score(self, texts):
        """As :meth:`Scorer.score`, on the engine's actors."""
        return self._remote(texts, sums=False)

    def score_sums(self, texts):
        """As :meth:`Scorer.score_sums`, on the engine's actors."""
        return self._remote(texts, sums=True)
