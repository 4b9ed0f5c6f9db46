"""Long audio as a stream of decoding windows: cut at pauses, a word cut at a window's end carried over.

The buffer never holds more than one window plus one incoming block, so memory stays bounded on a
4-hour recording, and every window knows its exact sample offset, so timestamps cannot drift.
"""
from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np

from minutes.segmenting import cut_points


class Windows:
    """Yields (offset in samples, window) from an iterable of sample blocks. Each window is at most
    max_samples long and, except the last, ends at the quietest 10 ms of its last third (the rule
    `cut_points` applies to a whole array). After a window the caller may `carry_from(sample)`: the next
    window then starts there instead (a word that touches the cut is decoded again, whole)."""

    def __init__(self, blocks: Iterable[np.ndarray], max_samples: int) -> None:
        self.blocks = iter(blocks)
        self.max_samples = max_samples
        self.buffer = np.zeros(0, dtype=np.float32)
        self.offset = 0  # absolute sample index of buffer[0]
        self.samples = 0  # samples read so far
        self.peak = 0.0  # largest absolute sample value read so far
        self.final = False  # whether the window just yielded ends the audio
        self._next_start: int | None = None

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        exhausted = False
        while True:
            while not exhausted and self.buffer.size <= self.max_samples:
                exhausted = not self._read()
            if self.buffer.size == 0:
                return
            end = self.buffer.size if self.buffer.size <= self.max_samples else \
                cut_points(self.buffer[: self.max_samples + 1], self.max_samples)[1]
            window, start = self.buffer[:end], self.offset
            self.final = exhausted and end == self.buffer.size
            self._next_start = start + end
            yield start, window
            self._advance(self._next_start)

    def carry_from(self, sample: int) -> None:
        """Start the next window at absolute `sample` (inside the window just yielded, after its start)."""
        assert self._next_start is not None and sample <= self._next_start
        self._next_start = sample

    def _read(self) -> bool:
        block = next(self.blocks, None)
        if block is None:
            return False
        self.samples += block.size
        if block.size:
            self.peak = max(self.peak, float(np.abs(block).max()))
        self.buffer = np.concatenate([self.buffer, block.astype(np.float32, copy=False)])
        return True

    def _advance(self, sample: int) -> None:
        self.buffer = self.buffer[sample - self.offset:].copy()  # copy: let the old buffer go
        self.offset = sample
