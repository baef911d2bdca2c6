"""Train the byte-level BPE tokenizer a builtin family shares, with the ``tokenizers`` library."""

from __future__ import annotations

from pathlib import Path

EOT = "<|endoftext|>"


def train_tokenizer(texts: list[str], vocab_size: int, n_positions: int, out_dir: Path):
    """Train a GPT-2-style byte-level BPE on ``texts`` and save it in Hugging Face format.

    Like GPT-2's: byte-level pre-tokenisation without a prefix space, the 256 byte symbols
    as the initial alphabet (so any text encodes), ``<|endoftext|>`` as the one special
    token (also used as BOS, EOS and padding).

    Returns
    -------
    transformers.PreTrainedTokenizerFast
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOT], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOT, eos_token=EOT, unk_token=EOT,
                                   pad_token=EOT, model_max_length=n_positions)
    fast.save_pretrained(out_dir)
    return fast
