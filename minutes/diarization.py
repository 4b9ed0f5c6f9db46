"""Speaker diarization: who spoke when, from the local pyannote.audio pipeline under models/diarization.

The contract the rest of minutes relies on: `Diarizer.load(path)` then `diarizer(audio, hint, hook)` gives
speaker turns in seconds, labels `SPEAKER_00`, `SPEAKER_01`, ... in order of first appearance.
Nothing leaves the machine: the Hugging Face hub is switched to offline mode and pyannote's telemetry off
before pyannote is imported (it is imported only when a pipeline is loaded)."""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from acoustic.features import SAMPLE_RATE

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["PYANNOTE_METRICS_ENABLED"] = "0"


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


DEFAULT_DIARIZATION = Path(__file__).resolve().parent.parent / "models" / "diarization"
_SHARES = {"segmentation": (0.0, 0.2), "embeddings": (0.2, 1.0)}  # progress share of each pyannote step


class Diarizer:
    """The pyannote.audio speaker-diarization pipeline of a local folder (`config.yaml` + models), run offline.

    `Diarizer.load(path)(audio, hint, hook)` -> turns sorted by start, labels `SPEAKER_00`, `SPEAKER_01`, ...
    in order of first appearance. `hook("diarize", completed=, total=)` reports progress in seconds of audio
    (segmentation counts for the first fifth, speaker embeddings for the rest)."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline

    @classmethod
    def load(cls, path: Path | None = None) -> Diarizer:
        """Load the pipeline in `path` (default models/diarization); DiarizationError with a one-line reason."""
        path = Path(path) if path is not None else DEFAULT_DIARIZATION
        if not (path / "config.yaml").is_file():
            raise DiarizationError(f"no diarization model in {path} (config.yaml is missing)")
        try:
            from pyannote.audio import Pipeline

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pipeline = Pipeline.from_pretrained(path)
        except Exception as error:  # yaml, pickle, missing checkpoint, wrong class: all one line for the user
            raise DiarizationError(f"cannot load the diarization model in {path}: {_one_line(error)}") from None
        if pipeline is None:
            raise DiarizationError(f"cannot load the diarization model in {path}")
        return cls(pipeline)

    def __call__(self, audio: np.ndarray, hint: SpeakerHint = SpeakerHint(),
                 hook: Callable[..., None] | None = None) -> list[Turn]:
        """Speaker turns (within the audio) of float32 mono 16 kHz `audio` (n,), honouring the speaker-count
        `hint`. Raises ValueError for non-mono input, DiarizationError when pyannote fails."""
        if audio.ndim != 1:
            raise ValueError(f"expected mono audio of shape (n,), got {audio.shape}")
        waveform = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None]
        file = {"waveform": waveform, "sample_rate": SAMPLE_RATE, "uri": "audio"}
        duration = len(audio) / SAMPLE_RATE
        try:
            with warnings.catch_warnings(), torch.inference_mode():
                warnings.simplefilter("ignore")
                output = self.pipeline(file, num_speakers=hint.num, min_speakers=hint.min,
                                       max_speakers=hint.max, hook=_relay(hook, duration))
        except (RuntimeError, ValueError) as error:
            raise DiarizationError(_one_line(error)) from None
        annotation = getattr(output, "speaker_diarization", output)
        # the last window is padded: clip turns to the audio
        return first_appearance_labels([Turn(float(s.start), min(float(s.end), duration), str(k))
                                        for s, _, k in annotation.itertracks(yield_label=True) if s.start < duration])


def first_appearance_labels(turns: list[Turn]) -> list[Turn]:
    """Turns sorted by (start, end), relabelled SPEAKER_00, SPEAKER_01, ... in order of first appearance."""
    turns = sorted(turns, key=lambda t: (t.start, t.end))
    names: dict[str, str] = {}
    for t in turns:
        names.setdefault(t.speaker, f"SPEAKER_{len(names):02d}")
    return [Turn(t.start, t.end, names[t.speaker]) for t in turns]


def _relay(hook: Callable[..., None] | None, seconds: float) -> Callable[..., None] | None:
    """pyannote's `hook(step_name, artefact, file=, completed=, total=)` -> ours, one "diarize" step counted in
    seconds of audio."""
    if hook is None:
        return None

    def relay(step: str, artefact: Any = None, file: Any = None, completed: int | None = None,
              total: int | None = None) -> None:
        if step in _SHARES and completed is not None and total:
            low, high = _SHARES[step]
            fraction = low + (high - low) * min(completed / total, 1.0)
            hook("diarize", completed=round(fraction * seconds, 2), total=round(seconds, 2))

    return relay


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
