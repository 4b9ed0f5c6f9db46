"""WER and CER over normalized text (one normalizer: lm.vocab.normalize)."""
from __future__ import annotations

from lm.vocab import normalize


def edit_distance(ref: list, hyp: list) -> int:
    """Levenshtein distance between two token sequences."""
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return previous[-1]


def error_rates(refs: list[str], hyps: list[str]) -> tuple[float, float]:
    """Corpus (WER, CER): total edits over total reference words / characters, after normalization."""
    word_edits = word_total = char_edits = char_total = 0
    for ref, hyp in zip(refs, hyps, strict=True):
        ref, hyp = normalize(ref), normalize(hyp)
        word_edits += edit_distance(ref.split(), hyp.split())
        word_total += len(ref.split())
        char_edits += edit_distance(list(ref), list(hyp))
        char_total += len(ref)
    return word_edits / max(1, word_total), char_edits / max(1, char_total)
