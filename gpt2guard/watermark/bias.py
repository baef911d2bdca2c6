"""The watermark inside the sampling loop: green logits get ``delta`` before the draw."""

from __future__ import annotations

from gpt2guard.errors import GuardError
from gpt2guard.watermark.greenlist import green_mask, key_table


class WatermarkBias:
    """Adds ``delta`` to the logits of each row's green tokens.

    A row's green list depends only on its own last tokens and the key (never on the
    batch), so a record is the same in any batch. Rows whose context is shorter than the
    scheme's window (the first tokens after a short prompt) are left unmarked, as the
    detector leaves such tokens unscored.

    Parameters
    ----------
    config : WatermarkConfig
    vocab_size : int
        The model's output size (the candidates of each step).
    tokenizer : optional
        Checked against the key's tokenizer.
    """

    def __init__(self, config, vocab_size: int, tokenizer=None):
        key = config.key()
        if tokenizer is not None:
            key.check_tokenizer(tokenizer)
        if vocab_size < key.vocab_size:
            raise GuardError(f"watermark key covers {key.vocab_size} tokens, the model only {vocab_size}: "
                             "the key is for another tokenizer")
        self.config = config
        self.width = config.context_width
        self.table = key_table(key, int(vocab_size))

    def start(self, prompts, device):
        """The context state of a batch: per row its last ``width`` tokens and how many it has.

        Returns
        -------
        tuple of torch.Tensor
            (B, width) int64 and (B,) int64.
        """
        import torch

        hist = torch.zeros((len(prompts), self.width), dtype=torch.long)
        for i, p in enumerate(prompts):
            tail = list(p)[-self.width:]
            if tail:
                hist[i, self.width - len(tail):] = torch.as_tensor(tail, dtype=torch.long)
        return hist.to(device), torch.tensor([len(p) for p in prompts], dtype=torch.long, device=device)

    def apply(self, logits, hist, count, temperature: float = 1.0):
        """``logits`` (b, V) plus ``delta * temperature`` on green tokens of the rows with a
        full context: after the sampler divides by the temperature, green tokens are
        ``delta`` up on the logits it samples from, at any temperature."""
        if self.table.device != logits.device:
            self.table = self.table.to(logits.device)
        green = green_mask(self.table, self.config.scheme, self.config.gamma, hist)  # (b, V)
        green &= (count >= self.width)[:, None]
        return logits + green.to(logits.dtype) * (self.config.delta * temperature)

    @staticmethod
    def advance(hist, count, rows, tokens):
        """Append each running row's new token to its context (in place)."""
        import torch

        hist[rows] = torch.cat([hist[rows, 1:], tokens[:, None]], dim=1)
        count[rows] += 1
