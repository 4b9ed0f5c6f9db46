"""Training speed of the LM cells: seconds per truncated-BPTT step (forward, backward, AdamW) at the
recipe's shape, all cells in one run, with the ratio to the LSTM.

    python -m bench.lm_cells [--batch 32] [--bptt 128] [--hidden 512] [--repeats 3] [--threads 1]

Random characters stand in for text (the speed does not depend on them). The fastest of `repeats` steps
after one warm-up step is reported.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from datetime import datetime

import torch

from bench.asr import machine
from lm.rnnlm import CELLS, CharRNNLM, LMDims


def seconds_per_step(cell: str, batch: int, bptt: int, hidden: int, repeats: int) -> float:
    """Fastest of `repeats` training steps (after one warm-up) for a fresh model of this cell."""
    torch.manual_seed(0)
    model = CharRNNLM(LMDims(cell=cell, hidden=hidden))
    optimizer = torch.optim.AdamW(model.parameters())
    tokens = torch.randint(1, model.dims.n_vocab, (batch, bptt + 1))
    times = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        log_probs, _ = model(tokens[:, :-1])
        loss = torch.nn.functional.nll_loss(log_probs.flatten(0, 1), tokens[:, 1:].flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - started)
    return min(times[1:])


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m bench.lm_cells", description=__doc__.splitlines()[0])
    for name, default in (("batch", 32), ("bptt", 128), ("hidden", 512), ("repeats", 3), ("threads", 1)):
        p.add_argument(f"--{name}", type=int, default=default)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"{args.batch} streams x {args.bptt} characters, hidden {args.hidden}, {args.threads} thread(s)\n")
    print("| cell | parameters | s per training step | x LSTM |\n|---|---:|---:|---:|")
    times = {cell: seconds_per_step(cell, args.batch, args.bptt, args.hidden, args.repeats) for cell in CELLS}
    for cell, seconds in times.items():
        params = sum(p.numel() for p in CharRNNLM(LMDims(cell=cell, hidden=args.hidden)).parameters())
        print(f"| {cell} | {params / 1e6:.2f} M | {seconds:.3f} | {seconds / times['lstm']:.2f} |")
    print(f"\nMachine: {machine()}; date: {datetime.now().astimezone().isoformat(timespec='minutes')}; "
          f"command: `{shlex.join(['python', '-m', 'bench.lm_cells', *argv])}`")


if __name__ == "__main__":
    main()
