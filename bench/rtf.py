"""Real-time factor of the whole pipeline on a long recording (the bundled sample repeated), per decoder.

    python -m bench.rtf [--audio samples/meeting.opus] [--repeat 4] [--model PATH ...]

Prints acoustic-only RTF (front end + BiLSTM over the pipeline's 30 s windows) next to the full
transcription (windows, decoding, forced alignment, segmentation) with greedy and with beam+LM decoding.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from datetime import datetime

import numpy as np
import torch

from bench.asr import machine
from minutes.audio import SAMPLE_RATE, load_audio
from minutes.pipeline import Transcriber
from minutes.segmenting import cut_points


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m bench.rtf", description=__doc__.splitlines()[0])
    p.add_argument("--audio", default="samples/meeting.opus")
    p.add_argument("--repeat", type=int, default=4)
    p.add_argument("--model", action="append")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    audio = np.tile(load_audio(args.audio), args.repeat)
    seconds = audio.size / SAMPLE_RATE
    print(f"Audio: {args.audio} x{args.repeat} = {seconds / 60:.1f} min\n")
    print("| model | acoustic only | greedy, whole pipeline | beam 16 + LM, whole pipeline |\n|---|---:|---:|---:|")
    for model in args.model or [None]:
        row = []
        for decoder in ("greedy", "beam"):
            t = Transcriber.load(model, decoder=decoder)
            t.transcribe(audio[: 5 * SAMPLE_RATE])  # warm-up, untimed
            if decoder == "greedy":
                cuts = cut_points(audio, int(t.options.max_chunk_s * SAMPLE_RATE))
                row.append(timed(lambda: [t.emissions(audio[a:b]) for a, b in zip(cuts[:-1], cuts[1:])]))
            row.append(timed(lambda: t.transcribe(audio)))
        print(f"| {t.name} | " + " | ".join(f"{r / seconds:.4f}" for r in row) + " |")
    print(f"\nMachine: {machine()}; date: {datetime.now().astimezone().isoformat(timespec='minutes')}; "
          f"command: `{shlex.join(['python', '-m', 'bench.rtf', *argv])}`")


if __name__ == "__main__":
    main()
