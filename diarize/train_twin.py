"""Train the diarization models on a lent GPU, where pyannote.audio is not installed, through their twins
(`diarize.twin`): segmentation models side by side on the same stream of simulated chunks, or the speaker
embedding, on batches made by worker processes.

Three steps, the middle one on the GPU machine (its working tree is limited to 64 MiB, so the voices travel as
one Opus file, about 22 MB for 3.7 h):
    python -m diarize.train_twin pack --out .gpu/seg ft=models/diarization/segmentation/pytorch_model.bin big=4x128
    python -m diarize.train_twin train --pack .gpu/seg --exp /tmp/seg --weights-to $OUT --minutes 6 --device cuda
    python -m diarize.train_twin export exp/gpu_seg/ft.pt exp/diar/seg_gpu_ft     # pytorch_model.bin for pyannote
`embed` trains the speaker-embedding twin from scratch on the same pack (no initial runs needed):
    python -m diarize.train_twin embed --pack .gpu/seg --exp /tmp/emb --weights-to $OUT --minutes 5 --device cuda
A segmentation run is a pyannote checkpoint to fine-tune or `LAYERSxHIDDEN` for a fresh PyanNet. Training is
time-boxed (the learning rate follows a cosine over --minutes) and resumable (rerun with the same --exp)."""
from __future__ import annotations

import argparse
import logging
import time
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import soundfile as sf
import torch
from torch import nn

from acoustic.features import SAMPLE_RATE
from diarize.augment import rir_bank, save_rirs
from diarize.checkpoint import cosine_lr
from diarize.chunks import SegmentationConfig, make_batch
from diarize.crops import AAMSoftmax, EmbeddingConfig
from diarize.crops import make_batch as crop_batch
from diarize.data import Voices, training_voices
from diarize.twin import FILTERBANK, MAPPING, EmbeddingTwin, SegmentationTwin, powerset_loss

log = logging.getLogger("diarize.train_twin")
OPUS_LEVEL = 0.97  # libsndfile's Opus compression level: about 13 kbit/s, correlation 0.98 with the original


def pack(args: argparse.Namespace) -> None:
    """Write the voices (Opus + index), the impulse responses and each run's initial twin to --out."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    voices = training_voices(Path(args.data), Path(args.cache) / "train_voices.npz")
    write_voices(voices, rir_bank(64, cache=Path(args.cache) / "rirs.npz"), out)
    write_runs(dict(spec.split("=", 1) for spec in args.runs), out)
    log.info("packed %d voices and runs %s into %s", len(voices.audio), ", ".join(args.runs), out)


def write_voices(voices: Voices, rirs: list[np.ndarray], out: Path) -> None:
    """voices.ogg (every utterance, end to end), voices.npz (lengths, speakers) and rirs.npz in `out`."""
    sf.write(out / "voices.ogg", np.concatenate(voices.audio), SAMPLE_RATE, format="OGG", subtype="OPUS",
             compression_level=OPUS_LEVEL)
    np.savez(out / "voices.npz", lengths=np.array([len(a) for a in voices.audio]), speakers=np.array(voices.speakers))
    save_rirs(rirs, out / "rirs.npz")


def write_runs(sources: dict[str, str], out: Path) -> None:
    """runs.pt in `out`: each run's twin config and initial state (name -> pyannote checkpoint or LAYERSxHIDDEN),
    and the model's frame times on a training chunk."""
    from diarize.train_segmentation import frame_times, segmentation_model  # pyannote: only where packing
    from diarize.twin import to_twin, twin_config

    runs = {}
    for name, source in sources.items():
        model = initial_model(source, segmentation_model)
        state = {k: v.half() if v.is_floating_point() and not sinc(k) else v
                 for k, v in to_twin(model).state_dict().items()}  # fp16 but the fixed filters: the pack stays small
        runs[name] = {"config": twin_config(model), "state": state}
    torch.save({"runs": runs, "times": frame_times(model, SegmentationConfig())}, out / "runs.pt")


def sinc(key: str) -> bool:
    """Whether a twin state key is part of the fixed sinc filterbank (kept in fp32)."""
    return key == "sinc_filters" or key.startswith(FILTERBANK)


def initial_model(source: str, segmentation_model):
    """A pyannote checkpoint (fine-tuning) or a fresh PyanNet of `LAYERSxHIDDEN` BiLSTM layers."""
    if "x" in source and not Path(source).exists():
        layers, hidden = (int(v) for v in source.split("x"))
        torch.manual_seed(0)
        return segmentation_model(SegmentationConfig(lstm_layers=layers, lstm_hidden=hidden))
    from pyannote.audio import Model

    return Model.from_pretrained(source).float()


def unpack_voices(folder: Path) -> Voices:
    """The voices written by `pack` (lengths re-fitted if the decoder returns a few samples more or less)."""
    index = np.load(folder / "voices.npz")
    audio, _ = sf.read(folder / "voices.ogg", dtype="int16")
    lengths = index["lengths"]
    ends = np.minimum(np.cumsum(lengths), len(audio))
    parts = np.split(audio, ends[:-1])
    return Voices(parts, [str(s) for s in index["speakers"]])


class BatchStream(torch.utils.data.IterableDataset):
    """Endless batches `draw(rng)`; each worker draws from its own seed."""

    def __init__(self, draw: Callable[[np.random.Generator], tuple[torch.Tensor, torch.Tensor]], seed: int) -> None:
        self.draw, self.seed = draw, seed

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([self.seed, info.id if info else 0])
        while True:
            yield self.draw(rng)


def batches(draw: Callable, seed: int, workers: int, device: str) -> torch.utils.data.DataLoader:
    """Batches from `workers` processes (or this one, with 0)."""
    return torch.utils.data.DataLoader(BatchStream(draw, seed), batch_size=None, num_workers=workers,
                                       pin_memory=device != "cpu", prefetch_factor=4 if workers else None,
                                       worker_init_fn=lambda _: torch.set_num_threads(1))


class Run:
    """One model in training (and its loss head, if any): optimiser, step, elapsed seconds; resumable from
    EXP/<name>.pt. Peak rate `lr`, linear warm-up, then a cosine over the time budget."""

    def __init__(self, name: str, model: nn.Module, config: dict, exp: Path, lr: float, device: str,
                 head: nn.Module | None = None) -> None:
        self.name, self.path, self.lr, self.config = name, exp / f"{name}.pt", lr, config
        self.model, self.head = model.to(device), head.to(device) if head is not None else None
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = torch.optim.Adam(params + (list(self.head.parameters()) if self.head else []), lr=lr)
        self.step, self.elapsed = 0, 0.0
        if self.path.exists():
            saved = torch.load(self.path, map_location=device, weights_only=False)
            self.model.load_state_dict(saved["state"])
            if self.head is not None:
                self.head.load_state_dict(saved["head"])
            self.opt.load_state_dict(saved["opt"])
            self.step, self.elapsed = saved["step"], saved["elapsed"]
            log.info("%s: resumed at step %d", name, self.step)

    def train_step(self, loss_of: Callable[[], torch.Tensor], progress: float, warmup: int) -> float:
        cosine_lr(self.opt, self.lr * min(1.0, (self.step + 1) / warmup), progress, 1.0)
        loss = loss_of()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
        self.opt.step()
        self.step += 1
        return loss.item()

    def save(self, elapsed: float, weights_to: Path | None) -> None:
        """EXP/<name>.pt (resumable), and the weights alone in fp16 but the fixed sinc filters (what `export`
        reads) as WEIGHTS_TO/<name>.pt."""
        state = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        full = {"state": state, "step": self.step, "config": self.config, "opt": self.opt.state_dict(),
                "elapsed": elapsed, "head": self.head.state_dict() if self.head is not None else None}
        targets = [(self.path, full)]
        if weights_to is not None:
            half = {k: v.half() if v.is_floating_point() and not sinc(k) else v for k, v in state.items()}
            targets.append((weights_to / self.path.name, {"state": half, "step": self.step, "config": self.config}))
        for path, content in targets:
            torch.save(content, path.with_suffix(".tmp"))
            path.with_suffix(".tmp").replace(path)


def segmentation_run(name: str, spec: dict, exp: Path, lr: float, device: str) -> Run:
    """A run of the segmentation twin packed as `spec` (config and initial state)."""
    state = {k: v.float() for k, v in spec["state"].items()}
    filterbank = {k[len(FILTERBANK):]: v for k, v in state.items() if k.startswith(FILTERBANK)}
    model = SegmentationTwin(state["sinc_filters"], filterbank, **spec["config"])
    model.load_state_dict(state)
    return Run(name, model, spec["config"], exp, lr, device)


@torch.no_grad()
def evaluate(model: SegmentationTwin, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, float]:
    """Mean loss, and how the predicted speaker count fares on frames where 2 speakers talk: recall of
    'two speakers' there and precision of 'two speakers' predictions."""
    model.eval()
    losses, hits, truth, said = [], 0, 0, 0
    for x, y in batches:
        log_probs = model(x)
        losses.append(powerset_loss(log_probs, y).item())
        count = MAPPING.to(x.device)[log_probs.argmax(-1)].sum(-1)
        two = y.sum(-1) >= 2
        hits += int((two & (count >= 2)).sum()); truth += int(two.sum()); said += int((count >= 2).sum())
    model.train()
    return {"loss": float(np.mean(losses)), "overlap_recall": hits / max(truth, 1),
            "overlap_precision": hits / max(said, 1)}


def train(args: argparse.Namespace) -> None:
    folder, exp = Path(args.pack), Path(args.exp)
    make_dirs(exp, args.weights_to)
    packed = torch.load(folder / "runs.pt", weights_only=False)
    voices, times = unpack_voices(folder), packed["times"]
    rirs = rir_bank(cache=folder / "rirs.npz")
    cfg = replace(SegmentationConfig(), batch_size=args.batch, overlap=args.overlap, max_overlap=args.max_overlap)
    chunks = {k: v for k, v in asdict(cfg).items() if k in ("duration", "lead", "batch_size", "overlap", "max_overlap")}
    hours = sum(map(len, voices.audio)) / SAMPLE_RATE / 3600
    log.info("%d voices, %.2f h; chunks %s", len(voices.audio), hours, chunks)
    runs = [segmentation_run(name, spec, exp, args.lr.get(name, args.default_lr), args.device)
            for name, spec in packed["runs"].items() if not args.only or name in args.only]
    valid_rng = np.random.default_rng(10_000)
    valid = [tuple(t.to(args.device) for t in make_batch(voices, times, cfg, rirs, valid_rng))
             for _ in range(args.valid_batches)]
    for run in runs:
        log.info("%s (%s, peak lr %g) start: %s", run.name, run.config, run.lr, evaluate(run.model, valid))
    stream = batches(partial(make_batch, voices, times, cfg, rirs), args.seed + runs[0].step, args.workers, args.device)
    steps = fit(runs, stream, lambda run, x, y: powerset_loss(run.model(x), y), args,
                lambda run: f"valid {evaluate(run.model, valid)}")
    log.info("done: %d steps of %d chunks (%.1f h of audio) per run", steps, cfg.batch_size,
             steps * cfg.batch_size * cfg.duration / 3600)


def fit(runs: list[Run], stream: Iterable, loss_of: Callable, args: argparse.Namespace,
        report: Callable[[Run], str]) -> int:
    """Train every run on each batch of `stream` (`loss_of(run, x, y)`) until --minutes have passed (counting
    earlier sessions of a resumed run); every --log-every steps and at the end log `report(run)` and save."""
    budget, start, base = 60 * args.minutes, time.monotonic(), runs[0].elapsed
    losses: dict[str, list[float]] = {run.name: [] for run in runs}
    for x, y in stream:
        elapsed = base + time.monotonic() - start
        x, y = x.to(args.device, non_blocking=True), y.to(args.device, non_blocking=True)
        for run in runs:
            losses[run.name].append(run.train_step(partial(loss_of, run, x, y), elapsed / budget, args.warmup))
        if runs[0].step % args.log_every == 0 or elapsed >= budget:
            for run in runs:
                log.info("%s step %d (%.0f s) train loss %.3f %s", run.name, run.step, elapsed,
                         np.mean(losses[run.name]), report(run))
                losses[run.name] = []
                run.save(elapsed, args.weights_to)
        if elapsed >= budget:
            return runs[0].step
    return runs[0].step


def embed(args: argparse.Namespace) -> None:
    """Train the speaker-embedding twin from scratch (AAM-softmax over every packed speaker at each speed)."""
    folder = Path(args.pack)
    make_dirs(Path(args.exp), args.weights_to)
    voices, rirs = unpack_voices(folder), rir_bank(cache=folder / "rirs.npz")
    groups = [group for _, group in sorted(voices.by_speaker().items())]
    cfg = EmbeddingConfig(batch_size=args.batch, speeds=tuple(args.speeds))
    head = AAMSoftmax(512, len(groups) * len(cfg.speeds), cfg.scale)
    run = Run("emb", EmbeddingTwin(), {"speeds": cfg.speeds}, Path(args.exp), args.default_lr, args.device, head)
    log.info("%d speakers x %d speeds, batches of %d %.0f s crops, peak lr %g", len(groups), len(cfg.speeds),
             cfg.batch_size, cfg.crop, run.lr)
    stream = batches(partial(crop_batch, voices, groups, cfg, rirs), args.seed + run.step, args.workers, args.device)
    margin = lambda step: cfg.margin * min(1.0, step / cfg.warmup)  # noqa: E731
    steps = fit([run], stream, lambda r, x, y: r.head(r.model(x), y, margin(r.step)), args, lambda r: "")
    log.info("done: %d steps of %d crops", steps, cfg.batch_size)


def make_dirs(*paths: Path | None) -> None:
    for path in paths:
        if path is not None:
            path.mkdir(parents=True, exist_ok=True)


def export(args: argparse.Namespace) -> None:
    """A trained twin as the pyannote checkpoint `OUT/pytorch_model.bin` (fp16), ready for diarize.package."""
    from diarize.checkpoint import save_pyannote_model
    from diarize.train_embedding import embedding_model
    from diarize.train_segmentation import segmentation_model
    from diarize.twin import from_twin

    saved = torch.load(args.twin, map_location="cpu", weights_only=False)
    config = saved["config"]
    if "speeds" in config:  # an embedding twin: the same state dict as XVectorMFCC's
        model = embedding_model(EmbeddingConfig().crop)
        model.load_state_dict({k: v.float() for k, v in saved["state"].items()})
    else:
        cfg = SegmentationConfig(lstm_hidden=config["lstm_hidden"], lstm_layers=config["lstm_layers"])
        model = from_twin({k: v.float() for k, v in saved["state"].items()}, segmentation_model(cfg))
    save_pyannote_model(model, Path(args.out) / "pytorch_model.bin")
    log.info("step %d -> %s", saved["step"], Path(args.out) / "pytorch_model.bin")


def parse_lr(values: list[str]) -> dict[str, float]:
    return {name: float(lr) for name, lr in (v.split("=") for v in values)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("pack", help="voices, impulse responses and initial twins into one folder")
    a.add_argument("runs", nargs="+", help="NAME=pyannote checkpoint or NAME=LAYERSxHIDDEN")
    a.add_argument("--data", default="../shared/data")
    a.add_argument("--cache", default="exp/diar", help="where training_voices and rir_bank cache their results")
    a.add_argument("--out", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--pack", required=True)
    common.add_argument("--exp", required=True)
    common.add_argument("--weights-to", type=Path, help="also write each run's weights alone here (small, for export)")
    common.add_argument("--minutes", type=float, default=6.0)
    common.add_argument("--device", default="cuda")
    common.add_argument("--workers", type=int, default=14)
    common.add_argument("--default-lr", type=float, default=1e-3)
    common.add_argument("--warmup", type=int, default=200)
    common.add_argument("--log-every", type=int, default=500)
    common.add_argument("--seed", type=int, default=0)
    t = sub.add_parser("train", parents=[common], help="train the segmentation runs of a pack side by side")
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--overlap", type=float, default=0.6, help="probability that a turn overlaps the previous one")
    t.add_argument("--max-overlap", type=float, default=3.0)
    t.add_argument("--lr", nargs="*", default=[], type=str, help="NAME=LR for runs with another peak rate")
    t.add_argument("--only", nargs="*", default=[], help="train only these runs")
    t.add_argument("--valid-batches", type=int, default=8)
    m = sub.add_parser("embed", parents=[common], help="train a speaker-embedding model on a pack's voices")
    m.add_argument("--batch", type=int, default=256)
    m.add_argument("--speeds", type=float, nargs="+", default=[0.9, 1.0, 1.1])
    e = sub.add_parser("export", help="a trained twin as a pyannote checkpoint")
    e.add_argument("twin")
    e.add_argument("out")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.command == "train":
        args.lr = parse_lr(args.lr)
    {"pack": pack, "train": train, "embed": embed, "export": export}[args.command](args)


if __name__ == "__main__":
    main()
