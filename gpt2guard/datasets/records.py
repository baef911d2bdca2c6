"""The one record schema: a document as a line of gpt-2-output-dataset JSONL, plus provenance.

OpenAI's files carry ``id``, ``ended``, ``length`` (tokens) and ``text``; tools written for
them read ours because those four keys keep their meaning. Our optional keys:

``label``      ``"human"`` or ``"machine"``
``source``     where a human document came from (module, file, URL), used for leak-free splits
``provenance`` how a machine document was made: family, size, sampling method and
               parameters, seed, prompt id and source, stop reason, model and tokenizer
               hashes, library versions
``flags``      quality flags such as ``"empty"`` or ``"repetition"``: flagged, never hidden
``token_logprobs`` optional per-token log-probabilities under the generating model

Keys a reader does not know are kept in ``extra`` and written back unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CORE_KEYS = ("id", "ended", "length", "text")
OPTIONAL_KEYS = ("label", "source", "provenance", "flags", "token_logprobs")
LABELS = ("human", "machine")
_KNOWN = frozenset(CORE_KEYS + OPTIONAL_KEYS)


@dataclass
class Record:
    """One document."""

    id: int | str
    text: str
    length: int | None = None
    ended: bool | None = None
    label: str | None = None
    source: str | None = None
    provenance: dict[str, Any] | None = None
    flags: list[str] = field(default_factory=list)
    token_logprobs: list[float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written for this record: core keys first, empty optionals omitted."""
        out: dict[str, Any] = {"id": self.id, "ended": self.ended, "length": self.length, "text": self.text}
        for key in OPTIONAL_KEYS:
            value = getattr(self, key)
            if value not in (None, [], {}):
                out[key] = value
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, obj: dict[str, Any], text_field: str = "text") -> "Record":
        """Build a record from a parsed JSON object; ``text_field`` names the text key.

        Raises KeyError when the text field is missing and TypeError when it is not a string.
        """
        text = obj[text_field]
        if not isinstance(text, str):
            raise TypeError(f"field {text_field!r} is {type(text).__name__}, not a string")
        known = _KNOWN if text_field == "text" else _KNOWN | {text_field}
        return cls(id=obj.get("id"), text=text, length=obj.get("length"), ended=obj.get("ended"),
                   label=obj.get("label"), source=obj.get("source"), provenance=obj.get("provenance"),
                   flags=list(obj.get("flags") or []), token_logprobs=obj.get("token_logprobs"),
                   extra={k: v for k, v in obj.items() if k not in known})
