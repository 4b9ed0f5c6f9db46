"""Speaker diarization: who spoke when, from the local pyannote.audio pipeline under models/diarization.

The contract the rest of minutes relies on: `Diarizer.load(path)` then `diarizer(audio, hint, hook)` gives
speaker turns in seconds, labels `SPEAKER_00`, `SPEAKER_01`, ... in order of first appearance."""
from __future__ import annotations

from dataclasses import dataclass


class DiarizationError(Exception):
    """The diarization model cannot be loaded or run (one-line reason)."""


@dataclass(frozen=True)
class Turn:
    start: float  # seconds
    end: float
    speaker: str


@dataclass(frozen=True)
class SpeakerHint:
    """Optional hints: an exact number of speakers, or bounds."""
    num: int | None = None
    min: int | None = None
    max: int | None = None

    def __post_init__(self) -> None:
        values = [v for v in (self.num, self.min, self.max) if v is not None]
        if any(v < 1 for v in values):
            raise ValueError("speaker counts must be at least 1")
        if self.num is not None and (self.min is not None or self.max is not None):
            raise ValueError("give either --speakers or --min-speakers/--max-speakers, not both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("--min-speakers is larger than --max-speakers")
