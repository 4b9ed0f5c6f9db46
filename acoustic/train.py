"""Training recipe for the BiLSTM-CTC model: resumable, with dev WER/CER each epoch.

    python -m acoustic.train --train a.tsv b.tsv --dev real_dev.tsv synth_dev.tsv --exp exp/am --epochs 30

--chunk N --lookahead M trains (and validates) the latency-controlled BiLSTM of acoustic.streaming, with
chunks of N output steps and M steps of look-ahead; --init MODEL starts from a shipped model (fine-tuning).
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from acoustic.augment import AugmentConfig, AugmentedFeatures
from acoustic.checkpoint import load_model, save_model
from acoustic.data import ManifestError, collate, load_features, make_batches, read_manifest
from acoustic.features import FRONTENDS, FeatureConfig, spec_augment
from acoustic.model import BiLSTMCTC, ModelDims
from acoustic.streaming import ChunkConfig, chunked_forward
from lm.decode import greedy_ids
from lm.logs import setup_logging
from lm.metrics import error_rates
from lm.vocab import CharVocab

log = logging.getLogger("acoustic.train")
AMP = {"off": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class TrainConfig:
    train: tuple[str, ...]
    dev: tuple[str, ...]  # dev manifests: each scored every epoch, best.pt chosen on their mean CER
    exp: str
    epochs: int = 30
    max_frames: int = 12000  # padded feature frames per batch (100 frames = 1 s)
    peak_lr: float = 1.5e-3
    warmup_steps: int = 300
    clip_norm: float = 5.0
    dev_limit: int = 400
    seed: int = 0
    hidden: int = 256
    layers: int = 3
    stack: int = 3
    dropout: float = 0.2
    threads: int = 2
    cache_dir: str | None = None
    spec_augment: bool = True
    augment: bool = False  # on-the-fly waveform augmentation of the training audio (acoustic.augment)
    frontend: str = "logmel"
    chunk: int = 0  # LC-BLSTM chunk in output steps (0: whole utterances)
    lookahead: int = 0  # LC-BLSTM look-ahead in output steps
    init: str | None = None  # start from this model checkpoint
    device: str = "cpu"  # "cuda": the model, batches, loss and dev decoding on the GPU (TF32 matrix math)
    amp: str = "off"  # mixed precision for the forward pass and loss: off, bf16 or fp16 (with loss scaling)
    dims: ModelDims = field(init=False)
    features: FeatureConfig = field(init=False)

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.max_frames < 100 or self.peak_lr <= 0:
            raise ValueError("epochs >= 1, max_frames >= 100 and peak_lr > 0 are required")
        if self.chunk:
            ChunkConfig(self.chunk, self.lookahead)
        if self.amp not in AMP:
            raise ValueError(f"amp must be one of {', '.join(AMP)}; got {self.amp!r}")
        if self.amp == "fp16" and not self.device.startswith("cuda"):
            raise ValueError("--amp fp16 needs a CUDA device (the CPU's LSTM has no float16 kernels); use bf16")
        object.__setattr__(self, "features", FeatureConfig(kind=self.frontend))
        object.__setattr__(self, "dims", ModelDims(n_input=self.features.dim, n_vocab=len(CharVocab()),
                                                   stack=self.stack, hidden=self.hidden, layers=self.layers,
                                                   dropout=self.dropout))


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    p = argparse.ArgumentParser(prog="python -m acoustic.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", nargs="+", action="extend", required=True,
                   help="training manifest TSVs (path text speaker duration); repeat to add more")
    p.add_argument("--dev", nargs="+", action="extend", default=[],
                   help="dev manifests: WER/CER of each every epoch, best.pt chosen on their mean CER; repeat to "
                   "add more (e.g. real speech and synthetic speech of the training voices)")
    p.add_argument("--exp", required=True, help="experiment folder: last.pt, best.pt, model.pt, train.log")
    for name in ("epochs", "max_frames", "warmup_steps", "dev_limit", "seed", "hidden", "layers", "stack", "threads",
                 "chunk", "lookahead"):
        p.add_argument(f"--{name.replace('_', '-')}", type=int, default=TrainConfig.__dataclass_fields__[name].default)
    for name in ("peak_lr", "clip_norm", "dropout"):
        p.add_argument(f"--{name.replace('_', '-')}", type=float, default=TrainConfig.__dataclass_fields__[name].default)
    p.add_argument("--init", help="model checkpoint to start from (its dimensions replace --hidden/--layers/--stack)")
    p.add_argument("--cache-dir", help="where computed features are cached (default: EXP/cache)")
    p.add_argument("--no-spec-augment", dest="spec_augment", action="store_false")
    p.add_argument("--augment", action="store_true", help="augment the training audio anew each epoch: speed "
                   "0.9/1.0/1.1, simulated rooms, noise and babble at 0-25 dB SNR, codecs (features then are "
                   "computed per batch, not cached)")
    p.add_argument("--device", default="cpu", help="torch device: cpu (default) or cuda")
    p.add_argument("--amp", choices=tuple(AMP), default="off", help="mixed precision: bf16, or fp16 with loss "
                   "scaling (default: off; on cuda the matrix math is TF32 either way)")
    p.add_argument("--frontend", choices=FRONTENDS, default="logmel",
                   help="log-mel features or frozen Whisper tiny.en encoder states (default: logmel)")
    args = vars(p.parse_args(argv))
    args["train"], args["dev"] = tuple(args["train"]), tuple(args["dev"])
    args["cache_dir"] = args["cache_dir"] or str(Path(args["exp"]) / "cache")
    try:
        if args["init"]:  # the checkpoint's shape wins: the length filter and the log use the real stacking
            dims = load_model(args["init"])[0].dims
            args.update(hidden=dims.hidden, layers=dims.layers, stack=dims.stack, dropout=dims.dropout)
        return TrainConfig(**args)
    except ValueError as error:
        p.error(str(error))  # one line and exit status 2, no traceback


def learning_rate(config: TrainConfig, step: int) -> float:
    """Linear warmup to peak_lr, then inverse square-root decay (needs no total step count: resumable)."""
    step = max(1, step)
    return config.peak_lr * min(step / config.warmup_steps, math.sqrt(config.warmup_steps / step))


def run_model(model: BiLSTMCTC, feats: torch.Tensor, lengths: torch.Tensor, chunking: ChunkConfig | None,
              exact: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Whole-utterance BiLSTM, or the LC-BLSTM when `chunking` is given -> (log-probs, output lengths)."""
    if chunking is not None:
        return chunked_forward(model, feats, lengths, chunking)
    return model(feats, lengths, exact=exact)


def compute_loss(model: BiLSTMCTC, feats: torch.Tensor, lengths: torch.Tensor,
                 targets: list[list[int]], chunking: ChunkConfig | None = None) -> torch.Tensor:
    """Mean CTC loss per target token of one batch."""
    log_probs, out_lengths = run_model(model, feats, lengths, chunking, exact=False)
    flat = torch.tensor([t for target in targets for t in target], dtype=torch.long, device=log_probs.device)
    target_lengths = torch.tensor([len(t) for t in targets], device=log_probs.device)
    loss = torch.nn.functional.ctc_loss(log_probs.transpose(0, 1), flat, out_lengths, target_lengths,
                                        blank=0, reduction="sum", zero_infinity=True)
    return loss / target_lengths.sum()


def autocast(config: TrainConfig) -> contextlib.AbstractContextManager:
    """The forward pass's precision: float32 (amp off) or autocast to bfloat16/float16."""
    if config.amp == "off":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(config.device).type, dtype=AMP[config.amp])


def optimizer_step(model: BiLSTMCTC, optimizer, scaler: torch.amp.GradScaler, loss: torch.Tensor,
                   clip_norm: float) -> None:
    """Backward pass (loss-scaled for fp16), gradient clipping and one optimizer step."""
    optimizer.zero_grad()
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
    scaler.step(optimizer)  # skipped when fp16 gradients overflowed; the scale then shrinks
    scaler.update()


def train_one_epoch(model, optimizer, config: TrainConfig, feats, targets, state: dict,
                    augmented: AugmentedFeatures | None = None, scaler: torch.amp.GradScaler | None = None) -> float:
    model.train()
    rng = np.random.default_rng(config.seed + state["epoch"])
    generator = torch.Generator().manual_seed(config.seed + state["epoch"])
    batches = make_batches([f.shape[0] for f in feats], config.max_frames, rng)
    total, bar = 0.0, tqdm(batches, desc=f"epoch {state['epoch'] + 1}", leave=False)
    scaler = scaler or torch.amp.GradScaler(enabled=False)
    for batch in bar:
        source = augmented.batch(batch, state["epoch"]) if augmented else [feats[i] for i in batch]
        chunk = [spec_augment(f.float(), generator) if config.spec_augment else f for f in source]
        x, lengths = (t.to(config.device, non_blocking=True) for t in collate(chunk))
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, state["step"] + 1)
        with autocast(config):
            loss = compute_loss(model, x, lengths, [targets[i] for i in batch], chunking(config))
        optimizer_step(model, optimizer, scaler, loss, config.clip_norm)
        state["step"] += 1
        total += loss.item()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    return total / max(1, len(batches))


@torch.no_grad()
def validate(model: BiLSTMCTC, vocab: CharVocab, feats, texts: list[str], max_frames: int,
             chunks: ChunkConfig | None = None) -> tuple[float, float]:
    """Greedy-decode the dev utterances (with the LC-BLSTM when `chunks` is given) -> (WER, CER)."""
    model.eval()
    device = model.feat_mean.device
    hyps = [""] * len(feats)
    for batch in make_batches([f.shape[0] for f in feats], max_frames, None):
        x, lengths = (t.to(device) for t in collate([feats[i] for i in batch]))
        log_probs, out_lengths = run_model(model, x, lengths, chunks)
        log_probs, out_lengths = log_probs.cpu(), out_lengths.cpu()
        for row, i in enumerate(batch):
            hyps[i] = vocab.decode(greedy_ids(log_probs[row, :out_lengths[row]]))
    return error_rates(texts, hyps)


def save_checkpoint(path: Path, model, optimizer, config: TrainConfig, state: dict) -> None:
    """Resumable training state (model, optimizer, progress, history), written atomically."""
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "state": state,
                "config": {k: v for k, v in asdict(config).items() if k not in ("dims", "features")}}, str(tmp))
    tmp.replace(path)


def ctc_min_frames(target: list[int]) -> int:
    """Fewest output frames a CTC alignment of `target` needs: one per token, plus a blank between repeats.
    (Fast synthetic speech, about 16 characters a second, needs this bound: 2 * len + 1 dropped 40 % of it.)"""
    return len(target) + sum(a == b for a, b in zip(target, target[1:]))


def load_data(config: TrainConfig, vocab: CharVocab):
    """Training features and targets (empty targets dropped), dev features and texts, training audio paths."""
    cache = Path(config.cache_dir) if config.cache_dir else None
    # One cache file per manifest: adding a manifest to a recipe computes only the new one's features.
    manifests = [read_manifest(manifest) for manifest in config.train]
    utts = [u for utterances in manifests for u in utterances]
    feats = [f for utterances in manifests for f in load_features(utterances, config.features, cache,
                                                                  workers=config.threads)]
    targets = [vocab.encode(vocab.clean(u.text)) for u in utts]
    keep = [i for i, t in enumerate(targets) if t and feats[i].shape[0] // config.stack >= ctc_min_frames(t)]
    log.info("train: %d utterances, %.2f h (%d dropped: empty or too long a text for the audio)",
             len(keep), sum(utts[i].duration for i in keep) / 3600, len(utts) - len(keep))
    devs = {}
    for manifest in config.dev:
        dev = read_manifest(manifest)[: config.dev_limit]
        devs[manifest] = (load_features(dev, config.features, cache, workers=config.threads), [u.text for u in dev])
    paths = [utts[i].path for i in keep]
    return [feats[i] for i in keep], [targets[i] for i in keep], devs, paths


def validate_all(model: BiLSTMCTC, vocab: CharVocab, devs: dict, config: TrainConfig) -> dict[str, tuple]:
    """(WER, CER) of each dev set, logged one line per set."""
    scores = {name: validate(model, vocab, feats, texts, config.max_frames, chunking(config))
              for name, (feats, texts) in devs.items()}
    for name, (wer, cer) in scores.items():
        log.info("  dev %s: WER %.4f CER %.4f", name, wer, cer)
    return scores


def mean_scores(scores: dict[str, tuple]) -> tuple[float | None, float | None]:
    """The dev sets' mean WER and mean CER (each set counts once, whatever its size); None without dev sets."""
    if not scores:
        return None, None
    return tuple(sum(s[k] for s in scores.values()) / len(scores) for k in (0, 1))


def chunking(config: TrainConfig) -> ChunkConfig | None:
    return ChunkConfig(config.chunk, config.lookahead) if config.chunk else None


def initial_model(config: TrainConfig, feats: list[torch.Tensor]) -> BiLSTMCTC:
    """A fresh model with CMVN from the training features, or the --init checkpoint in training mode."""
    if config.init:
        model, _, features, _ = load_model(config.init)
        if features != config.features:
            raise SystemExit(f"--init {config.init} uses the {features.kind} front end, not {config.frontend}")
        return model.train()
    model = BiLSTMCTC(config.dims)
    estimate_cmvn(model, feats)
    return model


def estimate_cmvn(model: BiLSTMCTC, feats: list[torch.Tensor]) -> None:
    frames = torch.cat([f.float() for f in feats[:: max(1, len(feats) // 500)]])
    model.feat_mean.copy_(frames.mean(dim=0))
    model.feat_std.copy_(frames.std(dim=0).clamp(min=1e-3))


def main(argv: list[str] | None = None) -> None:
    config = parse_args(argv)
    exp = Path(config.exp)
    exp.mkdir(parents=True, exist_ok=True)
    setup_logging(log, exp / "train.log")
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    vocab = CharVocab()
    try:
        feats, targets, devs, paths = load_data(config, vocab)
    except ManifestError as error:  # missing file, bad columns, empty text: one line, no traceback
        raise SystemExit(f"python -m acoustic.train: error: {error}") from None
    augmented = AugmentedFeatures(paths, config.features, AugmentConfig(seed=config.seed),
                                  threads=config.threads) if config.augment else None
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    model = initial_model(config, feats).to(config.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.peak_lr, weight_decay=1e-2)
    state = {"epoch": 0, "step": 0, "best_cer": None, "history": [], "hours_seen": 0.0}
    if (exp / "last.pt").is_file():
        resumed = torch.load(str(exp / "last.pt"), weights_only=True, map_location=config.device)
        model.load_state_dict(resumed["model"])
        optimizer.load_state_dict(resumed["optimizer"])
        state = resumed["state"]
        log.info("resumed from %s at epoch %d", exp / "last.pt", state["epoch"])
    log.info("model: %s, %.2fM parameters, chunking %s", model.dims,
             sum(p.numel() for p in model.parameters()) / 1e6, chunking(config))
    if config.init and state["epoch"] == 0 and devs:
        log.info("before fine-tuning: dev WER %s CER %s", *mean_scores(validate_all(model, vocab, devs, config)))
    hours = sum(f.shape[0] for f in feats) * config.features.frame_hops / 360000
    scaler = torch.amp.GradScaler(torch.device(config.device).type, enabled=config.amp == "fp16")
    while state["epoch"] < config.epochs:
        started = time.time()
        loss = train_one_epoch(model, optimizer, config, feats, targets, state, augmented, scaler)
        state["epoch"] += 1
        state["hours_seen"] += hours
        scores = validate_all(model, vocab, devs, config)
        wer, cer = mean_scores(scores)
        state["history"].append({"epoch": state["epoch"], "loss": loss, "dev_wer": wer, "dev_cer": cer,
                                 "dev": {name: list(s) for name, s in scores.items()}})
        log.info("epoch %d loss %.3f dev WER %s CER %s (%.0f s, %.1f h seen)", state["epoch"], loss,
                 wer, cer, time.time() - started, state["hours_seen"])
        # Select on CER: a young character model's WER sits near or above 1 while its CER already falls.
        is_best = cer is None or state.get("best_cer") is None or cer < state["best_cer"]
        if is_best:
            state["best_cer"] = cer
            save_model(exp / "best.pt", model, vocab, config.features, half=True,
                       extra={"training": {"epoch": state["epoch"], "hours_seen": state["hours_seen"],
                                           "dev_wer": wer, "dev_cer": cer, "train": list(config.train)}})
        save_checkpoint(exp / "last.pt", model, optimizer, config, state)


if __name__ == "__main__":
    main()
