"""Training crops for the speaker-embedding model: class-balanced batches of augmented 2 s crops (each speaker at
each speed a class of its own), and the additive angular margin softmax head. Needs no pyannote.audio (the lent
GPU machine has none; diarize.train_twin trains there)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from acoustic.augment import speed_perturb
from acoustic.features import SAMPLE_RATE
from diarize.augment import add_noise, reverberate
from diarize.data import Voices


@dataclass(frozen=True)
class EmbeddingConfig:
    crop: float = 2.0          # seconds per training crop
    batch_size: int = 64
    lr: float = 1e-3
    margin: float = 0.2        # AAM-softmax additive angle margin (radians), ramped in over warmup steps
    scale: float = 30.0
    warmup: int = 200
    steps: int = 100_000       # upper bound; --minutes usually stops first
    save_every: int = 100
    seed: int = 0
    speeds: tuple[float, ...] = (1.0,)  # speed perturbation; each speed is a pseudo-speaker class per speaker


class AAMSoftmax(torch.nn.Module):
    """Additive angular margin softmax (ArcFace) head: cosine logits with margin on the target class."""

    def __init__(self, dim: int, classes: int, scale: float):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(classes, dim) * 0.01)
        self.scale = scale

    def forward(self, emb: torch.Tensor, target: torch.Tensor, margin: float) -> torch.Tensor:
        cos = F.linear(F.normalize(emb), F.normalize(self.weight)).clamp(-1 + 1e-7, 1 - 1e-7)
        theta = torch.acos(cos.gather(1, target[:, None]))
        logits = cos.scatter(1, target[:, None], torch.cos(theta + margin))
        return F.cross_entropy(self.scale * logits, target)


def random_crop(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """A random `n`-sample window of `x` (zero-padded when shorter)."""
    if len(x) <= n:
        return np.pad(x, (0, n - len(x)))
    start = rng.integers(0, len(x) - n)
    return x[start: start + n]


def speed_crop(x: np.ndarray, n: int, speed: float, rng: np.random.Generator) -> np.ndarray:
    """A random `n`-sample window of `x` played at `speed` (resampled; pitch and tempo change together)."""
    y = speed_perturb(random_crop(x, int(np.ceil(n * speed)), rng), speed)
    return np.pad(y, (0, max(0, n - len(y))))[:n]


def make_batch(voices: Voices, groups: list[list[int]], cfg: EmbeddingConfig, rirs: list[np.ndarray],
               rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Class-balanced batch of augmented crops: (batch, 1, samples) waveforms and class indices, where class
    `k` is speaker `k % len(groups)` at speed `cfg.speeds[k // len(groups)]`."""
    n = int(cfg.crop * SAMPLE_RATE)
    labels = rng.integers(0, len(groups) * len(cfg.speeds), cfg.batch_size)
    crops = []
    for label in labels:
        spk, speed = label % len(groups), cfg.speeds[label // len(groups)]
        x = speed_crop(voices.take(int(rng.choice(groups[spk]))), n, speed, rng)
        if rng.random() < 0.4:
            x = reverberate(x, rirs[rng.integers(len(rirs))])
        if rng.random() < 0.5:
            x = add_noise(x, rng.uniform(5, 30), rng)
        crops.append(x * rng.uniform(0.2, 1.0) / (np.abs(x).max() + 1e-6))
    return torch.from_numpy(np.stack(crops))[:, None].float(), torch.from_numpy(labels)
