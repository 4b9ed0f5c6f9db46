"""Tune the beam decoder's LM weight and word bonus on so762-tune, and measure WER/RTF against beam width.

    python -m bench.tune_beam [--model PATH] [--lm PATH] [--weights 0.2,0.4,...] [--bonuses 0,1,2]
                              [--beams 1,4,16,64] [--limit N]

Emissions are computed once per utterance (timed: the acoustic model's RTF); each decoder setting is then
timed on the cached emissions, so the table shows where the time goes. Prints Markdown for bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import replace
from datetime import datetime

import soundfile as sf
import torch
from tqdm import tqdm

from bench.asr import machine
from bench.sets import SETS, spread
from lm.metrics import error_rates
from minutes.pipeline import DEFAULT_BEAM, Transcriber


def floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def emissions(transcriber: Transcriber, set_name: str, limit: int | None):
    """[(log_probs, reference)] for a named set, and the acoustic seconds per audio second."""
    out, busy, audio_s = [], 0.0, 0.0
    for utt in tqdm(spread(SETS[set_name](), limit), desc=f"emissions {set_name}", file=sys.stderr):
        audio, _ = sf.read(str(utt.path), dtype="float32")
        start = time.perf_counter()
        out.append((transcriber.emissions(audio), utt.text))
        busy += time.perf_counter() - start
        audio_s += audio.size / 16000
    return out, busy / audio_s, audio_s


def score(transcriber: Transcriber, cached, options, decoder: str = "beam") -> tuple[float, float, float]:
    """(WER, CER, decode seconds) of one decoder setting over cached emissions."""
    transcriber.options = replace(transcriber.options, decoder=decoder, beam=options)
    start = time.perf_counter()
    hyps = [transcriber.decode(log_probs) for log_probs, _ in cached]
    elapsed = time.perf_counter() - start
    wer, cer = error_rates([ref for _, ref in cached], hyps)
    return wer, cer, elapsed


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m bench.tune_beam", description=__doc__.splitlines()[0])
    p.add_argument("--model")
    p.add_argument("--lm")
    p.add_argument("--weights", type=floats, default=floats("0,0.2,0.4,0.6,0.8,1.0"))
    p.add_argument("--bonuses", type=floats, default=floats("-1,0,1,2,3"))
    p.add_argument("--beams", type=lambda t: [int(v) for v in t.split(",")], default=[1, 4, 16, 64])
    p.add_argument("--limit", type=int)
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    transcriber = Transcriber.load(args.model, decoder="beam", lm_path=args.lm)
    tune, am_rtf, tune_s = emissions(transcriber, "so762-tune", args.limit)
    print(f"## LM weight x word bonus on so762-tune ({len(tune)} utterances, beam {DEFAULT_BEAM.beam}): WER\n")
    print("| LM weight | " + " | ".join(f"bonus {b:g}" for b in args.bonuses) + " |")
    print("|---|" + "---:|" * len(args.bonuses))
    best = (float("inf"), None)
    for weight in args.weights:
        cells = []
        for bonus in args.bonuses:
            options = replace(DEFAULT_BEAM, lm_weight=weight, word_bonus=bonus)
            wer, _, _ = score(transcriber, tune, options)
            best = min(best, (wer, options), key=lambda item: item[0])
            cells.append(f"{wer:.1%}")
        print(f"| {weight:g} | " + " | ".join(cells) + " |")
    wer, options = best
    print(f"\nBest on so762-tune: LM weight {options.lm_weight:g}, word bonus {options.word_bonus:g} (WER {wer:.1%}).\n")
    beam_curve(transcriber, options, args)
    command = shlex.join(["python", "-m", "bench.tune_beam", *argv])
    print(f"\nMachine: {machine()}; date: {datetime.now().astimezone().isoformat(timespec='minutes')}; "
          f"command: `{command}`")


def beam_curve(transcriber: Transcriber, options, args) -> None:
    """WER/CER and RTF (acoustic + decoding) by beam width on so762-eval, greedy first, tuned weights."""
    cached, am_rtf, audio_s = emissions(transcriber, "so762-eval", args.limit)
    print(f"## Beam width on so762-eval ({len(cached)} utterances, {audio_s / 60:.1f} min; acoustic RTF "
          f"{am_rtf:.4f})\n")
    print("| decoder | WER | CER | decode RTF | total RTF |\n|---|---:|---:|---:|---:|")
    wer, cer, busy = score(transcriber, cached, options, decoder="greedy")
    print(f"| greedy | {wer:.1%} | {cer:.1%} | {busy / audio_s:.4f} | {am_rtf + busy / audio_s:.4f} |")
    for width in args.beams:
        wer, cer, busy = score(transcriber, cached, replace(options, beam=width))
        print(f"| beam {width} + LM | {wer:.1%} | {cer:.1%} | {busy / audio_s:.4f} | {am_rtf + busy / audio_s:.4f} |")


if __name__ == "__main__":
    main()
