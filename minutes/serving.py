"""Serving many live streams from one process: every stream brings one chunk of PCM per tick.

    server = LockstepServer.load(decoder="greedy", device="cuda", half=True)
    slots = server.open(1000)                        # slot ids (1000,), a tensor
    while serving:
        pcm = gather_one_chunk_per_stream()          # (N, server.tick_samples) int16 or float32, 16 kHz mono
        updates = server.tick(slots, pcm)            # N may be any subset of the open slots
        send_batch(updates.slot, updates.text, updates.final)   # columns; or: for update in updates: ...
    for slot in slots.tolist(): server.close(slot)   # the last final updates

minutes.streaming.StreamingEngine serves a few streams with any amount of audio per call, exact word
times and per-stream Python; at thousands of streams that Python is the limit. This is the GPU-scale path:
acoustic.lockstep.LockstepEngine (all stream state in device tensors, one batched model step per tick) and
batched decoders on the same device, greedy (lm.batched_greedy) or CTC prefix beam search with the RNN LM
(lm.batched_beam), with the same silence endpointing at chunk granularity (lm.batched_greedy.ChunkEndpointer).
An update carries a segment's text so far (partial) or its final text, with the segment's start and end in
seconds from the stream's start; there are no per-word times on this path. A tick's updates come as columns
(`Updates`: numpy arrays and one list of strings) because at tens of thousands of streams per tick even one
Python object per stream costs more than the GPU's work; iterating them yields `Update` tuples.
bench/stream.py measures it.
"""
from __future__ import annotations

from pathlib import Path
from dataclasses import dataclass
from typing import Iterator, NamedTuple

import numpy as np
import torch

from acoustic.checkpoint import load_model
from acoustic.features import frames_to_seconds
from acoustic.lockstep import LockstepEngine
from acoustic.streaming import ChunkConfig
from lm.batched_beam import BatchedPrefixBeam
from lm.batched_greedy import BatchedGreedy, ChunkEndpointer
from lm.beam import BeamOptions
from lm.rnnlm import load_lm
from lm.stream_beam import EndpointOptions
from minutes.pipeline import DEFAULT_BEAM, DEFAULT_LM
from minutes.streaming import StreamOptions, default_stream_model


class Update(NamedTuple):
    slot: int
    text: str  # the segment's words so far (partial) or its final words
    final: bool
    start: float  # seconds from the stream's first sample
    end: float


@dataclass(frozen=True)
class Updates:
    """One call's updates as columns, row i for one stream's segment: finals first, then partials."""

    slot: np.ndarray  # int64
    text: list[str]
    final: np.ndarray  # bool
    start: np.ndarray  # float64 seconds
    end: np.ndarray

    @classmethod
    def empty(cls) -> "Updates":
        return cls(np.zeros(0, np.int64), [], np.zeros(0, bool), np.zeros(0), np.zeros(0))

    def __len__(self) -> int:
        return len(self.text)

    def __iter__(self) -> Iterator[Update]:
        return map(Update._make, zip(self.slot.tolist(), self.text, self.final.tolist(), self.start.tolist(),
                                     self.end.tolist()))

    def __add__(self, other: "Updates") -> "Updates":
        return Updates(np.concatenate([self.slot, other.slot]), self.text + other.text,
                       np.concatenate([self.final, other.final]), np.concatenate([self.start, other.start]),
                       np.concatenate([self.end, other.end]))

    def select(self, rows: np.ndarray) -> "Updates":
        """The rows where the boolean mask `rows` is true."""
        return Updates(self.slot[rows], [t for t, keep in zip(self.text, rows) if keep], self.final[rows],
                       self.start[rows], self.end[rows])


class LockstepServer:
    def __init__(self, engine: LockstepEngine, decoder: BatchedGreedy | BatchedPrefixBeam,
                 endpointer: ChunkEndpointer, stride: int) -> None:
        self.engine, self.decoder, self.endpointer, self.stride = engine, decoder, endpointer, stride

    @classmethod
    def load(cls, model_path: str | Path | None = None, decoder: str = "greedy", lm_path: str | Path | None = None,
             beam: BeamOptions | None = None, options: StreamOptions = StreamOptions(), device: str = "cpu",
             half: bool = False, capacity: int = 64) -> "LockstepServer":
        """A log-mel streaming model (default: the shipped one) with greedy or beam+LM decoding (the shipped
        LM unless `lm_path`); `half` runs the acoustic model in float16 (CUDA)."""
        if decoder not in ("greedy", "beam"):
            raise ValueError(f"decoder must be 'greedy' or 'beam'; got {decoder!r}")
        model, vocab, features, _ = load_model(model_path or default_stream_model())
        stride = model.dims.stack * features.frame_hops
        step_s = frames_to_seconds(1, stride)
        chunks = ChunkConfig.from_seconds(step_s, options.chunk_s, options.lookahead_s)
        engine = LockstepEngine(model, features, chunks, device, capacity, half)
        endpoint = EndpointOptions(endpoint_frames=max(1, round(options.endpoint_s / step_s)),
                                   max_frames=round(options.max_segment_s / step_s))
        if decoder == "greedy":
            search: BatchedGreedy | BatchedPrefixBeam = BatchedGreedy(vocab, capacity, device)
        else:
            lm = load_lm(Path(lm_path) if lm_path else DEFAULT_LM)[0].to(device).eval()
            search = BatchedPrefixBeam(vocab, lm, beam or DEFAULT_BEAM, capacity, device)
        return cls(engine, search, ChunkEndpointer(endpoint, vocab.blank, capacity, device), stride)

    @property
    def tick_samples(self) -> int:
        """Samples each stream brings per tick (one chunk)."""
        return self.engine.tick_samples

    def open(self, count: int = 1) -> torch.Tensor:
        """Slots (count,) for new streams."""
        slots = self.engine.open(count)
        if isinstance(self.decoder, BatchedGreedy):
            self.decoder.grow(self.engine.capacity)
        self.endpointer.grow(self.engine.capacity)
        self.endpointer.reset(slots)
        self.decoder.reset(slots)
        return slots

    def tick(self, slots: torch.Tensor, audio: torch.Tensor) -> Updates:
        """One chunk of audio (N, tick_samples) per stream in `slots` -> updates of the streams that stepped."""
        return self._decode(*self.engine.tick(slots, audio))

    def close(self, slot: int) -> Updates:
        """End one stream: the rest of its audio decoded -> its last final update(s). Raises ValueError for a
        slot that is not open."""
        index = torch.tensor([slot], device=self.engine.device)
        rest = self.engine.close(slot).to(self.engine.device)
        updates = self._decode(index, rest[None]) if rest.shape[0] else Updates.empty()
        if bool(self.endpointer.speech[slot]):
            updates += self._final(index)
        return updates.select(updates.final)

    def _decode(self, slots: torch.Tensor, log_probs: torch.Tensor) -> Updates:
        """Decode one chunk of the slots' log-probs -> finals of ended segments, then partials: with greedy
        decoding only of streams whose text grew (a client already has the others), with beam+LM of all."""
        if not slots.numel():
            return Updates.empty()
        starts = self.endpointer.start[slots].clone()
        ended = self.endpointer.advance(slots, log_probs)
        grew = self.decoder.advance(slots, log_probs)  # greedy: (N,) bool; beam+LM: None
        finals = self._final(slots[ended], starts[ended]) if bool(ended.any()) else Updates.empty()
        live = slots[~ended if grew is None else ~ended & grew]
        return finals + self._updates(live, self.decoder.best(live), self.endpointer.start[live], False)

    def _final(self, slots: torch.Tensor, starts: torch.Tensor | None = None) -> Updates:
        """Final updates of these slots' segments (their searches start afresh)."""
        starts = self.endpointer.start[slots] if starts is None else starts
        texts = self.decoder.finish(slots)
        self.decoder.reset(slots)
        return self._updates(slots, texts, starts, True)

    def _updates(self, slots: torch.Tensor, texts: list[str], starts: torch.Tensor, final: bool) -> Updates:
        """The slots' updates, those with empty text left out; times in seconds from frame counts."""
        scale = frames_to_seconds(1, self.stride)
        begin = (starts.double() * scale).cpu().numpy().round(3)
        end = (self.endpointer.frame[slots].double() * scale).cpu().numpy().round(3)
        updates = Updates(slots.cpu().numpy(), texts, np.full(len(texts), final), begin, end)
        spoken = np.fromiter(map(bool, texts), bool, len(texts))
        return updates if spoken.all() else updates.select(spoken)
