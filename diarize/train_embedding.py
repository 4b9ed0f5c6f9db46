"""Train the speaker-embedding model (pyannote XVectorMFCC) for speaker discrimination with an additive
angular margin softmax over every training speaker (speechocean762 train, librispeech_speakers, LJSpeech).

Speed perturbation makes pseudo-speakers: each speed in `--speeds` (e.g. 0.9,1.0,1.1) turns every speaker into
a class of its own (a voice played 10 % faster sounds like another person), as speaker-recognition recipes do to
multiply scarce speakers. Resumable: rerun the same command; `EXP/last.pt` holds model, head, optimiser and step.
Time-boxed by --minutes. The equal error rate on held-out speechocean762 test speakers is logged at every
checkpoint.
    python -m diarize.train_embedding --data ../shared/data --exp exp/diar/emb --minutes 35
"""
from __future__ import annotations

import argparse
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from pyannote.audio.core.task import Problem, Resolution, Specifications
from pyannote.audio.models.embedding import XVectorMFCC

from acoustic.augment import speed_perturb
from acoustic.features import SAMPLE_RATE
from diarize.augment import add_noise, reverberate, rir_bank
from diarize.checkpoint import cosine_lr, resume_run, run_args, save_run
from diarize.data import Voices, heldout_voices, training_voices

log = logging.getLogger("diarize.train_embedding")


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


def embedding_model(crop: float) -> XVectorMFCC:
    """Untrained XVectorMFCC with the specifications a pyannote checkpoint needs."""
    model = XVectorMFCC(sample_rate=SAMPLE_RATE)
    model.specifications = Specifications(problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK,
                                          duration=crop)
    return model


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


@torch.inference_mode()
def equal_error_rate(model: XVectorMFCC, voices: Voices, per_speaker: int = 4, crop: float = 3.0) -> float:
    """EER (%) over all pairs of `per_speaker` fixed crops from each held-out speaker."""
    model.eval()
    rng = np.random.default_rng(123)
    n = int(crop * SAMPLE_RATE)
    embs, spks = [], []
    for spk, idx in sorted(voices.by_speaker().items()):
        for i in idx[:per_speaker]:
            x = random_crop(voices.take(i), n, rng)
            embs.append(model(torch.from_numpy(x)[None, None]))
            spks.append(spk)
    model.train()
    e = F.normalize(torch.cat(embs)).numpy()
    scores = e @ e.T
    same = np.equal.outer(spks, spks)
    upper = np.triu_indices(len(spks), 1)
    return eer(scores[upper], same[upper])


def eer(scores: np.ndarray, target: np.ndarray) -> float:
    """Equal error rate (%) of `scores` for binary `target` (True = same speaker)."""
    order = np.argsort(-scores)
    t = target[order]
    miss = 1 - np.cumsum(t) / t.sum()                 # targets scored below threshold
    fa = np.cumsum(~t) / (~t).sum()                    # non-targets above threshold
    k = np.argmin(np.abs(miss - fa))
    return float(100 * (miss[k] + fa[k]) / 2)


def train(args: argparse.Namespace, cfg: EmbeddingConfig) -> None:
    """Train until --minutes or cfg.steps, checkpointing to EXP/last.pt and exporting EXP/pytorch_model.bin."""
    exp = Path(args.exp)
    exp.mkdir(parents=True, exist_ok=True)
    voices = training_voices(Path(args.data), exp.parent / "train_voices.npz")
    heldout = heldout_voices(Path(args.data), exp.parent / "heldout_voices.npz")
    rirs = rir_bank(64, cache=exp.parent / "rirs.npz")
    speakers = sorted(voices.by_speaker())
    groups = [voices.by_speaker()[s] for s in speakers]
    model = embedding_model(cfg.crop)
    head = AAMSoftmax(model.dimension, len(speakers) * len(cfg.speeds), cfg.scale)
    opt = torch.optim.Adam(list(model.parameters()) + list(head.parameters()), lr=cfg.lr)
    step = resume_run(exp, model=model, head=head, opt=opt)
    rng = np.random.default_rng(cfg.seed + step)
    deadline = time.monotonic() + 60 * args.minutes
    losses = []
    while step < cfg.steps and time.monotonic() < deadline:
        x, y = make_batch(voices, groups, cfg, rirs, rng)
        cosine_lr(opt, cfg.lr, step, args.anneal_steps)
        loss = head(model(x), y, cfg.margin * min(1.0, step / cfg.warmup))
        opt.zero_grad(); loss.backward(); opt.step()
        losses.append(loss.item()); step += 1
        if step % cfg.save_every == 0:
            save(exp, model, head, opt, step, cfg)
            log.info("step %d loss %.3f eer %.2f%%", step, np.mean(losses), equal_error_rate(model, heldout))
            losses = []
    save(exp, model, head, opt, step, cfg)
    log.info("done at step %d; held-out EER %.2f%%", step, equal_error_rate(model, heldout))


def save(exp: Path, model, head, opt, step: int, cfg: EmbeddingConfig) -> None:
    save_run(exp, model, step, head=head.state_dict(), opt=opt.state_dict(), config=asdict(cfg))


def main() -> None:
    args = run_args(__doc__, "exp/diar/emb", 800, extra=embedding_options)
    train(args, EmbeddingConfig(speeds=tuple(float(s) for s in args.speeds.split(","))))


def embedding_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--speeds", default="1.0", help="comma-separated speed factors, one pseudo-speaker class each")


if __name__ == "__main__":
    main()
