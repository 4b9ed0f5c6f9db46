"""Streaming transcription: audio in as it arrives, partial and final segments out, many streams at once.

    engine = StreamingEngine.load()              # the shipped streaming model + LM, beam decoding, CPU
    stream = engine.open_stream()
    for block in microphone_blocks():            # float32 16 kHz mono samples (n,), any n
        for event in stream.feed(block):
            if event.final:  ...                 # event.segment: finished, with aligned words and times
            else:            ...                 # event.segment: the current line so far (may still change)
    for event in stream.close(): ...             # the last final segment(s)

Times are seconds from the stream's first sample. A partial event's segment has its text and time span but
no words; a final event's segment has words with times and confidences from CTC forced alignment, as in the
offline `Transcriber`. A segment is final at an endpoint (`endpoint_s` of silence after speech) or after
`max_segment_s`. Latency: the model needs `chunk_s` + `lookahead_s` of audio before a chunk's text appears.

Many streams: `engine.feed_many({stream: samples, ...})` pushes audio to several streams and runs ONE
batched model step for all streams with a whole chunk ready (streams may open and close at any time;
each stream's result is the same as if it ran alone). `stream.feed` is `feed_many` with one stream.
Works on `device="cuda"` as on the CPU (same API). The engine is thread-safe (one lock). On a CPU, run
it with one torch thread (`torch.set_num_threads(1)`): its steps are small matrix products that more
threads slow down; use more cores with more processes, each serving its own streams.

For the TUI's `LiveUpdate(final, partial)`: `LiveUpdate(*split_events(stream.feed(samples)))`, and at the
end `LiveUpdate(*split_events(stream.close()))`.

Models: log-mel models stream cheaply (the default, `models/stream`). A Whisper-encoder model (the offline
default, far more accurate) streams too, but its encoder is re-run on the audio heard so far before every
block: about one CPU core per stream (bench/RESULTS.md), so for one live stream on a machine with a core to
spare, not for many.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import asdict, dataclass
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from acoustic.checkpoint import load_model
from acoustic.engine import AcousticEngine
from acoustic.features import SAMPLE_RATE, frames_to_seconds
from acoustic.streaming import ChunkConfig
from lm.beam import BeamOptions
from lm.rnnlm import load_lm
from lm.stream_beam import DecoderEvent, EndpointOptions, StreamDecoder, accept_many
from minutes.batch import Settings
from minutes.model import Minutes, Segment, Word
from minutes.pipeline import (DEFAULT_BEAM, DEFAULT_LM, MODELS, SILENCE_PEAK, Hook, SilentAudioError,
                              TranscribeOptions)
from minutes.segmenting import split_on_pauses


def default_stream_model() -> Path:
    """The chunk-trained model when shipped, else the log-mel model ($MINUTES_STREAM_MODEL overrides)."""
    chunked = MODELS / "stream" / "model.pt"
    return Path(os.environ.get("MINUTES_STREAM_MODEL") or (chunked if chunked.is_file() else MODELS / "logmel" / "model.pt"))


@dataclass(frozen=True)
class StreamOptions:
    chunk_s: float = 0.64  # audio per model step
    lookahead_s: float = 0.32  # future audio each chunk waits for
    endpoint_s: float = 0.6  # silence after speech that ends a segment
    max_segment_s: float = 25.0  # a segment is cut here without a pause

    def __post_init__(self) -> None:
        if not 0.05 <= self.chunk_s <= 10 or not 0 <= self.lookahead_s <= 5:
            raise ValueError("chunk_s must be in 0.05..10 s and lookahead_s in 0..5 s")
        if not 0.05 <= self.endpoint_s <= self.max_segment_s <= 30:
            raise ValueError("need 0.05 <= endpoint_s <= max_segment_s <= 30 seconds")


@dataclass(frozen=True)
class StreamEvent:
    final: bool  # True: `segment` is finished; False: the current, provisional line
    segment: Segment


def split_events(events: list[StreamEvent]) -> tuple[tuple[Segment, ...], Segment | None]:
    """Events -> (the final segments, the latest partial segment or None)."""
    partials = [e.segment for e in events if not e.final]
    return tuple(e.segment for e in events if e.final), (partials[-1] if partials else None)


class Stream:
    """One audio stream of a StreamingEngine: `feed` samples, then `close`."""

    def __init__(self, engine: "StreamingEngine", slot: int, decoder: StreamDecoder) -> None:
        self.engine, self.slot, self.decoder = engine, slot, decoder
        self.closed = False

    def feed(self, samples: np.ndarray) -> list[StreamEvent]:
        """Float32 16 kHz mono samples (n,) -> events (finals first, then at most one partial)."""
        return self.engine.feed_many({self: samples})[self]

    def close(self) -> list[StreamEvent]:
        """End of audio: decode the rest -> the last events (all final). Closing twice returns []."""
        return self.engine.close_stream(self)


class StreamingEngine:
    """A loaded streaming model, LM and options shared by any number of streams."""

    def __init__(self, model_path: Path, decoding: TranscribeOptions, lm_path: Path | None,
                 options: StreamOptions = StreamOptions(), device: str = "cpu") -> None:
        model, self.vocab, features, checkpoint = load_model(model_path)
        self.stride = model.dims.stack * features.frame_hops  # 10 ms hops per output step
        step_s = frames_to_seconds(1, self.stride)
        self.chunks = ChunkConfig.from_seconds(step_s, options.chunk_s, options.lookahead_s)
        self.acoustic = AcousticEngine(model, features, self.chunks, device=device)
        self.decoding, self.options = decoding, options
        self.lm = load_lm(lm_path)[0] if decoding.decoder == "beam" and lm_path else None
        self.endpoint = EndpointOptions(endpoint_frames=max(1, round(options.endpoint_s / step_s)),
                                        max_frames=round(options.max_segment_s / step_s))
        self.name = str(checkpoint.get("name") or model_path.stem)
        self._lock = threading.Lock()
        self._streams: dict[int, Stream] = {}  # open streams by slot

    @classmethod
    def load(cls, model_path: str | Path | None = None, decoder: str = "beam", lm_path: str | Path | None = None,
             beam: BeamOptions | None = None, hotwords: dict[str, float] | None = None,
             options: StreamOptions = StreamOptions(), device: str = "cpu") -> "StreamingEngine":
        """The shipped streaming model (or the given one); beam decoding uses the shipped LM unless `lm_path` is
        given."""
        decoding = TranscribeOptions(decoder=decoder, beam=beam or DEFAULT_BEAM, hotwords=tuple((hotwords or {}).items()))
        return cls(Path(model_path) if model_path else default_stream_model(), decoding,
                   Path(lm_path) if lm_path else DEFAULT_LM, options, device)

    def open_stream(self) -> Stream:
        decoder = StreamDecoder(self.vocab, self.lm, self.decoding.beam, dict(self.decoding.hotwords),
                                self.endpoint, greedy=self.decoding.decoder == "greedy")
        with self._lock:
            stream = Stream(self, self.acoustic.open(), decoder)
            self._streams[stream.slot] = stream
            return stream

    def feed_many(self, pushes: dict[Stream, np.ndarray]) -> dict[Stream, list[StreamEvent]]:
        """Push samples to several open streams, run one batched step -> each stream's events."""
        with self._lock:
            for stream, samples in pushes.items():
                if stream.closed:
                    raise ValueError("this stream is closed")
                if np.ndim(samples) != 1:
                    raise ValueError(f"samples must be mono, shape (n,); got shape {np.shape(samples)}")
                self.acoustic.push(stream.slot, samples)
            events: dict[Stream, list[StreamEvent]] = {stream: [] for stream in pushes}
            stepped = self.acoustic.step()
            streams = [self._streams[slot] for slot in stepped]
            decoded = accept_many([s.decoder for s in streams], list(stepped.values()))  # one LM call per frame
            for stream, found in zip(streams, decoded):
                events.setdefault(stream, []).extend(self._events(found))
            return events

    def close_stream(self, stream: Stream) -> list[StreamEvent]:
        with self._lock:
            if stream.closed:
                return []
            stream.closed = True
            del self._streams[stream.slot]
            decoded = stream.decoder.accept(self.acoustic.close(stream.slot)) + stream.decoder.finish()
            return [e for e in self._events(decoded) if e.final]

    def transcribe(self, audio: np.ndarray, source: str = "", hook: Hook | None = None,
                   date: str | None = None) -> Minutes:
        """A whole recording through the streaming path -> Minutes (see transcribe_blocks)."""
        block = int(self.options.chunk_s * SAMPLE_RATE)
        return self.transcribe_blocks((audio[i:i + block] for i in range(0, audio.size, block)), source, hook, date,
                                      audio.size / SAMPLE_RATE)

    def transcribe_blocks(self, blocks: Iterable[np.ndarray], source: str = "", hook: Hook | None = None,
                          date: str | None = None, total_s: float | None = None) -> Minutes:
        """Sample blocks of any size, fed to one stream as they come -> Minutes, like
        `Transcriber.transcribe_blocks` (final segments' words regrouped into segments at pauses).
        `hook("transcribe", completed=seconds, total=total_s)` reports progress every few seconds of audio."""
        stream, words, samples, peak, reported = self.open_stream(), [], 0, 0.0, 0.0
        for block in blocks:
            words += [w for e in stream.feed(block) if e.final for w in e.segment.words]
            samples, peak = samples + block.size, max(peak, float(np.abs(block).max(initial=0.0)))
            if hook and samples / SAMPLE_RATE - reported >= 10.0:
                reported = samples / SAMPLE_RATE
                hook("transcribe", completed=reported, total=total_s)
        words += [w for e in stream.close() for w in e.segment.words]
        if peak < SILENCE_PEAK:
            raise SilentAudioError("audio is silent: nothing to transcribe")
        if hook:
            hook("transcribe", completed=samples / SAMPLE_RATE, total=total_s)
        segments = split_on_pauses(words, self.decoding.pause_s, self.decoding.max_segment_s)
        return Minutes(source=source, duration=samples / SAMPLE_RATE, model=self.name,
                       segments=tuple(segments), date=date)

    def _events(self, decoded: list[DecoderEvent]) -> list[StreamEvent]:
        return [StreamEvent(e.final, self._segment(e)) for e in decoded]

    def _segment(self, event: DecoderEvent) -> Segment:
        seconds = lambda frame: frames_to_seconds(frame, self.stride)  # noqa: E731
        words = tuple(Word(w.word, seconds(w.start_frame), seconds(w.end_frame), round(w.confidence, 4))
                      for w in event.words)
        start, end = (words[0].start, words[-1].end) if words else (seconds(event.start_frame), seconds(event.end_frame))
        return Segment(start=start, end=end, text=event.text, words=words)


@dataclass(frozen=True)
class StreamSettings(Settings):
    """Batch settings (minutes.batch) whose transcriber is a StreamingEngine: `minutes transcribe --stream`."""

    stream: StreamOptions = StreamOptions()

    def load(self, threads: int | None = None) -> StreamingEngine:  # type: ignore[override]
        """The engine, with `threads` intra-op threads (default 1: the streaming steps are small, and on a busy
        2-core machine two threads made them many times slower; see bench/RESULTS.md)."""
        torch.set_num_threads(threads or 1)
        return StreamingEngine(self.model, self.options, self.lm, self.stream)

    def fingerprint(self) -> str:
        """Streaming and offline outputs differ: a rerun with the other path transcribes again."""
        key = json.dumps([super().fingerprint(), asdict(self.stream)], sort_keys=True)
        return hashlib.sha256(key.encode()).hexdigest()[:16]


def stream_settings(settings: Settings, model_given: bool) -> StreamSettings:
    """The same settings through the streaming path; without --model, the default streaming model.
    Raises CheckpointError (a ValueError) for a model file that cannot be read."""
    fields = {f.name: getattr(settings, f.name) for f in dataclass_fields(settings)}
    if not model_given:
        fields["model"] = default_stream_model()
    load_model(fields["model"])  # a bad model file fails here, before any input
    return StreamSettings(**fields)
