"""Detectors against attacks: the post-hoc detector on attacked machine text, and a stage's API
watermark on its watermarked texts, clean and attacked.

An attack (:func:`gpt2guard.attacks.attack`) rewrites a document at a rate, deterministically in
its seed; here each document's seed is a hash of the plan's seed, the attack and the document
(:func:`attack_seed`), so a text is attacked the same way in every stage and scenario.

* **Post-hoc robustness** (:func:`robustness_cells`): the publishable detector scores each
  attacked machine test text; its TPR is taken at the threshold calibrated on *clean* human
  calibration text (an attacker rewrites machine text, the threshold stays the lab's), with
  the bootstrap interval of :func:`~gpt2guard.release.evidence.calibrated_tpr`.
* **Watermark** (:func:`watermark_evidence`): the stage's API texts are the stage's test
  samples generated again with the watermark on (same seeds, under ``OUT/watermarked/<tag>``,
  ``tag`` a digest of the key's digest and parameters); the share detected at the stage's z
  threshold, clean and under each attack, with a bootstrap interval over documents, and the
  share of clean human test text wrongly detected (the empirical false-positive rate).
"""

from __future__ import annotations

import numpy as np

from gpt2guard.release.plan import CLEAN

WATERMARKED = "watermarked"
"""The directory of a run that holds watermarked API samples, one subdirectory per watermark."""


def attack_seed(seed: int, attack: str, text: str) -> int:
    """The seed of ``attack`` on ``text``: the first 8 bytes of SHA-256 over the plan's seed,
    the attack's key and the text's digest, shifted right one bit (a seed in [0, 2**63))."""
    import hashlib

    from gpt2guard.paths import sha256_text

    digest = hashlib.sha256(f"{seed}:{attack}:{sha256_text(text)}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def attack_texts(texts: list[str], key: str, seed: int) -> list:
    """Every text attacked by ``key`` (``homoglyph=1``: a gate's
    :meth:`~gpt2guard.release.plan.GateSpec.attack_keys`): a list of :class:`gpt2guard.attacks.Attacked`."""
    from gpt2guard.attacks import attack, parse_attacks

    (spec,) = parse_attacks(key)
    return [attack(t, spec.name, spec.rate, attack_seed(seed, key, t)) for t in texts]


def _quantiles(values) -> list | None:
    from gpt2guard.release.evidence import _quantiles as q

    return q(values)


def share_cell(hits, n_boot: int, seed: int) -> dict:
    """The share of true ``hits`` and its bootstrap interval over documents."""
    hits = np.asarray(hits, dtype=bool)
    if not len(hits):
        return {"tpr": None, "tpr_ci": None, "n": 0}
    rng = np.random.default_rng(seed)
    boots = [float(hits[rng.integers(0, len(hits), len(hits))].mean()) for _ in range(n_boot)]
    return {"tpr": float(hits.mean()), "tpr_ci": _quantiles(boots) if n_boot else None, "n": int(len(hits))}


def _changed(attacked: list) -> dict:
    return {"n_changed": int(sum(a.n_changed > 0 for a in attacked)), "changes": int(sum(a.n_changed for a in attacked))}


def robustness_cells(world, trained_on: tuple, size: str, attacks: list[str]) -> dict:
    """``{sampling method: {"clean" | attack: cell}}`` of the detector trained on ``trained_on``
    on ``size``'s test samples; ``cell``: ``tpr``, ``tpr_ci``, ``n``, ``n_abstain``,
    ``n_changed`` (documents the attack changed) and ``changes`` (places changed)."""
    from gpt2guard.release.evidence import calibrated_tpr

    ev, seed = world.plan.evaluation, world.plan.seed
    sd = world.detector(trained_on)
    clean = world.scores(trained_on, size)
    out = {}
    for method, texts in world.data.samples(size, "test").items():
        by = {}
        for key in [CLEAN] + list(attacks):
            if key == CLEAN:
                scores, changed = clean[method], {"n_changed": 0, "changes": 0}
            else:
                attacked = world.attacked(texts, key)
                scores, changed = sd.scores([a.text for a in attacked]), _changed(attacked)
            tpr, ci = calibrated_tpr(sd.cal_scores, scores, ev.fpr, ev.n_boot, seed)
            by[key] = {"tpr": tpr, "tpr_ci": ci, "n": int(len(scores)), "n_abstain": int(np.isnan(scores).sum()),
                       **changed}
        out[method] = by
    return out


def watermark_config(plan, stage):
    """The stage's :class:`gpt2guard.watermark.WatermarkConfig`, its loaded key and the tag
    of its samples directory."""
    from gpt2guard.paths import sha256_json
    from gpt2guard.release.plan import resolve_file
    from gpt2guard.watermark import WatermarkConfig, load_key

    w = stage.watermark
    path = resolve_file(plan, w.key, stage)
    key = load_key(path)
    cfg = WatermarkConfig(key_path=str(path), gamma=w.gamma, delta=w.delta, scheme=w.scheme)
    tag = sha256_json({"key_sha256": key.digest, "gamma": w.gamma, "delta": w.delta, "scheme": w.scheme})[:16]
    return cfg, key, tag


def watermarked_samples(data, cfg, tag: str, size: str) -> dict[str, list[str]]:
    """``{sampling method: [text]}``: ``size``'s test samples generated with the watermark
    (resumable, under ``OUT/watermarked/<tag>``)."""
    from gpt2guard.generator.run import GenerationJob, run_generation
    from gpt2guard.release.data import read_samples

    plan, ev = data.plan, data.plan.evaluation
    out = data.out / WATERMARKED / tag
    job = GenerationJob(out=str(out), family=plan.family, sizes=size, sampling=",".join(ev.sampling),
                        n=ev.test_samples, length=ev.length, split="test", seed=plan.seed + 1,
                        batch_size=ev.batch_size, watermark=cfg)
    run_generation(job, progress=data.progress)
    return read_samples(out, plan, size, "test")


def _wm_cell(scores, n_boot: int, seed: int) -> dict:
    cell = share_cell([s.detected for s in scores], n_boot, seed)
    z = [s.z for s in scores if s.z is not None and np.isfinite(s.z)]
    cell["z_median"] = float(np.median(z)) if z else None
    cell["n_scored_median"] = float(np.median([s.n_scored for s in scores])) if scores else None
    return cell


def watermark_evidence(world, plan, stage, attacks: list[str]) -> dict:
    """The stage's watermark record: parameters, key digest (never the key), the sample sets,
    false positives on human test text, and ``by_size``: size -> sampling method -> ``clean``
    or attack -> cell (``tpr`` = share detected, ``tpr_ci``, ``n``, ``n_changed``,
    ``z_median``, ``n_scored_median``)."""
    from gpt2guard.family import load_tokenizer
    from gpt2guard.paths import sha256_json
    from gpt2guard.watermark import detect_texts

    w = stage.watermark
    cfg, key, tag = watermark_config(plan, stage)
    ev, seed = plan.evaluation, plan.seed
    tok = load_tokenizer(plan.family)

    def detect(texts):
        return detect_texts(list(texts), key, tok, gamma=w.gamma, scheme=w.scheme, z_threshold=w.z_threshold)

    human = world.data.human_split("test")
    h = detect(human)
    n_fp = int(sum(s.detected for s in h))
    by_size, samples = {}, []
    for size in stage.sizes:
        by_method = {}
        for method, texts in watermarked_samples(world.data, cfg, tag, size).items():
            samples.append({"set": world.data.set_name(size, method), "size": size, "sampling": method,
                            "split": "test", "n": len(texts), "sha256": sha256_json(texts)})
            by = {CLEAN: {**_wm_cell(detect(texts), ev.n_boot, seed), "n_changed": 0, "changes": 0}}
            for k in attacks:
                attacked = world.attacked(texts, k)
                by[k] = {**_wm_cell(detect([a.text for a in attacked]), ev.n_boot, seed), **_changed(attacked)}
            by_method[method] = by
        by_size[size] = by_method
    return {"scheme": w.scheme, "gamma": w.gamma, "delta": w.delta, "z_threshold": w.z_threshold,
            "key_sha256": key.digest, "dir": f"{WATERMARKED}/{tag}",
            "attacks": [CLEAN] + list(attacks), "samples": samples,
            "human": {"n": len(h), "n_detected": n_fp, "fpr": n_fp / len(h) if h else None},
            "by_size": by_size}
