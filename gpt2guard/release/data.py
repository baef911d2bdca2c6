"""The documents a release simulation measures: generated samples and length-matched human text.

Samples are ordinary generator sets (``<family>-<size>[-<method>]``, splits ``train`` and
``test``) under ``<run>/samples``, written by :func:`~gpt2guard.generator.run.run_generation`
and so resumable and regenerable from provenance. The test split uses the next job seed, so
no test document shares a seed with a training one.

Human documents come from the builtin corpus the family was trained on, only from the splits
it was *not* trained on, split by source module so no source feeds two uses: a third of the
``valid`` split's sources train detectors, the other two thirds calibrate thresholds, and
the ``test`` split is for testing and perplexity. Each is a piece that starts at a paragraph and is cut, at a token
boundary, to a length drawn from the generated documents' lengths, so the two classes have
the same length distribution and a detector cannot learn length. The lengths are those of
the plan's smallest size's training samples, so every stage and scenario shares one human set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gpt2guard.errors import GuardError

HUMAN_USES = ("train", "calibration", "test")
TRAIN_SHARE = 3  # one in TRAIN_SHARE of the valid split's sources trains detectors; the rest calibrate
MACHINE_SPLITS = ("train", "test")


def sampling_key(spec: str) -> str:
    """The canonical name of a sampling method, as written in sample provenance."""
    from gpt2guard.generator.sampling import parse_sampling

    return parse_sampling(spec)[0].spec or "pure"


def reference_size(plan) -> str:
    """The size whose sample lengths the human documents match: the plan's smallest, so
    every stage and scenario of a run shares one human set."""
    from gpt2guard.family import get_family

    order = [s.name for s in get_family(plan.family).sizes]
    return min(plan.sizes, key=order.index)


def generate_samples(out: Path, plan, sizes: list[str], progress: bool = False, log=None, engine=None) -> None:
    """Generate (or finish) the train and test sample sets of ``sizes`` on ``engine``
    (:class:`~gpt2guard.engine.Engine`; default this process)."""
    from gpt2guard.generator.run import GenerationJob, run_generation

    ev = plan.evaluation
    for split, n, seed in (("train", ev.samples, plan.seed), ("test", ev.test_samples, plan.seed + 1)):
        job = GenerationJob(out=str(out), family=plan.family, sizes=",".join(sizes), sampling=",".join(ev.sampling),
                            n=n, length=ev.length, split=split, seed=seed, batch_size=ev.batch_size)
        run_generation(job, progress=progress, log=log, engine=engine)


def read_samples(out: Path, plan, size: str, split: str) -> dict[str, list[str]]:
    """``{sampling method: [text, ...]}`` of one size's generated split."""
    from gpt2guard.datasets.sets import open_set
    from gpt2guard.family import get_family
    from gpt2guard.generator.run import gen_set_name
    from gpt2guard.generator.sampling import parse_sampling

    spec = get_family(plan.family)
    out_by = {}
    for cfg in parse_sampling(",".join(plan.evaluation.sampling)):
        name = gen_set_name(spec, size, cfg)
        out_by[cfg.spec or "pure"] = [r.text for r in open_set(out, name, split)]
    return out_by


def _paragraph_starts(text: str) -> list[int]:
    starts, i = [0], text.find("\n\n")
    while i != -1:
        j = i
        while j < len(text) and text[j] == "\n":
            j += 1
        if j < len(text):
            starts.append(j)
        i = text.find("\n\n", j)
    return starts


def cut_pieces(texts: list[str], lengths: list[int], tokenizer) -> list[str]:
    """Pieces of ``texts`` with the given token ``lengths``, in order.

    Each piece starts at a paragraph and holds exactly its length in tokens (the cut falls on
    a token boundary); the next piece of the same text starts at the first paragraph after
    it. Texts run out before lengths do: then fewer pieces come back.
    """
    pieces, k = [], 0
    enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    for text, offsets in zip(texts, enc):
        starts = sorted(set(_paragraph_starts(text)))
        tok_start = [next((t for t, (a, _) in enumerate(offsets) if a >= s), None) for s in starts]
        pos = 0
        for s, t in zip(starts, tok_start):
            if k >= len(lengths):
                return pieces
            if t is None or s < pos or t + lengths[k] > len(offsets):
                continue
            end = offsets[t + lengths[k] - 1][1]
            piece = text[s:end].strip()
            if piece:
                pieces.append(piece)
                k += 1
                pos = end
    return pieces


def human_use(source: str) -> str:
    """``train`` or ``calibration``: which use a source of the valid split serves (a hash)."""
    from gpt2guard.paths import sha256_text

    return "train" if int(sha256_text(source)[:8], 16) % TRAIN_SHARE == 0 else "calibration"


def corpus_splits(plan) -> dict[str, list[str]]:
    """The texts of the family's held-out corpus by use: ``train``, ``calibration`` (the
    ``valid`` split, divided by source) and ``test``."""
    from gpt2guard.datasets.builtin import DEFAULT_PACKAGES, builtin_corpus
    from gpt2guard.family import get_family

    recipe = get_family(plan.family).recipe
    packages = recipe.packages if recipe is not None else DEFAULT_PACKAGES
    out: dict[str, list[str]] = {}
    for doc in builtin_corpus(packages=packages):
        if doc.split == "valid":
            out.setdefault(human_use(doc.source), []).append(doc.text)
        elif doc.split == "test":
            out.setdefault("test", []).append(doc.text)
    return out


def human_docs(docs: list[str], split: str, n: int, target_lengths, tokenizer, seed: int) -> list[str]:
    """``n`` length-matched human documents from a corpus split's texts (see the module)."""
    rng = np.random.default_rng([seed, HUMAN_USES.index(split)])
    order = rng.permutation(len(docs))
    target = [int(x) for x in rng.choice(np.asarray(target_lengths), size=n)]
    pieces = cut_pieces([docs[i] for i in order], target, tokenizer)
    if len(pieces) < n:
        raise GuardError(f"the builtin corpus's held-out text for {split} gives only {len(pieces)} human documents "
                         f"of the generated lengths; lower evaluation.human_{split} to at most {len(pieces)}")
    return pieces


@dataclass
class RunData:
    """Every document of a run, read once, and their token statistics by scorer size.

    Scoring goes through the detector's on-disk cache, and results are also kept in memory
    here, so each (scorer, document) pair is scored once per process across all stages and
    scenarios.
    """

    out: Path
    plan: object
    progress: bool = False
    engine: object = None  # where generation and scoring run (gpt2guard.engine.Engine; None: here)
    machine: dict = field(default_factory=dict)  # (size, split) -> {sampling: [text]}
    human: dict = field(default_factory=dict)  # split -> [text]
    _stats: dict = field(default_factory=dict)  # (size, text) -> TokenStats
    _scorers: dict = field(default_factory=dict)
    _corpus: dict | None = None

    def samples(self, size: str, split: str) -> dict[str, list[str]]:
        if (size, split) not in self.machine:
            self.machine[(size, split)] = read_samples(self.out / "samples", self.plan, size, split)
        return self.machine[(size, split)]

    def set_name(self, size: str, method: str) -> str:
        """The sample set's name of a size and sampling method (``nano-small-k40``...)."""
        from gpt2guard.family import get_family
        from gpt2guard.generator.run import gen_set_name
        from gpt2guard.generator.sampling import parse_sampling

        return gen_set_name(get_family(self.plan.family), size, parse_sampling(method)[0])

    def human_split(self, split: str) -> list[str]:
        if split not in self.human:
            from gpt2guard.datasets.tokens import count_tokens
            from gpt2guard.family import load_tokenizer

            tok = load_tokenizer(self.plan.family)
            ref = reference_size(self.plan)
            generate_samples(self.out / "samples", self.plan, [ref], progress=self.progress, engine=self.engine)
            texts = [t for by in self.samples(ref, "train").values() for t in by]
            lengths = [n for n in count_tokens(texts, tok) if n > 0]
            n = getattr(self.plan.evaluation, f"human_{split}")
            if self._corpus is None:
                self._corpus = corpus_splits(self.plan)
            docs = self._corpus.get(split, [])
            self.human[split] = human_docs(docs, split, n, lengths, tok, self.plan.seed)
        return self.human[split]

    def scorer(self, size: str):
        if size not in self._scorers:
            from gpt2guard.engine import make_scorer
            from gpt2guard.family import load_model

            self._scorers[size] = make_scorer(load_model(self.plan.family, size), progress=self.progress,
                                              engine=self.engine)
        return self._scorers[size]

    def stats(self, size: str, texts: list[str]) -> list:
        """TokenStats of ``texts`` under scorer ``size``, in order."""
        todo = list(dict.fromkeys(t for t in texts if (size, t) not in self._stats))
        if todo:
            for t, s in zip(todo, self.scorer(size).score(todo)):
                self._stats[(size, t)] = s
        return [self._stats[(size, t)] for t in texts]
