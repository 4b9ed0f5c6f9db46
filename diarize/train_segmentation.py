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
from dataclasses import asdict, dataclass
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
from diarize.data import Voices, training_voices
from diarize.simulate import MeetingConfig, simulate_meeting

log = logging.getLogger("diarize.train_segmentation")

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
    fill_gap: float = MeetingConfig.fill_gap  # the simulator's label convention (diarize.simulate docstring)
    pad: float = MeetingConfig.pad
    seed: int = 0


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


def make_batch(voices: Voices, model: PyanNet, cfg: SegmentationConfig, rirs: list[np.ndarray],
               rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch, 1, samples) chunks of fresh simulated meetings with 1-3 speakers, and their targets."""
    n = int(cfg.duration * SAMPLE_RATE)
    frames = model.receptive_field
    times = np.array([frames[i].middle for i in range(model.num_frames(n))])
    meeting_cfg = MeetingConfig(duration=cfg.duration + cfg.lead, speakers=(1, MAX_SPEAKERS_PER_CHUNK), turn=(1, 2),
                                max_utterance=5.0, overlap=0.3, pause=(0.0, 1.0), fill_gap=cfg.fill_gap, pad=cfg.pad)
    xs, ys = [], []
    for _ in range(cfg.batch_size):
        meeting = simulate_meeting(voices, meeting_cfg, rng, rirs)
        offset = rng.uniform(0, cfg.lead)
        start = int(offset * SAMPLE_RATE)
        xs.append(meeting.audio[start: start + n])
        ys.append(chunk_targets(meeting.turns, start / SAMPLE_RATE, times))
    return torch.from_numpy(np.stack(xs))[:, None], torch.from_numpy(np.stack(ys))


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
    valid = [make_batch(voices, model, cfg, rirs, valid_rng) for _ in range(2)]
    rng = np.random.default_rng(cfg.seed + step)
    deadline = time.monotonic() + 60 * args.minutes
    losses = []
    while step < cfg.steps and time.monotonic() < deadline:
        x, y = make_batch(voices, model, cfg, rirs, rng)
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
