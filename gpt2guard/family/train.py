"""Train one size of a builtin family: a GPT2LMHeadModel on a token stream, from scratch."""

from __future__ import annotations

import math
import time

import numpy as np

from gpt2guard.family.spec import BuildRecipe, SizeSpec


def gpt2_config(size: SizeSpec, recipe: BuildRecipe, tokenizer):
    """The GPT2Config of a builtin size: GPT-2's architecture at this size's depth and width."""
    from transformers import GPT2Config

    eot = tokenizer.eos_token_id
    return GPT2Config(vocab_size=len(tokenizer), n_positions=recipe.n_positions, n_embd=size.n_embd,
                      n_layer=size.n_layer, n_head=size.n_head, bos_token_id=eot, eos_token_id=eot,
                      pad_token_id=eot, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)


def evaluate_loss(model, ids: np.ndarray, block: int, max_tokens: int, batch: int = 32) -> float:
    """Mean next-token cross-entropy (nats) over non-overlapping windows of ``ids``."""
    import torch

    n = min(len(ids) - 1, max_tokens) // block
    x = torch.from_numpy(ids[: n * block + 1].astype(np.int64))
    inputs = x[:-1].view(n, block)  # (N, T)
    targets = x[1:].view(n, block)  # (N, T)
    total = 0.0
    model.eval()
    with torch.inference_mode():
        for i in range(0, n, batch):
            logits = model(input_ids=inputs[i:i + batch]).logits  # (B, T, V)
            total += torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets[i:i + batch].flatten(),
                                                       reduction="sum").item()
    model.train()
    return total / (n * block)


def train_size(size: SizeSpec, recipe: BuildRecipe, tokenizer, train_ids: np.ndarray, val_ids: np.ndarray,
               seed: int, progress: bool = True) -> tuple[object, dict]:
    """Train ``size`` from scratch on random windows of ``train_ids``.

    AdamW with linear warm-up then cosine decay to a tenth of the peak rate, gradient
    clipping at 1, weight decay on matrices only. Deterministic given ``seed`` and the
    thread count.

    Returns
    -------
    model : GPT2LMHeadModel
        The trained model, in eval mode.
    stats : dict
        ``train_tokens``, ``steps``, ``train_loss`` (mean of the last 10% of steps),
        ``val_loss``, ``seconds``.
    """
    import torch
    from gpt2guard.progress import progress_bar
    from transformers import GPT2LMHeadModel

    torch.manual_seed(seed)
    model = GPT2LMHeadModel(gpt2_config(size, recipe, tokenizer))
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": recipe.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=size.lr, betas=(0.9, 0.95))
    tokens_per_step = recipe.batch_size * recipe.block_size
    steps = max(1, size.train_tokens // tokens_per_step)
    warmup = max(1, int(recipe.warmup * steps))
    data = torch.from_numpy(train_ids.astype(np.int64))
    gen = torch.Generator().manual_seed(seed)
    offsets = torch.arange(recipe.block_size + 1)
    losses = []
    start = time.perf_counter()
    model.train()
    bar = progress_bar(range(steps), desc=f"{size.name:>6}", unit="step", progress=progress, leave=True)
    for step in bar:
        # learning rate: linear warm-up, then cosine down to 10% of the peak
        frac = (step - warmup) / max(1, steps - warmup)
        lr = size.lr * (step + 1) / warmup if step < warmup else size.lr * (0.1 + 0.45 * (1 + math.cos(math.pi * frac)))
        for group in opt.param_groups:
            group["lr"] = lr
        # a batch of random windows, each with its next-token targets
        starts = torch.randint(0, len(data) - recipe.block_size - 1, (recipe.batch_size,), generator=gen)
        window = data[starts[:, None] + offsets]  # (B, T+1)
        logits = model(input_ids=window[:, :-1]).logits  # (B, T, V)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), window[:, 1:].flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if step % 10 == 0:
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    tail = losses[-max(1, steps // 10):]
    val_loss = evaluate_loss(model, val_ids, recipe.block_size, recipe.val_tokens)
    model.eval()
    return model, {"train_tokens": steps * tokens_per_step, "steps": steps, "train_loss": float(np.mean(tail)),
                   "val_loss": val_loss, "seconds": round(time.perf_counter() - start, 1)}
