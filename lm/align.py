"""Word times and confidences by CTC forced alignment of a transcript against the emissions."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torchaudio.functional as F

from lm.vocab import CharVocab


@dataclass(frozen=True)
class AlignedWord:
    word: str
    start_frame: int  # first output frame of the word
    end_frame: int  # one past its last output frame
    confidence: float  # geometric mean of the aligned frames' posteriors, in [0, 1]


def align_words(log_probs: torch.Tensor, text: str, vocab: CharVocab) -> list[AlignedWord]:
    """Align normalized `text` to one utterance's log-probs (T, vocab) and group characters into words.

    Returns [] for empty text; raises ValueError when the text cannot fit the emissions.
    """
    words = text.split()
    if not words:
        return []
    targets = torch.tensor([vocab.encode(" ".join(words))], dtype=torch.int32)
    if targets.shape[1] > log_probs.shape[0]:
        raise ValueError("transcript is longer than the audio can hold")
    path, scores = F.forced_align(log_probs[None].float(), targets, blank=vocab.blank)
    spans = F.merge_tokens(path[0], scores[0].exp(), blank=vocab.blank)
    space = vocab.encode(" ")[0]
    out, current = [], []
    for span in spans + [None]:
        if span is None or span.token == space:
            if current:
                out.append(_word(current, vocab, scores[0]))
            current = []
        else:
            current.append(span)
    return out


def _word(spans, vocab: CharVocab, frame_scores: torch.Tensor) -> AlignedWord:
    start, end = spans[0].start, spans[-1].end
    frames = torch.cat([frame_scores[s.start:s.end] for s in spans])
    return AlignedWord(word="".join(vocab.symbols[s.token] for s in spans), start_frame=start, end_frame=end,
                       confidence=float(frames.mean().exp()))
