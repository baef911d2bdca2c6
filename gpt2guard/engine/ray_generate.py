"""Generation on Ray Data: plan items flow through ``map_batches`` into a pool of actors,
each loading its model once and making records with the generator's own
:func:`~gpt2guard.generator.run.make_records`; the driver gets them back in plan order.

Records cross the cluster as their JSONL lines (:func:`~gpt2guard.datasets.writer.encode_record`),
never as pickles, and the driver writes them through the set's
:class:`~gpt2guard.datasets.writer.SetWriter` as they arrive: a job killed part way
(driver or worker) leaves what the writer has finished, and a rerun plans and makes only
the records still missing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace

from pathlib import Path

import numpy as np

from gpt2guard.errors import GuardError


class GenerateActor:
    """One model loaded once; makes the records of batches of plan items.

    Parameters
    ----------
    family, size, device : str
        The model to load (:func:`~gpt2guard.family.load_model`).
    model_hash : str
        The driver's model hash: an actor whose copy of the weights differs refuses to work.
    threads : int or None
        Torch threads (CPU actors).
    task : dict
        The set's :class:`~gpt2guard.generator.run.SetTask` as JSON-ready data.
    """

    def __init__(self, family: str, size: str, device: str, model_hash: str, threads: int | None, task: dict):
        from gpt2guard.family import load_model
        from gpt2guard.generator.run import GenerationJob, SetTask
        from gpt2guard.generator.sampling import SamplingConfig

        self.loaded = load_model(family, size, device=device)
        if self.loaded.model_hash != model_hash:
            raise GuardError(f"a Ray worker's {family} {size} has weights {self.loaded.model_hash[:12]}, the driver's "
                             f"{model_hash[:12]}: give every node the same weights")
        if threads and self.loaded.model.device.type == "cpu":
            import torch

            torch.set_num_threads(threads)
        job = GenerationJob(**task["job"])
        if task.get("watermark"):
            job = replace(job, watermark=_worker_watermark(task["watermark"]))
        self.task = SetTask(job, task["name"], SamplingConfig.from_dict(task["cfg"]),
                            task["backend"], task["min_rows"], task["jid"], task["versions"])

    def __call__(self, batch: dict) -> dict:
        from gpt2guard.datasets.records import Record
        from gpt2guard.datasets.writer import encode_record
        from gpt2guard.generator.run import make_records

        items = []
        for raw in batch["item"]:
            it = json.loads(raw)
            prompt = Record.from_dict(it["prompt_record"]) if it["prompt_record"] is not None else None
            items.append((it["index"], it["prompt"], it["limit"], prompt))
        records = make_records(self.loaded, self.task, items)
        return {"line": np.array([encode_record(r).decode("utf-8") for r in records], dtype=object)}


def _worker_watermark(spec: dict):
    """The job's watermark on a worker: the same key file path, which must hold the key the
    driver read (the key itself never crosses the cluster; only its digest does)."""
    from gpt2guard.watermark import WatermarkConfig

    config = WatermarkConfig(spec["key_path"], gamma=spec["gamma"], delta=spec["delta"], scheme=spec["scheme"])
    if config.key().digest != spec["digest"]:
        raise GuardError(f"a Ray worker's watermark key {spec['key_path']} is not the driver's (sha256 "
                         f"{config.key().digest[:12]}, the driver's {spec['digest'][:12]}): give every node the same key file")
    return config


def _item(index: int, prompt: list[int], limit: int, prompt_record) -> str:
    return json.dumps({"index": index, "prompt": list(prompt), "limit": limit,
                       "prompt_record": prompt_record.to_dict() if prompt_record is not None else None})


def ray_records(loaded, task, items: list, engine, chunk: int):
    """Lists of records of ``items`` made on Ray actors, in plan order (a list per batch of
    ``chunk`` items); see :func:`~gpt2guard.generator.run.record_stream`.

    Raises
    ------
    GuardError
        When a worker fails for good (after Ray's restarts and retries), with what a rerun does.
    """
    from gpt2guard.datasets.records import Record
    from gpt2guard.engine.ray_session import actor_threads, cluster_workers, ray_failure, ray_session

    if not items:
        return
    with ray_session(engine) as ray:
        workers = min(cluster_workers(engine), max(1, -(-len(items) // chunk)))
        device = task.job.device or ("cuda" if engine.gpus_per_worker > 0 else "cpu")
        mark = task.job.watermark
        spec = {"job": asdict(replace(task.job, watermark=None)), "name": task.name,
                "watermark": None if mark is None else {"key_path": str(Path(mark.key_path).resolve()), "gamma": mark.gamma,
                                                        "delta": mark.delta, "scheme": mark.scheme,
                                                        "digest": mark.key().digest}, "cfg": task.cfg.to_dict(), "backend": task.backend,
                "min_rows": task.min_rows, "jid": task.jid, "versions": task.versions}
        ds = ray.data.from_items([{"item": _item(*it)} for it in items],
                                 override_num_blocks=max(1, -(-len(items) // chunk)))
        ds = ds.map_batches(GenerateActor, batch_size=chunk, batch_format="numpy",
                            compute=ray.data.ActorPoolStrategy(size=workers),
                            fn_constructor_kwargs={"family": task.job.family, "size": loaded.size, "device": device,
                                                   "model_hash": loaded.model_hash,
                                                   "threads": actor_threads(engine), "task": spec},
                            num_cpus=1, num_gpus=engine.gpus_per_worker or None)
        try:
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=1):
                yield [Record.from_dict(json.loads(line)) for line in batch["line"]]
        except GuardError:
            raise
        except Exception as exc:  # noqa: BLE001 - Ray's many failure types end as one line
            raise ray_failure(exc, "; the records written so far are kept") from None
