"""Cost of each on-the-fly augmentation, as a real-time factor (processing seconds / audio seconds), one thread.

    python -m bench.augment [--manifest exp/synth/heldout/manifest.tsv] [--limit 50]

Runs every step on the same utterances (default: the held-out synthetic set, else 50 seeded speech-like clips)
and prints a Markdown table; log-mel feature extraction is the yardstick (training computes it per batch anyway).
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import torch

from acoustic.augment import (AugmentConfig, Augmenter, add_noise, babble, codec_round_trip, coloured_noise,
                              reverberate, room_impulse_response, speed_perturb)
from acoustic.data import audio_features, read_16k, read_manifest
from acoustic.features import SAMPLE_RATE, FeatureConfig
from bench.asr import machine
from bench.sets import SYNTH_HELDOUT


def load_audio(manifest: Path, limit: int) -> list[np.ndarray]:
    if manifest.is_file():
        return [read_16k(u.path) for u in read_manifest(manifest)[:limit]]
    from tests.conftest import make_speech_like
    return [make_speech_like(3.0, seed=i) for i in range(limit)]


def steps(audios: list[np.ndarray]) -> dict[str, callable]:
    rng = np.random.default_rng(0)
    rirs = [room_impulse_response(i, (0.15, 0.8), seed=0) for i in range(8)]
    talkers = audios[:5]
    full = Augmenter(AugmentConfig(room_prob=0.4, noise_prob=0.5, codec_prob=0.2),
                     talkers=lambda r: [talkers[int(i)] for i in r.integers(len(talkers), size=4)])
    return {
        "log-mel features (yardstick)": lambda a, i: audio_features([a], FeatureConfig()),
        "speed 1.1": lambda a, i: speed_perturb(a, 1.1),
        "speed 0.9": lambda a, i: speed_perturb(a, 0.9),
        "room (convolution, bank built)": lambda a, i: reverberate(a, rirs[i % len(rirs)]),
        "pink noise at 10 dB": lambda a, i: add_noise(a, coloured_noise(a.size, 1.0, rng), 10.0),
        "babble of 4 talkers at 10 dB": lambda a, i: add_noise(a, babble(a.size, talkers[:4]), 10.0),
        "Opus round trip (level 0.9)": lambda a, i: codec_round_trip(a, "opus", 0.9),
        "8 kHz mu-law round trip": lambda a, i: codec_round_trip(a, "mulaw-8k"),
        "whole Augmenter (defaults, rooms simulated on first use)": lambda a, i: full(a, key=(0, i)),
    }


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m bench.augment", description=__doc__.splitlines()[0])
    p.add_argument("--manifest", type=Path, default=SYNTH_HELDOUT)
    p.add_argument("--limit", type=int, default=50)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    audios = load_audio(args.manifest, args.limit)
    seconds = sum(a.size for a in audios) / SAMPLE_RATE
    simulate = time.perf_counter()
    for i in range(8):
        room_impulse_response(i, (0.15, 0.8), seed=1)
    per_room = (time.perf_counter() - simulate) / 8
    print(f"{len(audios)} utterances, {seconds:.0f} s of audio; one simulated room takes {per_room * 1000:.0f} ms\n")
    print("| step | RTF | x log-mel |\n|---|---:|---:|")
    yardstick = None
    for name, step in steps(audios).items():
        start = time.perf_counter()
        for i, audio in enumerate(audios):
            step(audio, i)
        rtf = (time.perf_counter() - start) / seconds
        yardstick = yardstick or rtf
        print(f"| {name} | {rtf:.4f} | {rtf / yardstick:.1f} |")
    print(f"\nMachine: {machine()}, 1 thread; date: {datetime.now().astimezone().isoformat(timespec='minutes')}; "
          f"command: `{shlex.join(['python', '-m', 'bench.augment', *argv])}`")


if __name__ == "__main__":
    main()
