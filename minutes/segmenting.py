"""Where to cut long audio (quiet points), where a sentence ends within a chunk, and how to group words into
segments (pauses)."""
from __future__ import annotations

import numpy as np

from acoustic.features import SAMPLE_RATE
from minutes.model import Segment, Word

_FRAME = SAMPLE_RATE // 100  # 10 ms energy frames


def cut_points(audio: np.ndarray, max_samples: int) -> list[int]:
    """Sample offsets [0, ..., len(audio)] so that no piece exceeds max_samples; each cut falls on
    the quietest 10 ms frame of the last third of its window (a pause, where there is one)."""
    cuts = [0]
    while audio.size - cuts[-1] > max_samples:
        start = cuts[-1] + (2 * max_samples) // 3
        window = audio[start: cuts[-1] + max_samples]
        frames = window[: window.size // _FRAME * _FRAME].reshape(-1, _FRAME)
        quietest = int(np.argmin((frames ** 2).mean(axis=1)))
        cuts.append(start + quietest * _FRAME + _FRAME // 2)
    cuts.append(int(audio.size))
    return cuts


def true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, end) indices, end exclusive, of each run of true values in the boolean array `mask`."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def sentence_cuts(pause: np.ndarray, min_frames: int) -> list[int]:
    """Frame offsets [0, ..., len(pause)] that cut a chunk into sentences: the middle of every run of at least
    `min_frames` pause frames (booleans, one per frame) with speech on both sides."""
    middles = [(a + b) // 2 for a, b in true_runs(pause) if b - a >= min_frames and 0 < a and b < len(pause)]
    return [0, *middles, len(pause)]


def split_on_pauses(words: list[Word], pause_s: float, max_segment_s: float) -> list[Segment]:
    """Group consecutive words into segments, breaking at gaps >= pause_s or when a segment grows too long."""
    groups: list[list[Word]] = []
    for word in words:
        if groups and word.start - groups[-1][-1].end < pause_s and word.end - groups[-1][0].start <= max_segment_s:
            groups[-1].append(word)
        else:
            groups.append([word])
    return [Segment(start=g[0].start, end=g[-1].end, text=" ".join(w.word for w in g), words=tuple(g))
            for g in groups]
