"""Training speed of the acoustic model per precision (--amp of acoustic.train): float32 (TF32 matrix math
on CUDA), bfloat16 autocast, float16 autocast with loss scaling. Random log-mel batches, the shipped
streaming model's dimensions (or --model's), whole-utterance BiLSTM and the LC-BLSTM of the streaming
recipe; no data set needed.

    python -m bench.train_speed --device cuda [--batch 64] [--seconds 15] [--steps 30]

Each row: training steps per second after warm-up, hours of audio per minute, peak GPU memory, and the loss
after the timed steps on the same repeated batch (all precisions start from the same weights, so a precision
that breaks training shows as a loss far from float32's).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from acoustic.checkpoint import load_model
from acoustic.model import BiLSTMCTC
from acoustic.streaming import ChunkConfig
from acoustic.train import AMP, TrainConfig, autocast, compute_loss, optimizer_step
from bench.asr import machine
from minutes.streaming import default_stream_model


def batch(model: BiLSTMCTC, size: int, seconds: float, device: str) -> tuple[torch.Tensor, ...]:
    """A fixed random batch: features (B, T, D), lengths, and random character targets (about 12 per second)."""
    generator = torch.Generator().manual_seed(0)
    frames = round(seconds * 100)
    x = torch.randn(size, frames, model.dims.n_input, generator=generator).to(device)
    lengths = torch.full((size,), frames).to(device)
    targets = torch.randint(1, model.dims.n_vocab, (size, round(seconds * 12)), generator=generator).tolist()
    return x, lengths, targets


def run(path: Path, amp: str, chunks: ChunkConfig | None, args: argparse.Namespace) -> dict:
    """Train `args.steps` steps after 3 warm-up steps -> one table row."""
    torch.manual_seed(0)
    model = load_model(path)[0].to(args.device).train()
    config = TrainConfig(train=("-",), dev=(), exp="-", device=args.device, amp=amp)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
    scaler = torch.amp.GradScaler(torch.device(args.device).type, enabled=amp == "fp16")
    x, lengths, targets = batch(model, args.batch, args.seconds, args.device)
    cuda = args.device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    for step in range(args.steps + 3):
        if step == 3:
            torch.cuda.synchronize() if cuda else None
            started = time.perf_counter()
        with autocast(config):
            loss = compute_loss(model, x, lengths, targets, chunks)
        optimizer_step(model, optimizer, scaler, loss, config.clip_norm)
    torch.cuda.synchronize() if cuda else None
    elapsed = time.perf_counter() - started
    audio_h = args.steps * args.batch * args.seconds / 3600
    return {"amp": amp, "lstm": "LC-BLSTM" if chunks else "whole", "steps_s": args.steps / elapsed,
            "hours_per_min": audio_h / elapsed * 60, "memory_gb": torch.cuda.max_memory_allocated() / 1e9 if cuda
            else None, "loss": loss.item()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.train_speed", description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=None, help="checkpoint whose dimensions to train (default: "
                   "the shipped streaming model)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--amp", default=None, help="precisions to compare (default: off,bf16,fp16 on CUDA, off,bf16 "
                   "on the CPU, which has no float16 LSTM)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True  # as acoustic.train does
    path = args.model or default_stream_model()
    print(f"| precision | LSTM | steps/s | audio h per min | peak GPU GB | loss after {args.steps} steps |")
    print("|---|---|---:|---:|---:|---:|")
    precisions = args.amp or ",".join(a for a in AMP if a != "fp16" or args.device.startswith("cuda"))
    for chunks in (None, ChunkConfig(21, 11)):
        for amp in precisions.split(","):
            r = run(path, amp, chunks, args)
            memory = f"{r['memory_gb']:.1f}" if r["memory_gb"] is not None else "-"
            print(f"| {r['amp']} | {r['lstm']} | {r['steps_s']:.2f} | {r['hours_per_min']:.0f} | {memory} | "
                  f"{r['loss']:.3f} |", flush=True)
    print(f"\nMachine: {machine()}; device {args.device}"
          f"{' (' + torch.cuda.get_device_name(0) + ')' if args.device.startswith('cuda') else ''}; "
          f"batch {args.batch} x {args.seconds:g} s; torch {torch.__version__}")


if __name__ == "__main__":
    main()
