"""Training chunks for the segmentation model: 10 s cut from meetings simulated on the fly, with per-frame
speaker-activity targets. Needs no pyannote.audio (the lent GPU machine has none): the frame times come from the
model (`PyanNet.receptive_field`, or a twin's stored copy, `diarize.twin`)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from acoustic.features import SAMPLE_RATE
from diarize.data import Voices
from diarize.simulate import MeetingConfig, simulate_meeting

MAX_SPEAKERS_PER_CHUNK = 3
MAX_SPEAKERS_PER_FRAME = 2


@dataclass(frozen=True)
class SegmentationConfig:
    duration: float = 10.0      # chunk seconds (the pipeline slides this window)
    lead: float = 4.0           # simulated seconds before the chunk, so chunks start mid-turn
    batch_size: int = 8
    lr: float = 1e-3
    steps: int = 100_000        # upper bound; --minutes usually stops first
    save_every: int = 25
    lstm_hidden: int = 128
    lstm_layers: int = 2
    overlap: float = 0.3        # probability that a turn overlaps the previous one
    max_overlap: float = 2.0    # seconds
    fill_gap: float = MeetingConfig.fill_gap  # the simulator's label convention (diarize.simulate docstring)
    pad: float = MeetingConfig.pad
    seed: int = 0


def chunk_targets(turns: list[tuple[float, float, str]], offset: float, times: np.ndarray) -> np.ndarray:
    """(frames, MAX_SPEAKERS_PER_CHUNK) 0/1 activity at frame times `times` (seconds from chunk start)
    of the turns shifted by `offset`; speakers in order of first appearance in the chunk."""
    y = np.zeros((len(times), MAX_SPEAKERS_PER_CHUNK), dtype=np.float32)
    order: list[str] = []
    for start, end, spk in turns:
        start, end = start - offset, end - offset
        if end <= times[0] or start >= times[-1]:
            continue
        if spk not in order:
            order.append(spk)
        k = order.index(spk)
        if k < MAX_SPEAKERS_PER_CHUNK:
            y[(times >= start) & (times < end), k] = 1.0
    return y


def make_batch(voices: Voices, times: np.ndarray, cfg: SegmentationConfig, rirs: list[np.ndarray],
               rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch, 1, samples) chunks of fresh simulated meetings with 1-3 speakers, and their targets at the
    model's frame times `times` (seconds from chunk start)."""
    n = int(cfg.duration * SAMPLE_RATE)
    meeting_cfg = MeetingConfig(duration=cfg.duration + cfg.lead, speakers=(1, MAX_SPEAKERS_PER_CHUNK), turn=(1, 2),
                                max_utterance=5.0, overlap=cfg.overlap, max_overlap=cfg.max_overlap,
                                pause=(0.0, 1.0), fill_gap=cfg.fill_gap, pad=cfg.pad)
    xs, ys = [], []
    for _ in range(cfg.batch_size):
        meeting = simulate_meeting(voices, meeting_cfg, rng, rirs)
        offset = rng.uniform(0, cfg.lead)
        start = int(offset * SAMPLE_RATE)
        xs.append(meeting.audio[start: start + n])
        ys.append(chunk_targets(meeting.turns, start / SAMPLE_RATE, times))
    return torch.from_numpy(np.stack(xs))[:, None], torch.from_numpy(np.stack(ys))
