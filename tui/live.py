"""Live transcription behind one small interface: blocks of samples in, finished and partial segments out.

`LiveTranscriber` is what the app drives. `ChunkedTranscriber` implements it with the offline pipeline
(audio cut at pauses, each piece decoded by `Transcriber.transcribe`); `StreamingTranscriber` with the
streaming engine (`minutes.streaming`, `minutes record --stream`)."""
from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from acoustic.features import SAMPLE_RATE
from minutes.model import Segment, Word
from minutes.pipeline import SilentAudioError, Transcriber
from minutes.segmenting import cut_points
from minutes.streaming import StreamingEngine, split_events

_FRAME = SAMPLE_RATE // 100  # 10 ms energy frames


@dataclass(frozen=True)
class LiveUpdate:
    """What changed after a feed: segments now final (recording times, seconds) and, when decoded anew,
    the words heard since then as one provisional segment (None: the provisional line is unchanged, or
    gone when there are final segments)."""

    final: tuple[Segment, ...] = ()
    partial: Segment | None = None


class LiveTranscriber(Protocol):
    def feed(self, samples: np.ndarray) -> LiveUpdate:
        """Take the next float32 16 kHz samples (n,) of the recording; may decode."""

    def flush(self) -> LiveUpdate:
        """The recording ended: decode whatever is pending; nothing stays partial."""


@dataclass(frozen=True)
class ChunkOptions:
    pause_s: float = 0.3  # a quiet stretch this long ends a chunk ...
    min_chunk_s: float = 1.0  # ... once the chunk is at least this long
    max_chunk_s: float = 8.0  # longer chunks are cut at their quietest point
    partial_every_s: float = 0.5  # pending audio is re-decoded (greedy) as a partial line after this much new audio

    def __post_init__(self) -> None:
        if not 0 < self.pause_s < self.min_chunk_s < self.max_chunk_s <= 30:
            raise ValueError("need 0 < pause_s < min_chunk_s < max_chunk_s <= 30 seconds")
        if self.partial_every_s <= 0:
            raise ValueError("partial_every_s must be positive")


class ChunkedTranscriber:
    """Cuts the incoming audio at pauses and decodes each piece with the offline `Transcriber`; the audio
    pending since the last cut is re-decoded every `partial_every_s` as a partial line, with greedy decoding
    (cheaper than the beam; the final line uses the transcriber's own decoder)."""

    def __init__(self, transcriber: Transcriber, options: ChunkOptions = ChunkOptions()) -> None:
        self.transcriber = transcriber
        self.quick = copy.copy(transcriber)  # the same model and front end, decoding greedily
        self.quick.options = replace(transcriber.options, decoder="greedy", hotwords=())
        self.options = options
        self.pending = np.zeros(0, dtype=np.float32)
        self.offset = 0  # recording sample where `pending` starts
        self._since_partial = 0

    def feed(self, samples: np.ndarray) -> LiveUpdate:
        self.pending = np.concatenate([self.pending, samples.astype(np.float32, copy=False)])
        self._since_partial += samples.size
        final: list[Segment] = []
        while (cut := self._cut()) is not None:
            final += self._take(cut)
        partial = None
        if self._since_partial >= self.options.partial_every_s * SAMPLE_RATE:
            self._since_partial = 0
            words = [w for s in self._decode(self.pending, self.quick) for w in s.words]
            if words:
                partial = Segment(words[0].start, words[-1].end, " ".join(w.word for w in words), tuple(words))
        return LiveUpdate(tuple(final), partial)

    def flush(self) -> LiveUpdate:
        return LiveUpdate(tuple(self._take(self.pending.size)) if self.pending.size else ())

    def _cut(self) -> int | None:
        """Where to end the next chunk in `pending` (samples), or None to wait for more audio."""
        o = self.options
        if self.pending.size > o.max_chunk_s * SAMPLE_RATE:
            return cut_points(self.pending, int(o.max_chunk_s * SAMPLE_RATE))[1]
        if self.pending.size < o.min_chunk_s * SAMPLE_RATE:
            return None
        quiet = _quiet_frames(self.pending)
        run = int(o.pause_s * 100)
        if not quiet.any() or quiet.all():
            return self.pending.size if quiet.all() else None
        # the last quiet run of at least `run` frames that ends a chunk >= min_chunk_s: cut in its middle
        for end in range(quiet.size, run - 1, -1):
            if quiet[end - run:end].all() and end - run // 2 >= o.min_chunk_s * 100:
                return (end - run // 2) * _FRAME
        return None

    def _take(self, cut: int) -> list[Segment]:
        chunk, self.pending = self.pending[:cut], self.pending[cut:]
        segments = self._decode(chunk, self.transcriber) if not _quiet_frames(chunk).all() else []
        self.offset += cut
        self._since_partial = self.pending.size
        return segments

    def _decode(self, chunk: np.ndarray, transcriber: Transcriber) -> list[Segment]:
        """Segments of one chunk, in recording time."""
        if chunk.size < _FRAME * 10:
            return []
        try:
            minutes = transcriber.transcribe(chunk)
        except SilentAudioError:
            return []
        return [shift(s, self.offset / SAMPLE_RATE) for s in minutes.segments]


def _quiet_frames(audio: np.ndarray, floor: float = 0.01) -> np.ndarray:
    """Per 10 ms frame: True where the RMS is under both `floor` and a fifth of the chunk's loud level."""
    frames = audio[: audio.size // _FRAME * _FRAME].reshape(-1, _FRAME)
    if not frames.size:
        return np.zeros(0, dtype=bool)
    rms = np.sqrt((frames ** 2).mean(axis=1))
    loud = float(np.percentile(rms, 95))
    return rms < max(floor * 0.1, min(floor, 0.2 * loud))


def shift(segment: Segment, seconds: float) -> Segment:
    """`segment` with every time moved by `seconds`."""
    words = tuple(Word(w.word, w.start + seconds, w.end + seconds, w.confidence) for w in segment.words)
    return replace(segment, start=segment.start + seconds, end=segment.end + seconds, words=words)


class StreamingTranscriber:
    """A `LiveTranscriber` over the streaming engine (`minutes.streaming`): the LC-BLSTM decodes every block
    as it arrives, with its own endpointing; segment times are recording seconds from the stream's start."""

    def __init__(self, engine: StreamingEngine) -> None:
        self.stream = engine.open_stream()

    def feed(self, samples: np.ndarray) -> LiveUpdate:
        finals, partial = split_events(self.stream.feed(samples))
        return LiveUpdate(finals, partial)

    def flush(self) -> LiveUpdate:
        finals, _ = split_events(self.stream.close())
        return LiveUpdate(finals)


@lru_cache(maxsize=2)
def _engine(model: Path | None, decoder: str) -> StreamingEngine:
    return StreamingEngine.load(model, decoder=decoder)


def streaming(model: Path | None = None, decoder: str = "beam") -> Callable[..., LiveTranscriber]:
    """A `live` factory for the app: each recording gets a stream of one engine, loaded on first use (in the
    app's decoding thread). `model` None: the shipped streaming model."""
    return lambda *_: StreamingTranscriber(_engine(model, decoder))
