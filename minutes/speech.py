"""Where the acoustic model hears speech: 1 - P(CTC blank) of every output frame, kept while transcribing and
handed to the diarization step, whose segmentation model calls far-field noise and distant talk "speech" that
the acoustic model (trained on speech it must spell) does not (bench/RESULTS.md, sessions 7-8)."""
from __future__ import annotations

import numpy as np
from scipy.ndimage import maximum_filter1d, uniform_filter1d


class SpeechTrack:
    """Per-frame speech probability of a recording, `step` s per frame, filled window by window.

    `add(start_s, probs, duration_s)` stores a window's values from `start_s` on; where windows overlap, the
    later one wins (the transcriber re-decodes a carried-over word in the next window). Frames no window covered
    (digital silence the transcriber skips) read 0."""

    def __init__(self, step: float) -> None:
        if step <= 0:
            raise ValueError("step must be positive")
        self.step = step
        self._parts: list[tuple[int, np.ndarray]] = []

    def add(self, start_s: float, probs: np.ndarray, duration_s: float) -> None:
        """A window of `duration_s` s from `start_s` on: its `probs`, cut to the window (padding frames off)."""
        frames = int(np.ceil(duration_s / self.step - 1e-6))
        self._parts.append((int(round(start_s / self.step)), np.asarray(probs[:frames], dtype=np.float32)))

    def values(self) -> np.ndarray:
        """(frames,) probabilities from time 0 to the end of the last window."""
        size = max((first + len(p) for first, p in self._parts), default=0)
        out = np.zeros(size, dtype=np.float32)
        for first, probs in self._parts:
            out[first: first + len(probs)] = probs
        return out

    def mask(self, frame_step: float, frames: int, smooth: float, threshold: float, dilate: float) -> np.ndarray:
        """(frames,) booleans at `frame_step` s: the mean probability over `smooth` s exceeds `threshold`,
        widened by `dilate` s on each side."""
        values = self.values()
        if not len(values):
            return np.zeros(frames, dtype=bool)
        width = max(1, int(round(smooth / self.step)))
        speech = uniform_filter1d(values, width, mode="constant") > threshold
        reach = int(round(dilate / self.step))
        speech = maximum_filter1d(speech, 2 * reach + 1) if reach else speech
        index = np.minimum((np.arange(frames) + 0.5) * frame_step / self.step, len(values) - 1).astype(int)
        inside = (np.arange(frames) + 0.5) * frame_step < len(values) * self.step
        return speech[index] & inside
