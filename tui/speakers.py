"""Speakers in the app: the shipped diarizer when there is one (minutes.speakers), applied to an opened file
(lines cut at speaker changes) or, after a recording, to each live line as a whole (so marks stay put)."""
from __future__ import annotations

from collections import Counter
from typing import Callable, Sequence

import numpy as np

from minutes.diarization import DiarizationError, SpeakerHint, Turn
from minutes.model import Segment
from minutes.speakers import assign_speakers, load_diarizer, resolve
from minutes.speech import SpeechTrack

Diarize = Callable[[np.ndarray, SpeechTrack | None], list[Turn]]  # 16 kHz float32 audio, its speech track -> turns


def load_speakers() -> tuple[Diarize | None, str]:
    """The shipped diarizer as a `Diarize`, or None and a one-line reason (no model, cannot load)."""
    try:
        options, warning = resolve(None, SpeakerHint(), None)
    except (DiarizationError, ValueError, OSError) as error:
        return None, f"speakers not identified: {error}"
    if options is None:  # the warning is worded for `transcribe`: keep its reason only
        return None, f"speakers not identified: {(warning or 'no diarization model').split(';')[0]}"
    diarizer = load_diarizer(options.model)
    return (lambda audio, speech=None: diarizer(audio, options.hint, None, speech)), ""


def line_speakers(segments: Sequence[Segment], turns: Sequence[Turn]) -> list[str | None]:
    """Per line, the speaker of most of its words (None for a line without words)."""
    labels = assign_speakers([w for s in segments for w in s.words], turns)
    found: list[str | None] = []
    position = 0
    for segment in segments:
        mine = [label for label in labels[position:position + len(segment.words)] if label]
        position += len(segment.words)
        found.append(Counter(mine).most_common(1)[0][0] if mine else None)
    return found
