"""Token ids back to the exact text they cover, for a per-token view.

A byte-level BPE token is a run of bytes, and a character of several UTF-8 bytes may be
split across tokens. Decoding each token alone would show that character as U+FFFD on
every piece; here the bytes of consecutive tokens go through one incremental UTF-8
decoder, so each character appears on the token that completes it and the token texts,
joined, are the document's text.

The byte-level vocabulary writes each byte as one printable character (the mapping of the
GPT-2 tokenizer, shared by every byte-level BPE in Hugging Face ``tokenizers``): bytes that
are printable Latin-1 stand for themselves, the others for code points from 256 up, in
byte order.
"""

from __future__ import annotations

import codecs
from functools import lru_cache


@lru_cache(maxsize=1)
def char_to_byte() -> dict[str, int]:
    """The byte each character of a byte-level vocabulary entry stands for."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[chr(b)] = b
        else:
            table[chr(256 + extra)] = b
            extra += 1
    return table


def token_bytes(tokenizer, ids) -> list[bytes]:
    """The bytes of each token id (special tokens as their text)."""
    table = char_to_byte()
    out = []
    for piece in tokenizer.convert_ids_to_tokens([int(i) for i in ids]):
        if all(c in table for c in piece):
            out.append(bytes(table[c] for c in piece))
        else:  # a special or added token, written as plain text
            out.append(piece.encode("utf-8"))
    return out


def token_texts(tokenizer, ids) -> list[str]:
    """Text of each token such that ``"".join(token_texts(...))`` decodes the whole sequence;
    a character split across tokens is shown on the token that completes it."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    texts = [decoder.decode(b) for b in token_bytes(tokenizer, ids)]
    if texts:
        texts[-1] += decoder.decode(b"", final=True)
    return texts


def single_token_texts(tokenizer, ids) -> list[str]:
    """Each token decoded on its own (a partial character shows as U+FFFD): for alternatives."""
    return [b.decode("utf-8", errors="replace") for b in token_bytes(tokenizer, ids)]
