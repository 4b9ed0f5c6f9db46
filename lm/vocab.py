"""Text normalization (the one normalizer for training text and metrics) and the character vocabulary."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

BLANK = "<blank>"
_PUNCT = re.compile(r"[^\w\s']|_")
_EDGE_APOSTROPHE = re.compile(r"(?<!\w)'|'(?!\w)")


def normalize(text: str) -> str:
    """Lowercase, NFKC, punctuation stripped except in-word apostrophes, whitespace collapsed.

    >>> normalize("Mr. Dashwood's 'first', severe;")
    "mr dashwood's first severe"
    """
    text = unicodedata.normalize("NFKC", text).lower().replace("\u2019", "'").replace("\u2018", "'")
    text = _PUNCT.sub(" ", text)
    text = _EDGE_APOSTROPHE.sub(" ", text)
    return " ".join(text.split())


@dataclass(frozen=True)
class CharVocab:
    """Character outputs for CTC: index 0 is the blank, then space, apostrophe and letters."""

    symbols: tuple[str, ...] = (BLANK, " ", "'", *"abcdefghijklmnopqrstuvwxyz")

    @property
    def blank(self) -> int:
        return 0

    def __len__(self) -> int:
        return len(self.symbols)

    def encode(self, text: str) -> list[int]:
        """Token ids of already-normalized text; characters outside the vocabulary are dropped."""
        index = {s: i for i, s in enumerate(self.symbols)}
        return [index[c] for c in text if c in index]

    def decode(self, ids: list[int]) -> str:
        return "".join(self.symbols[i] for i in ids if i != self.blank)

    def clean(self, text: str) -> str:
        """Normalize, strip accents and keep only characters the vocabulary can emit (others become spaces)."""
        kept = set(self.symbols[1:])
        plain = "".join(c for c in unicodedata.normalize("NFKD", normalize(text)) if not unicodedata.combining(c))
        return " ".join("".join(c if c in kept else " " for c in plain).split())
