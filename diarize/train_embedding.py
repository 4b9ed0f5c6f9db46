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
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from pyannote.audio.core.task import Problem, Resolution, Specifications
from pyannote.audio.models.embedding import XVectorMFCC

from acoustic.features import SAMPLE_RATE
from diarize.augment import rir_bank
from diarize.checkpoint import cosine_lr, resume_run, run_args, save_run
from diarize.crops import AAMSoftmax, EmbeddingConfig, make_batch, random_crop
from diarize.data import Voices, heldout_voices, training_voices

log = logging.getLogger("diarize.train_embedding")


def embedding_model(crop: float) -> XVectorMFCC:
    """Untrained XVectorMFCC with the specifications a pyannote checkpoint needs."""
    model = XVectorMFCC(sample_rate=SAMPLE_RATE)
    model.specifications = Specifications(problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK,
                                          duration=crop)
    return model


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
