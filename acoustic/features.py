"""Audio constants, log-mel features, CMVN and SpecAugment.

This module owns SAMPLE_RATE and HOP_LENGTH; every frame <-> seconds conversion goes through it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torchaudio

SAMPLE_RATE = 16000
HOP_LENGTH = 160  # 10 ms per feature frame


FRONTENDS = ("logmel", "whisper-encoder")
ENCODER_DIM = 384  # Whisper tiny.en encoder output size
ENCODER_HOPS = 2  # the Whisper encoder emits one frame per two 10 ms hops


@dataclass(frozen=True)
class FeatureConfig:
    """The front end: 80-dim log-mel (10 ms frames) or frozen Whisper tiny.en encoder states (20 ms frames)."""

    kind: str = "logmel"
    n_mels: int = 80
    n_fft: int = 400
    hop_length: int = HOP_LENGTH
    sample_rate: int = SAMPLE_RATE

    def __post_init__(self) -> None:
        if self.kind not in FRONTENDS:
            raise ValueError(f"unknown front end {self.kind!r}; choose one of: {', '.join(FRONTENDS)}")
        if self.sample_rate != SAMPLE_RATE or self.hop_length != HOP_LENGTH:
            raise ValueError(f"features must use sample_rate={SAMPLE_RATE} and hop_length={HOP_LENGTH}")

    @property
    def dim(self) -> int:
        """Size of one feature frame."""
        return ENCODER_DIM if self.kind == "whisper-encoder" else self.n_mels

    @property
    def frame_hops(self) -> int:
        """Feature frames are this many HOP_LENGTH hops apart."""
        return ENCODER_HOPS if self.kind == "whisper-encoder" else 1


def frames_to_seconds(frames: float, stride: int = 1) -> float:
    """Seconds at the start of feature frame `frames` (times `stride` for subsampled outputs)."""
    return frames * stride * HOP_LENGTH / SAMPLE_RATE


class LogMel(torch.nn.Module):
    """Waveform (batch, samples) -> log-mel (batch, frames, n_mels), frames = samples // hop + 1."""

    def __init__(self, config: FeatureConfig = FeatureConfig()) -> None:
        super().__init__()
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=config.sample_rate, n_fft=config.n_fft, hop_length=config.hop_length,
            n_mels=config.n_mels, power=2.0)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        mel = self.mel(waveform)  # (batch, n_mels, frames)
        return torch.log(mel + 1e-6).transpose(1, 2)  # -> (batch, frames, n_mels)


def spec_augment(features: torch.Tensor, generator: torch.Generator, freq_masks: int = 2,
                 freq_width: int = 15, time_masks: int = 4, time_fraction: float = 0.05) -> torch.Tensor:
    """Zero random frequency bands and time spans of one utterance (frames, n_mels); returns a copy."""
    out = features.clone()
    frames, bins = out.shape
    for _ in range(freq_masks):
        width = int(torch.randint(0, freq_width + 1, (1,), generator=generator))
        start = int(torch.randint(0, max(1, bins - width), (1,), generator=generator))
        out[:, start:start + width] = 0.0
    max_time = max(1, int(frames * time_fraction))
    for _ in range(time_masks):
        width = int(torch.randint(0, max_time + 1, (1,), generator=generator))
        start = int(torch.randint(0, max(1, frames - width), (1,), generator=generator))
        out[start:start + width, :] = 0.0
    return out
