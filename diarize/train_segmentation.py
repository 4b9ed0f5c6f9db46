"""Train the speaker-segmentation model (pyannote PyanNet, powerset: up to 3 speakers per 10 s chunk, up to 2
at once, so overlap is a class of its own) on simulated meetings drawn on the fly (diarize.simulate).

The loss is pyannote's: permutation-invariant negative log-likelihood of the powerset classes, exactly as
pyannote.audio.tasks.SpeakerDiarization computes it, in a plain loop (no Lightning: faster on one CPU thread).
Resumable: rerun the same command; `EXP/last.pt` holds model, optimiser and step. Time-boxed by --minutes.
    python -m diarize.train_segmentation --data ../shared/data --exp exp/diar/seg --minutes 35
"""
from __future__ import annotations

import argparse
import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from pyannote.audio.core.task import Problem, Resolution, Specifications
from pyannote.audio.models.segmentation import PyanNet
from pyannote.audio.utils.loss import nll_loss
from pyannote.audio.utils.permutation import permutate
from pyannote.audio.utils.powerset import Powerset

from acoustic.features import SAMPLE_RATE
from diarize.augment import rir_bank
from diarize.checkpoint import cosine_lr, resume_run, run_args, save_run
from diarize.chunks import MAX_SPEAKERS_PER_CHUNK, MAX_SPEAKERS_PER_FRAME, SegmentationConfig, make_batch
from diarize.data import training_voices

log = logging.getLogger("diarize.train_segmentation")


def segmentation_model(cfg: SegmentationConfig) -> PyanNet:
    """Untrained PyanNet with powerset specifications (7 classes: none, 3 singles, 3 pairs)."""
    model = PyanNet(sincnet={"stride": 10}, lstm={"hidden_size": cfg.lstm_hidden, "num_layers": cfg.lstm_layers},
                    linear={"hidden_size": 128, "num_layers": 2}, sample_rate=SAMPLE_RATE)
    model.specifications = Specifications(
        problem=Problem.MONO_LABEL_CLASSIFICATION, resolution=Resolution.FRAME, duration=cfg.duration,
        min_duration=cfg.duration, warm_up=(0.0, 0.0),
        classes=[f"speaker#{i + 1}" for i in range(MAX_SPEAKERS_PER_CHUNK)],
        powerset_max_classes=MAX_SPEAKERS_PER_FRAME, permutation_invariant=True)
    model.setup()
    for module in (model.sincnet.wav_norm1d, model.sincnet.conv1d[0]):
        module.requires_grad_(False)  # fixed mel-spaced sinc filterbank: no backward through the waveform
    return model


def frame_times(model: PyanNet, cfg: SegmentationConfig) -> np.ndarray:
    """Centre times (s from chunk start) of the model's output frames on a `cfg.duration` chunk."""
    frames = model.receptive_field
    return np.array([frames[i].middle for i in range(model.num_frames(int(cfg.duration * SAMPLE_RATE)))])


def compute_loss(model: PyanNet, powerset: Powerset, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Permutation-invariant powerset NLL (pyannote's SpeakerDiarization.training_step)."""
    prediction = model(x)
    multilabel = powerset.to_multilabel(prediction)
    permutated, _ = permutate(multilabel, y)
    target = torch.argmax(powerset.to_powerset(permutated.float()), dim=-1)
    return nll_loss(prediction, target, weight=torch.ones(*prediction.shape[:2], 1))


@torch.inference_mode()
def validate(model: PyanNet, powerset: Powerset, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Mean loss over fixed validation batches."""
    model.eval()
    loss = float(np.mean([compute_loss(model, powerset, x, y).item() for x, y in batches]))
    model.train()
    return loss


def train(args: argparse.Namespace, cfg: SegmentationConfig) -> None:
    """Train until --minutes or cfg.steps; EXP/last.pt (resumable) and EXP/pytorch_model.bin (pyannote, fp16)."""
    exp = Path(args.exp)
    exp.mkdir(parents=True, exist_ok=True)
    voices = training_voices(Path(args.data), exp.parent / "train_voices.npz")
    rirs = rir_bank(64, cache=exp.parent / "rirs.npz")
    model = segmentation_model(cfg)
    powerset = Powerset(MAX_SPEAKERS_PER_CHUNK, MAX_SPEAKERS_PER_FRAME)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    step = resume_run(exp, model=model, opt=opt)
    valid_rng = np.random.default_rng(10_000)
    times = frame_times(model, cfg)
    valid = [make_batch(voices, times, cfg, rirs, valid_rng) for _ in range(2)]
    rng = np.random.default_rng(cfg.seed + step)
    deadline = time.monotonic() + 60 * args.minutes
    losses = []
    while step < cfg.steps and time.monotonic() < deadline:
        x, y = make_batch(voices, times, cfg, rirs, rng)
        cosine_lr(opt, cfg.lr, step, args.anneal_steps)
        loss = compute_loss(model, powerset, x, y)
        opt.zero_grad(); loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        losses.append(loss.item()); step += 1
        if step % cfg.save_every == 0:
            save(exp, model, opt, step, cfg)
            log.info("step %d loss %.3f valid %.3f", step, np.mean(losses), validate(model, powerset, valid))
            losses = []
    save(exp, model, opt, step, cfg)
    log.info("done at step %d; valid loss %.3f", step, validate(model, powerset, valid))


def save(exp: Path, model: PyanNet, opt, step: int, cfg: SegmentationConfig) -> None:
    save_run(exp, model, step, opt=opt.state_dict(), config=asdict(cfg))


def main() -> None:
    train(run_args(__doc__, "exp/diar/seg", 600), SegmentationConfig())


if __name__ == "__main__":
    main()
