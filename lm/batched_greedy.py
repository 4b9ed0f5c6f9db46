"""Greedy CTC decoding and silence endpointing for many streams at once, in device tensors.

The lock-step serving path (minutes.serving) hands every stream's chunk of log-probs (N, T, V) over in one
tensor; these classes keep each stream's decoding state as rows of tensors indexed by slot, so a tick costs
a handful of batched operations whatever N is, and only the characters emitted travel to the host.

Endpointing follows lm.stream_beam.StreamDecoder's rule (a frame is silent when P(blank) >= blank_prob; a
segment ends after `endpoint_frames` silent frames in a row after some speech, or at `max_frames`; leading
silence moves the segment start) at chunk granularity: a segment that reaches its endpoint inside a chunk
ends with that chunk, so the frames after the endpoint in the same chunk (at most chunk - endpoint_frames
frames, one with the defaults) join the ending segment instead of the next one.
"""
from __future__ import annotations

import math

import numpy as np
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
    """Best-path decoding of many streams: `advance` -> the characters each stream emitted in this chunk."""

    def __init__(self, vocab: CharVocab, capacity: int, device: torch.device | str = "cpu") -> None:
        self.vocab, self.device = vocab, torch.device(device)
        self.last = torch.full((capacity,), vocab.blank, dtype=torch.long, device=self.device)
        self.symbols = np.array(vocab.symbols, dtype=object)

    def grow(self, capacity: int) -> None:
        if self.last.shape[0] < capacity:
            self.last = torch.cat([self.last, self.last.new_full((capacity - self.last.shape[0],), self.vocab.blank)])

    def reset(self, slots: torch.Tensor) -> None:
        self.last[slots] = self.vocab.blank

    def advance(self, slots: torch.Tensor, log_probs: torch.Tensor) -> list[str]:
        """One chunk (N, T, V) -> the new characters of each of the N streams (repeats merged, no blanks)."""
        ids = log_probs.argmax(-1)  # (N, T)
        previous = torch.cat([self.last[slots, None], ids[:, :-1]], 1)
        emit = (ids != self.vocab.blank) & (ids != previous)
        self.last[slots] = ids[:, -1]
        rows, cols = emit.nonzero(as_tuple=True)  # row-major: by stream, then time
        rows, chars = rows.cpu().numpy(), ids[rows, cols].cpu().numpy()
        ends = np.cumsum(np.bincount(rows, minlength=len(slots))).tolist()
        text = "".join(self.symbols[chars])  # one character per emission: stream i's are text[ends[i-1]:ends[i]]
        return [text[a:b] for a, b in zip([0] + ends[:-1], ends)]
