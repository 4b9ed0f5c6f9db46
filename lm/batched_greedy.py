"""Greedy CTC decoding and silence endpointing for many streams at once, in device tensors.

The lock-step serving path (minutes.serving) hands every stream's chunk of log-probs (N, T, V) over in one
tensor; these classes keep each stream's decoding state as rows of tensors indexed by slot, so a tick costs
a handful of batched operations whatever N is, and texts travel to the host in one copy per call, as code
points read by numpy as strings (no per-character Python).

Endpointing follows lm.stream_beam.StreamDecoder's rule (a frame is silent when P(blank) >= blank_prob; a
segment ends after `endpoint_frames` silent frames in a row after some speech, or at `max_frames`; leading
silence moves the segment start) at chunk granularity: a segment that reaches its endpoint inside a chunk
ends with that chunk, so the frames after the endpoint in the same chunk (at most chunk - endpoint_frames
frames, one with the defaults) join the ending segment instead of the next one.
"""
from __future__ import annotations

import math

import torch

from lm.stream_beam import EndpointOptions
from lm.vocab import CharVocab


class ChunkEndpointer:
    """Per-slot segment state: speech seen, silent frames at the end, segment start frame, frames seen."""

    def __init__(self, options: EndpointOptions, blank: int, capacity: int, device: torch.device | str) -> None:
        self.options, self.blank, self.device = options, blank, torch.device(device)
        self.silence = math.log(options.blank_prob)
        self.speech = torch.zeros(capacity, dtype=torch.bool, device=self.device)
        self.trailing = torch.zeros(capacity, dtype=torch.long, device=self.device)
        self.start = torch.zeros(capacity, dtype=torch.long, device=self.device)
        self.frame = torch.zeros(capacity, dtype=torch.long, device=self.device)

    def grow(self, capacity: int) -> None:
        for name in ("speech", "trailing", "start", "frame"):
            old = getattr(self, name)
            if old.shape[0] < capacity:
                setattr(self, name, torch.cat([old, old.new_zeros(capacity - old.shape[0])]))

    def reset(self, slots: torch.Tensor) -> None:
        for tensor in (self.speech, self.trailing, self.start, self.frame):
            tensor[slots] = 0

    def advance(self, slots: torch.Tensor, log_probs: torch.Tensor) -> torch.Tensor:
        """One chunk (N, T, V) -> ended (N,) bool: the segment ended in this chunk (its state is then reset to
        a new segment starting after the chunk)."""
        steps = log_probs.shape[1]
        silent = log_probs[..., self.blank] >= self.silence  # (N, T)
        t = torch.arange(steps, device=self.device)
        last_sound = torch.where(silent, -1, t).cummax(1).values  # last non-silent frame so far, -1: none
        run = torch.where(last_sound >= 0, t - last_sound, self.trailing[slots, None] + t + 1)
        speech_t = self.speech[slots, None] | (last_sound >= 0)
        frame_end = self.frame[slots] + steps
        # leading silence moves the start: to the first non-silent frame of this chunk, or past the chunk
        first_sound = torch.where(silent, steps, t).min(1).values
        start = torch.where(self.speech[slots], self.start[slots], self.frame[slots] + first_sound)
        ended = (speech_t & (run >= self.options.endpoint_frames)).any(1)
        ended |= speech_t[:, -1] & (frame_end - start >= self.options.max_frames)
        self.speech[slots] = speech_t[:, -1] & ~ended
        self.trailing[slots] = torch.where(ended, 0, run[:, -1])
        self.start[slots] = torch.where(ended, frame_end, start)
        self.frame[slots] = frame_end
        return ended


class BatchedGreedy:
    """Best-path decoding of many streams, each stream's segment text kept on the device.

    `advance` merges repeats, drops blanks and leading or doubled spaces, and appends each stream's new
    characters (as Unicode code points) to its row of a (capacity, width) buffer; `best` copies the rows of
    the asked slots to the host in one transfer and reads them as strings, so no per-character Python runs.
    Same interface as lm.batched_beam.BatchedPrefixBeam (advance, best, finish, reset)."""

    def __init__(self, vocab: CharVocab, capacity: int, device: torch.device | str = "cpu", width: int = 64) -> None:
        self.vocab, self.device = vocab, torch.device(device)
        self.space = vocab.symbols.index(" ")
        self.codes = torch.tensor([0 if i == vocab.blank else ord(s) for i, s in enumerate(vocab.symbols)],
                                  dtype=torch.int32, device=self.device)
        self.last = torch.full((capacity,), vocab.blank, dtype=torch.long, device=self.device)  # last frame's id
        self.tail = torch.full((capacity,), self.space, dtype=torch.long, device=self.device)  # last emission
        self.length = torch.zeros(capacity, dtype=torch.long, device=self.device)
        self.chars = torch.zeros(capacity, width, dtype=torch.int32, device=self.device)

    def grow(self, capacity: int) -> None:
        extra = capacity - self.last.shape[0]
        if extra > 0:
            self.last = torch.cat([self.last, self.last.new_full((extra,), self.vocab.blank)])
            self.tail = torch.cat([self.tail, self.tail.new_full((extra,), self.space)])
            self.length = torch.cat([self.length, self.length.new_zeros(extra)])
            self.chars = torch.cat([self.chars, self.chars.new_zeros(extra, self.chars.shape[1])])

    def reset(self, slots: torch.Tensor) -> None:
        """Start new segments in these slots."""
        self.last[slots] = self.vocab.blank
        self.tail[slots] = self.space
        self.length[slots] = 0

    def advance(self, slots: torch.Tensor, log_probs: torch.Tensor) -> torch.Tensor:
        """One chunk (N, T, V) -> (N,) bool: the stream's text grew."""
        ids = log_probs.argmax(-1)  # (N, T)
        emit = (ids != self.vocab.blank) & (ids != torch.cat([self.last[slots, None], ids[:, :-1]], 1))
        self.last[slots] = ids[:, -1]
        keep = self._without_extra_spaces(slots, ids, emit)
        start = self.length[slots]
        added = keep.sum(1)
        self._fit(int((start + added).max()) if slots.numel() else 0)
        rows, cols = keep.nonzero(as_tuple=True)
        position = (start[:, None] + keep.cumsum(1) - 1)[rows, cols]
        self.chars[slots[rows], position] = self.codes[ids[rows, cols]]
        self.length[slots] = start + added
        return added > 0

    def _without_extra_spaces(self, slots: torch.Tensor, ids: torch.Tensor, emit: torch.Tensor) -> torch.Tensor:
        """The emissions to keep: a space right after a space (or at a segment's start) is dropped. Updates the
        slots' last emission."""
        t = torch.arange(ids.shape[1], device=self.device)
        latest = torch.where(emit, t, -1).cummax(1).values  # each frame's latest emission so far (-1: none)
        before = torch.cat([latest.new_full((ids.shape[0], 1), -1), latest[:, :-1]], 1)
        previous = torch.where(before >= 0, ids.gather(1, before.clamp(min=0)), self.tail[slots, None])
        self.tail[slots] = torch.where(latest[:, -1] >= 0, ids.gather(1, latest[:, -1:].clamp(min=0))[:, 0],
                                       self.tail[slots])
        return emit & ~((ids == self.space) & (previous == self.space))

    def _fit(self, width: int) -> None:
        if width > self.chars.shape[1]:
            grown = max(width, 2 * self.chars.shape[1])
            self.chars = torch.cat([self.chars, self.chars.new_zeros(self.chars.shape[0], grown - self.chars.shape[1])], 1)

    def best(self, slots: torch.Tensor) -> list[str]:
        """Each slot's segment text so far (a trailing space left out)."""
        if not slots.numel():
            return []
        length = self.length[slots]
        width = max(1, int(length.max()))
        rows = self.chars[slots, :width]
        trailing = rows.gather(1, (length[:, None] - 1).clamp(min=0))[:, 0] == ord(" ")
        length = length - (trailing & (length > 0)).long()
        rows = torch.where(torch.arange(width, device=self.device) < length[:, None], rows, 0)
        return rows.cpu().numpy().view(f"<U{width}").ravel().tolist()

    def finish(self, slots: torch.Tensor) -> list[str]:
        """The segments' final texts (greedy has nothing to close); reset() the slots to start new ones."""
        return self.best(slots)
