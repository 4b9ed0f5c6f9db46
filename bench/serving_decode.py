"""The serving path's decoding share of a tick: one tick of LockstepServer decoding (endpointing, greedy or
batched beam+LM, the tick's Updates) for N streams, on synthetic peaky log-probs, without the acoustic model.

    python -m bench.serving_decode [--streams 1000,5000,20000] [--decoder greedy] [--device cpu] [--ticks 5]
    python -m bench.serving_decode --spell --streams 2048       # the beam search's best() (text of the leaders)

On the CPU this is mostly tensor work; on a GPU that work is fast and the host-side part is what is left
(bench/RESULTS.md, "GPU"). Each tick every stream gets 21 frames, 60 % of them blank.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from bench.asr import machine
from lm.batched_beam import BatchedPrefixBeam
from lm.beam import BeamOptions
from lm.vocab import CharVocab
from minutes.serving import LockstepServer


def synthetic_chunk(streams: int, frames: int, vocab: int, seed: int, device: str) -> torch.Tensor:
    """Log-probs (streams, frames, vocab): one certain symbol per frame, blank with probability 0.6."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab, (streams, frames), generator=generator)
    ids[torch.rand(streams, frames, generator=generator) < 0.6] = 0
    return torch.full((streams, frames, vocab), -12.0).scatter_(2, ids[..., None], 0.0).to(device)


def tick_times(streams: int, decoder: str, device: str, ticks: int) -> list[float]:
    server = LockstepServer.load(decoder=decoder, device=device, capacity=streams)
    slots = server.open(streams)
    steps, vocab = server.engine.chunks.chunk, server.engine.model.dims.n_vocab
    chunks = [synthetic_chunk(streams, steps, vocab, seed, device) for seed in range(ticks + 1)]
    times = []
    for chunk in chunks:
        started = time.perf_counter()
        server._decode(slots, chunk)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return times[1:]  # the first tick warms up


def spell_time(streams: int, frames: int = 120) -> float:
    """Seconds of BatchedPrefixBeam.best() (spelling every slot's leader) after `frames` frames, beam 8, no LM."""
    search = BatchedPrefixBeam(CharVocab(), None, BeamOptions(beam=8, lm_weight=0.0), streams)
    slots = torch.arange(streams)
    search.reset(slots)
    search.advance(slots, synthetic_chunk(streams, frames, len(CharVocab()), 0, "cpu").clamp(-8.0, -0.05))
    times = []
    for _ in range(3):
        started = time.perf_counter()
        search.best(slots)
        times.append(time.perf_counter() - started)
    return min(times)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.serving_decode", description=__doc__.splitlines()[0])
    p.add_argument("--streams", default="1000,5000,20000")
    p.add_argument("--decoder", choices=("greedy", "beam"), default="greedy")
    p.add_argument("--device", default="cpu")
    p.add_argument("--ticks", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--spell", action="store_true", help="time the beam search's best() instead")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.spell:
        print("| streams | best() ms |\n|---:|---:|")
        for n in (int(s) for s in args.streams.split(",")):
            print(f"| {n} | {spell_time(n) * 1000:.1f} |")
        return
    print(f"| streams | decoder | p50 ms | max ms | us per stream |\n|---:|---|---:|---:|---:|")
    for n in (int(s) for s in args.streams.split(",")):
        ms = np.array(tick_times(n, args.decoder, args.device, args.ticks)) * 1000
        print(f"| {n} | {args.decoder} | {np.median(ms):.0f} | {ms.max():.0f} | {np.median(ms) * 1000 / n:.1f} |")
    print(f"\nMachine: {machine()}; device {args.device}; torch threads {args.threads}")


if __name__ == "__main__":
    main()
