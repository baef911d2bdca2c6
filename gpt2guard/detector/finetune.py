"""A fine-tuned neural classifier: a language model with a sequence-classification head,
trained end to end on human and machine texts (OpenAI's strongest GPT-2 detector was RoBERTa
fine-tuned this way on WebText against GPT-2 samples).

:class:`FinetunedDetector` loads a base model (``FAMILY:SIZE`` of a builtin family such as
``nano:small``, or any Hugging Face causal LM or encoder, as a local directory or hub id)
through transformers' ``AutoModelForSequenceClassification``: for a GPT-2 base the head reads
the hidden state of the last token that is not padding, for an encoder its first (``<s>`` /
``[CLS]``) token. It trains every weight with AdamW, a linear warm-up over the first
``warmup`` fraction of the steps then linear decay to zero, and stops early when the loss on
a validation split has not improved for ``patience`` epochs (the weights of the best epoch
are kept).

Long documents are **cut to the base's context**: the classifier reads the first
``max_length`` tokens (the base's context window unless smaller is asked), in training and in
scoring alike, and a cut document's verdict carries the ``truncated`` flag. Its ``n_tokens``
counts the whole document, so ``min_tokens`` abstains exactly as for the other kinds.

Texts pass through :func:`~gpt2guard.detector.hygiene.prepare_text` first, as for every
other detector; empty and binary documents are unscorable (NaN score, ``abstain``).

The score is the classifier's log-odds of machine (logit of "machine" minus logit of "human");
the probability is its logistic, or the fitted probability calibration. Seeds: the head's
initial weights, dropout, the validation split and the order of the batches all come from
``random_state``.

Saved as a directory, never as a pickle:

``detector.json``
    kind ``finetune``, base (name, family, size, weights hash), context, training parameters
    and history (loss per epoch, best epoch, seconds), training-data digest, threshold,
    calibration, ``min_tokens``, the fine-tuned weights' hash.
``model/``
    the fine-tuned model as transformers writes it with ``safe_serialization``
    (``config.json``, ``model.safetensors``) and the tokenizer's JSON and text files.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np

from gpt2guard.detector.text_estimator import LABELS, TextDetector, as_texts, data_digest, json_class_weight
from gpt2guard.detector.verdict import DEFAULT_MIN_TOKENS, Verdict, decide
from gpt2guard.errors import GuardError

KIND = "finetune"
DEFAULT_BASE = "nano"
MODEL_DIR = "model"
# parameters saved under "estimator" in detector.json (and given back to __init__ on load)
TRAINING_PARAMS = ("epochs", "lr", "batch_size", "warmup", "weight_decay", "patience", "validation_fraction",
                   "max_length", "random_state")


def parse_base(base: str) -> tuple[str, str | None]:
    """``(family, size)`` of a base model: ``FAMILY:SIZE``, a family name (its smallest size,
    returned as None), a local model directory or a Hugging Face id.

    Raises
    ------
    GuardError
        One line naming the base when no family or size of that name exists.
    """
    from gpt2guard.family import get_family

    text = str(base).strip()
    if not text:
        raise GuardError("the base model is empty: give FAMILY:SIZE (nano:small), a model directory or an owner/name id")
    try:
        return get_family(text).name, None
    except GuardError as whole:
        if ":" not in text:
            raise GuardError(f"base model {text!r} cannot be loaded: {whole}") from None
    family, size = text.rsplit(":", 1)
    try:
        spec = get_family(family)
        return spec.name, spec.size(size).name
    except GuardError as exc:
        raise GuardError(f"base model {text!r} cannot be loaded: {exc}") from None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _load_pretrained(path, what: str):
    """Tokenizer (with a pad token) and sequence-classification model from a directory."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from gpt2guard.family.load import quiet_transformers

    quiet_transformers()
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2, use_safetensors=True)
    except (OSError, ValueError, KeyError, RuntimeError, TypeError, AttributeError) as exc:
        raise GuardError(f"{what} cannot be loaded as a sequence classifier: {_first_line(exc)}") from None
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise GuardError(f"{what} has a tokenizer with neither a padding nor an end-of-text token")
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    return tokenizer, model


def context_length(model, tokenizer) -> int:
    """Tokens the model reads at once: its position table, or the tokenizer's stated limit when
    smaller (encoders such as RoBERTa keep two positions aside)."""
    cfg = model.config
    n = getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", None) or 512
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < n:
        n = limit
    return int(n)


class FinetunedDetector(TextDetector):
    """A language model with a sequence-classification head, fine-tuned end to end on texts;
    a scikit-learn classifier on texts (``clone``, ``cross_val_score``).

    Parameters
    ----------
    base : str
        The base model: ``FAMILY:SIZE`` (``nano:small``), a builtin family name (its smallest
        size), a local Hugging Face model directory or a hub id (causal LM or encoder, with
        safetensors weights). Default ``nano`` (``nano:small``).
    epochs : int
        Most passes over the training documents.
    lr : float
        Peak learning rate of AdamW (reached after the warm-up). The default suits the small
        builtin families; a pretrained encoder such as RoBERTa wants about ``2e-5``.
    batch_size : int
        Documents per optimisation step.
    warmup : float
        Fraction of the steps over which the learning rate rises linearly from 0; it then
        decays linearly to 0 at the last step.
    weight_decay : float
        AdamW's decoupled weight decay.
    patience : int
        Stop when the validation loss has not improved for this many epochs; the best
        epoch's weights are kept.
    validation_fraction : float
        Without an explicit ``validation`` set in :meth:`fit`, this fraction of the training
        documents (stratified, seeded) is held out for early stopping; 0 trains every epoch
        on everything.
    max_length : int, optional
        Read at most this many tokens of a document (default and maximum: the base's context).
    class_weight : dict, "balanced" or None
        Weight of each class in the training loss, multiplied into ``sample_weight``.
    min_tokens : int
        Documents with fewer tokens get an ``abstain`` verdict.
    threshold : float, optional
        Threshold on the log-odds (default 0); :meth:`calibrate` sets it for a false-positive rate.
    random_state : int
        Seeds the head's initial weights, dropout, the validation split and the batch order.
    device : str, optional
        ``cpu``, ``cuda``...; default CUDA when present.
    progress : bool
        Draw a progress bar over the training steps (on a terminal only).

    Attributes
    ----------
    classes_ : ndarray
        ``["human", "machine"]`` or ``[0, 1]``, as the training labels were given.
    model_, tokenizer_ :
        The fine-tuned transformers model (eval mode) and its tokenizer.
    max_length_ : int
        Tokens read per document.
    model_hash_ : str
        SHA-256 of the saved fine-tuned weights (set by :meth:`save` and on loading).
    history_ : dict
        ``train_loss`` and ``valid_loss`` per epoch, ``best_epoch``, ``epochs_run``, ``seconds``.
    """

    kind = KIND

    def __init__(self, base: str = DEFAULT_BASE, *, epochs: int = 4, lr: float = 1e-3, batch_size: int = 16,
                 warmup: float = 0.1, weight_decay: float = 0.01, patience: int = 1, validation_fraction: float = 0.1,
                 max_length: int | None = None, class_weight=None, min_tokens: int = DEFAULT_MIN_TOKENS,
                 threshold: float | None = None, random_state: int = 0, device: str | None = None,
                 progress: bool = False):
        self.base = base
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.warmup = warmup
        self.weight_decay = weight_decay
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.max_length = max_length
        self.class_weight = class_weight
        self.min_tokens = min_tokens
        self.threshold = threshold
        self.random_state = random_state
        self.device = device
        self.progress = progress

    # --- inputs -----------------------------------------------------------------------------

    def _check_params(self) -> None:
        checks = [("epochs", int(self.epochs) >= 1), ("batch_size", int(self.batch_size) >= 1),
                  ("patience", int(self.patience) >= 1), ("lr", math.isfinite(self.lr) and self.lr > 0),
                  ("warmup", 0 <= self.warmup < 1), ("weight_decay", math.isfinite(self.weight_decay)
                                                     and self.weight_decay >= 0),
                  ("validation_fraction", 0 <= self.validation_fraction < 1),
                  ("max_length", self.max_length is None or int(self.max_length) >= 2)]
        bad = [name for name, ok in checks if not ok]
        if bad:
            raise GuardError(f"{bad[0]}={getattr(self, bad[0])!r} is out of range for a fine-tuned detector")

    def _encode(self, texts) -> list[dict]:
        """Per text: cleaned ``ids`` (cut to :attr:`max_length_` with the base's special tokens),
        full token count, hygiene flags (``truncated`` added when cut) and repairs."""
        from gpt2guard.detector.hygiene import clean_text, is_scorable

        tok = self.tokenizer_
        special = tok.num_special_tokens_to_add()
        room = self.max_length_ - special
        out = []
        for t in texts:
            c = clean_text(t)
            flags = set(c.flags)
            ids, n = [], 0
            if is_scorable(c.flags):
                full = tok(c.text, add_special_tokens=False)["input_ids"]
                n = len(full)
                if n > room:
                    flags.add("truncated")
                if not n:
                    ids = []
                elif special:  # an encoder's <s>/[CLS] and </s>/[SEP] around the first tokens
                    ids = tok(c.text, truncation=True, max_length=self.max_length_)["input_ids"]
                else:
                    ids = full[:room]
            out.append({"ids": ids, "n_tokens": n, "flags": tuple(sorted(flags)), "repairs": c.counts,
                        "scorable": bool(n) and is_scorable(c.flags)})
        return out

    def _batch(self, rows: list[list[int]]):
        """Right-padded ``input_ids`` and ``attention_mask`` tensors of token-id lists."""
        import torch

        width = max(len(r) for r in rows)
        pad = self.tokenizer_.pad_token_id
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.tensor(r, dtype=torch.long)
            mask[i, :len(r)] = 1
        return ids.to(self.device_), mask.to(self.device_)

    def _logits(self, rows: list[list[int]]) -> np.ndarray:
        """Log-odds of machine of token-id lists, in length-sorted batches (the model in eval mode)."""
        import torch

        z = np.zeros(len(rows))
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        step = max(1, int(self.batch_size))
        self.model_.eval()
        with torch.inference_mode():
            for k in range(0, len(order), step):
                idx = order[k:k + step]
                ids, mask = self._batch([rows[i] for i in idx])
                logits = self.model_(input_ids=ids, attention_mask=mask).logits.double()
                z[idx] = (logits[:, 1] - logits[:, 0]).cpu().numpy()
        return z

    # --- training ---------------------------------------------------------------------------

    def _load_base(self) -> None:
        from gpt2guard.family import get_family
        from gpt2guard.family.load import pick_device, set_threads, weights_hash
        from gpt2guard.family.resolve import resolve_size

        family, size = parse_base(self.base)
        spec = get_family(family)
        size = size or spec.sizes[0].name
        name = family if spec.kind == "single" else f"{family}:{size}"
        try:
            if spec.kind == "builtin":
                from gpt2guard.family.build import build_family

                build_family(spec.name)
            path = resolve_size(spec, size)
        except GuardError as exc:
            raise GuardError(f"base model {name!r} cannot be loaded: {exc}") from None
        self.device_ = pick_device(self.device)
        if self.device_ == "cpu":
            set_threads()
        self.tokenizer_, self.model_ = _load_pretrained(path, f"base model {name!r}")
        self.model_.to(self.device_)
        self.base_info_ = {"name": name, "family": family, "size": size if spec.kind != "single" else None,
                           "weights": weights_hash(path)}
        self.max_length_ = min(context_length(self.model_, self.tokenizer_), int(self.max_length or 10 ** 9))
        if self.max_length_ - self.tokenizer_.num_special_tokens_to_add() < 1:
            raise GuardError(f"max_length {self.max_length} leaves no room for text in base model {name!r}")

    def fit(self, X, y, sample_weight=None, *, validation=None) -> "FinetunedDetector":
        """Fine-tune the base model on texts ``X`` and labels ``y`` (``"human"``/``"machine"``
        or 0/1), each document weighted by ``sample_weight`` times ``class_weight``.

        Parameters
        ----------
        validation : (sequence of str, sequence of labels), optional
            Documents for early stopping; default a ``validation_fraction`` hold-out of ``X``.

        Unscorable documents (empty, binary) are left out of training.
        """
        import torch
        from transformers import get_linear_schedule_with_warmup

        from gpt2guard.detector.text_estimator import label_array
        from gpt2guard.progress import progress_bar

        self._check_params()
        texts, y01, w = self._fit_inputs(X, y, sample_weight)
        w = np.ones(len(texts)) if w is None else w
        seed = int(self.random_state or 0)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self._load_base()
            enc = self._encode(texts)
            keep = np.array([e["scorable"] for e in enc], dtype=bool)
            if len(set(y01[keep].tolist())) < 2:
                raise GuardError("training needs scorable human and machine documents")
            rows = [e["ids"] for e, k in zip(enc, keep) if k]
            yk, wk = y01[keep], w[keep]
            if validation is not None:
                v_texts = as_texts(validation[0])
                v_y = label_array(list(validation[1]))
                if len(v_texts) != len(v_y):
                    raise GuardError(f"{len(v_texts)} validation texts but {len(v_y)} labels")
                v_enc = self._encode(v_texts)
                v_rows = [e["ids"] for e in v_enc if e["scorable"]]
                v_y = v_y[[e["scorable"] for e in v_enc]] if len(v_y) else v_y
                train_idx = np.arange(len(rows))
            else:
                train_idx, v_idx = self._holdout(yk, seed)
                v_rows, v_y = [rows[i] for i in v_idx], yk[v_idx]
            history = self._train(rows, yk, wk, train_idx, v_rows, v_y, seed, torch, get_linear_schedule_with_warmup,
                                  progress_bar)
        self.history_ = history
        self.meta = {"train_digest": data_digest(texts, y01.tolist()), "n_train": int(len(train_idx)),
                     "n_train_machine": int(yk[train_idx].sum()), "n_valid": int(len(v_rows)),
                     "seconds_per_1000_docs": round(1000 * history["seconds"] / max(1, len(train_idx)), 3)}
        return self

    def _holdout(self, y: np.ndarray, seed: int):
        """Training and validation indices: a stratified, seeded ``validation_fraction`` hold-out
        when each class has at least two documents to give, else everything for training."""
        idx = np.arange(len(y))
        frac = float(self.validation_fraction)
        n_val = int(round(frac * len(y)))
        if frac <= 0 or n_val < 2 or np.bincount(y, minlength=2).min() < 2 or len(y) - n_val < 2:
            return idx, np.zeros(0, dtype=int)
        from sklearn.model_selection import train_test_split

        tr, va = train_test_split(idx, test_size=n_val, stratify=y, random_state=seed)
        return np.sort(tr), np.sort(va)

    def _train(self, rows, y, w, train_idx, v_rows, v_y, seed, torch, schedule, progress_bar) -> dict:
        """The training loop: AdamW, linear warm-up and decay, early stopping on the validation loss."""
        import copy

        model = self.model_
        bs = int(self.batch_size)
        steps_per_epoch = math.ceil(len(train_idx) / bs)
        total = steps_per_epoch * int(self.epochs)
        decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
        no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": float(self.weight_decay)},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=float(self.lr))
        sched = schedule(opt, int(round(float(self.warmup) * total)), total)
        rng = np.random.default_rng(seed)
        yt = torch.tensor(y, dtype=torch.long, device=self.device_)
        wt = torch.tensor(w, dtype=torch.float32, device=self.device_)
        history = {"train_loss": [], "valid_loss": [], "best_epoch": None, "epochs_run": 0}
        best, best_state, waited = math.inf, None, 0
        start = time.perf_counter()
        bar = progress_bar(total=total, progress=self.progress, desc="fine-tuning", unit="step")
        try:
            for epoch in range(int(self.epochs)):
                model.train()
                order = rng.permutation(train_idx)
                seen, summed = 0.0, 0.0
                for k in range(0, len(order), bs):
                    idx = order[k:k + bs]
                    ids, mask = self._batch([rows[i] for i in idx])
                    logits = model(input_ids=ids, attention_mask=mask).logits
                    per_doc = torch.nn.functional.cross_entropy(logits.float(), yt[idx], reduction="none")
                    loss = (per_doc * wt[idx]).sum() / wt[idx].sum().clamp_min(1e-12)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                    opt.step()
                    sched.step()
                    summed += float(per_doc.detach().sum())
                    seen += len(idx)
                    bar.update(1)
                history["train_loss"].append(summed / max(seen, 1))
                history["epochs_run"] = epoch + 1
                if not len(v_rows):
                    continue
                v_loss = self._log_loss(v_rows, v_y)
                history["valid_loss"].append(v_loss)
                if v_loss < best - 1e-6:
                    best, waited, history["best_epoch"] = v_loss, 0, epoch + 1
                    best_state = copy.deepcopy(model.state_dict())
                else:
                    waited += 1
                    if waited >= int(self.patience):
                        break
        finally:
            bar.close()
        if best_state is not None:
            model.load_state_dict(best_state)
        model.eval()
        history["seconds"] = time.perf_counter() - start
        return history

    def _log_loss(self, rows, y) -> float:
        z = self._logits(rows)
        # -log sigmoid(+-z), stable for large |z|
        signed = np.where(np.asarray(y) == 1, z, -z)
        return float(np.mean(np.logaddexp(0.0, -signed)))

    # --- prediction -------------------------------------------------------------------------

    def _fitted(self) -> None:
        if getattr(self, "model_", None) is None:
            raise GuardError("this FinetunedDetector is not fitted: call fit(texts, labels) first")

    def _scores(self, texts) -> tuple[np.ndarray, list[dict]]:
        self._fitted()
        enc = self._encode(texts)
        ok = [i for i, e in enumerate(enc) if e["scorable"]]
        z = np.full(len(enc), math.nan)
        if ok:
            z[ok] = self._logits([enc[i]["ids"] for i in ok])
        return z, enc

    def decision_function(self, X) -> np.ndarray:
        """Log-odds of machine per text; NaN for unscorable input (the verdicts' score)."""
        return self._scores(as_texts(X))[0]

    decision_texts = decision_function

    def predict_proba_texts(self, texts) -> np.ndarray:
        """Machine probability per text; NaN for unscorable input (empty, binary)."""
        z = self.decision_function(texts)
        return 1.0 / (1.0 + np.exp(-np.clip(z, -700, 700)))

    def verdicts(self, texts, names=None) -> list[Verdict]:
        """Machine / human / abstain per text (see :func:`~gpt2guard.detector.verdict.decide`)."""
        from gpt2guard.detector.calibrate import apply_probability_calibration

        texts = list(texts)
        z, enc = self._scores(texts)
        shown = apply_probability_calibration(self.meta, z)
        threshold = 0.0 if self.threshold is None else self.threshold
        q_threshold = float(apply_probability_calibration(self.meta, [threshold])[0])
        names = names or [None] * len(texts)
        return [decide(i, names[i], float(p), float(q), threshold, e["n_tokens"], int(e["scorable"]), e["flags"],
                       int(self.min_tokens), method=KIND, scorer=self.base_info_["name"],
                       probability_threshold=q_threshold, repairs=e["repairs"])
                for i, (p, q, e) in enumerate(zip(z, shown, enc))]

    # --- storage ----------------------------------------------------------------------------

    def describe(self) -> dict:
        """The ``detector.json`` content (without the saved weights' hash, added by :meth:`save`)."""
        from gpt2guard.detector.trained import FORMAT_VERSION

        self._fitted()
        return {"format": FORMAT_VERSION, "kind": KIND, "base": dict(self.base_info_), "max_length": self.max_length_,
                "estimator": {k: getattr(self, k) for k in TRAINING_PARAMS}, "history": self.history_,
                "labels": list(LABELS), "label_classes": np.asarray(self.classes_).tolist(),
                "class_weight": json_class_weight(self.class_weight), "threshold": self.threshold,
                "min_tokens": int(self.min_tokens), **self.meta}

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``detector.json`` and ``model/`` (safetensors weights, config, tokenizer files)."""
        from gpt2guard.family.load import weights_hash
        from gpt2guard.paths import write_json

        meta = self.describe()
        directory = Path(directory)
        target = directory / MODEL_DIR
        target.mkdir(parents=True, exist_ok=True)
        self.model_.save_pretrained(target, safe_serialization=True)
        self.tokenizer_.save_pretrained(target)
        meta["model_hash"] = self.model_hash_ = weights_hash(target)
        write_json(directory / "detector.json", meta)
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike, meta: dict, *, device: str | None = None,
             scorer_kwargs: dict | None = None) -> "FinetunedDetector":
        """Rebuild a saved detector from ``directory`` and its ``detector.json`` content ``meta``
        (checked first); ``scorer_kwargs``' ``progress`` is kept, the rest concerns scorers."""
        from gpt2guard.family.load import pick_device, set_threads, weights_hash
        from gpt2guard.family.resolve import check_weights

        path = Path(directory) / "detector.json"
        check_saved(meta, path)
        est = dict(meta["estimator"])
        try:
            det = cls(meta["base"]["name"], **{k: est[k] for k in TRAINING_PARAMS if k in est},
                      class_weight=meta.get("class_weight"), min_tokens=meta.get("min_tokens", DEFAULT_MIN_TOKENS),
                      threshold=meta.get("threshold"), device=device,
                      progress=bool((scorer_kwargs or {}).get("progress", False)))
        except TypeError as exc:
            raise GuardError(f"{path} is damaged: {exc}") from None
        target = check_weights(Path(directory) / MODEL_DIR)
        if weights_hash(target) != meta["model_hash"]:
            raise GuardError(f"{target} holds other weights than {path} names (hash differs): the detector is damaged "
                             "or was changed; retrain it")
        det.device_ = pick_device(device)
        if det.device_ == "cpu":
            set_threads()
        det.tokenizer_, det.model_ = _load_pretrained(target, f"saved detector {directory}")
        det.model_.to(det.device_).eval()
        det.base_info_ = dict(meta["base"])
        det.max_length_ = int(meta["max_length"])
        det.model_hash_ = meta["model_hash"]
        det.history_ = meta.get("history") or {}
        det.classes_ = np.array(meta.get("label_classes") or LABELS)
        det.meta = {k: v for k, v in meta.items() if k not in det.describe() and k != "model_hash"}
        return det


def check_saved(meta: dict, path) -> None:
    """Refuse a finetune ``detector.json`` whose fields are missing or of the wrong type."""
    def bad(what):
        return GuardError(f"{path} is damaged: {what}; retrain the detector (`gpt2guard detector train`)")

    base = meta.get("base")
    if not isinstance(base, dict) or not isinstance(base.get("name"), str):
        raise bad("'base' must be an object with a 'name'")
    n = meta.get("max_length")
    if not isinstance(n, int) or isinstance(n, bool) or n < 2:
        raise bad("'max_length' must be an integer of at least 2")
    if not isinstance(meta.get("estimator"), dict):
        raise bad("'estimator' must be an object")
    if not isinstance(meta.get("model_hash"), str):
        raise bad("no 'model_hash' of the fine-tuned weights")
    t = meta.get("threshold")
    if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t)):
        raise bad(f"threshold {t!r} is not a finite number")
    m = meta.get("min_tokens", DEFAULT_MIN_TOKENS)
    if not isinstance(m, int) or isinstance(m, bool):
        raise bad("'min_tokens' must be an integer")
