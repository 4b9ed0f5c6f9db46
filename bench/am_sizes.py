"""Acoustic model sizes: parameters, file size and the BiLSTM's own speed (features given, front end not
counted) for each checkpoint, on this machine's CPU.

    python -m bench.am_sizes models/default/model.pt exp/enc_small/best.pt [--seconds 30] [--threads 1]

The front end's cost (the Whisper encoder or log-mel) is the same for every model of one front end and is
in bench/asr.py's RTF; this isolates what the model size changes.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from acoustic.checkpoint import load_model
from bench.asr import machine


def forward_seconds(path: Path, seconds: float, repeats: int = 5) -> tuple[int, float]:
    """(parameters, best seconds of one forward pass over `seconds` of random features)."""
    model, _, features, _ = load_model(path)
    frames = round(seconds * 100 / features.frame_hops)
    x = torch.randn(1, frames, features.dim)
    lengths = torch.tensor([frames])
    times = []
    with torch.inference_mode():
        model(x, lengths)  # warm-up
        for _ in range(repeats):
            started = time.perf_counter()
            model(x, lengths)
            times.append(time.perf_counter() - started)
    return sum(p.numel() for p in model.parameters()), min(times)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.am_sizes", description=__doc__.splitlines()[0])
    p.add_argument("models", type=Path, nargs="+")
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print("| model | parameters | file MB | ms per {:.0f} s | x real time |\n|---|---:|---:|---:|---:|".format(args.seconds))
    for path in args.models:
        params, busy = forward_seconds(path, args.seconds)
        print(f"| {path} | {params / 1e6:.2f} M | {path.stat().st_size / 1e6:.1f} | {busy * 1000:.0f} | "
              f"{args.seconds / busy:.0f} |")
    print(f"\nMachine: {machine()}; torch threads {args.threads}")


if __name__ == "__main__":
    main()
