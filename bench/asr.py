"""ASR benchmark: WER, CER and real-time factor of our models and their peers on the same sets.

    python -m bench.asr [--set NAME=MANIFEST ...] [--limit N]
                        [--systems ours,ours-greedy,ours-stream,pocketsphinx,whisper-tiny.en]
                        [--model PATH ...] [--stream-model PATH] [--threads N] [--json OUT]

Systems: `ours` / `ours-greedy` run each `--model` (default: the shipped default model) offline through
minutes.pipeline.Transcriber with beam+LM / greedy decoding; `ours-stream` runs `--stream-model` (default: the
shipped streaming model) through minutes.streaming.StreamingEngine fed 0.64 s blocks with beam+LM, as
`minutes transcribe --stream` does; the peers are pocketsphinx and Whisper tiny.en (int8), see bench.peers.

Prints a Markdown table (plus decoding settings, machine, date and the exact command) for bench/RESULTS.md,
and each row to stderr as soon as it is measured. All systems are scored with one normalizer
(lm.vocab.normalize via lm.metrics.error_rates) and run with at most `--threads` threads (default 2). Only the
transcribe call is timed, after loading and one untimed warm-up on 1 s of noise; RTF = processing seconds /
audio seconds over the whole set. A system that fails to load is reported as skipped. `--json` also saves
every hypothesis, in set order, so parts of a set can be scored afterwards.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from tqdm import tqdm

from acoustic.data import ManifestError, Utterance, read_manifest
from acoustic.features import SAMPLE_RATE
from bench.peers import THREADS, PocketSphinx, WhisperTiny
from bench.sets import DEFAULT_SETS, SETS, spread
from lm.metrics import error_rates

PEERS = {"pocketsphinx": lambda threads: PocketSphinx(), "whisper-tiny.en": WhisperTiny}
SYSTEMS = ("ours", "ours-greedy", "ours-stream", *PEERS)
WARM_UP = np.random.default_rng(0).normal(0.0, 0.05, SAMPLE_RATE).astype(np.float32)  # 1 s, untimed


class Ours:
    """Our BiLSTM-CTC model through the shipped pipeline (offline), or its streaming engine (`streaming`)."""

    def __init__(self, model_path: str | None, decoder: str, lm_path: str | None, threads: int,
                 streaming: bool = False) -> None:
        if streaming:
            from minutes.streaming import StreamingEngine as Engine
        else:
            from minutes.pipeline import Transcriber as Engine

        self._engine = Engine.load(model_path, decoder=decoder, lm_path=lm_path)
        self.name = f"ours{' streaming' if streaming else ''} ({self._engine.name}, {decoder})"
        beam = (self._engine.decoding if streaming else self._engine.options).beam
        blocks = f" fed {self._engine.options.chunk_s} s blocks" if streaming else ""
        self.settings = (f"{Engine.__module__}.{Engine.__name__}{blocks}, {decoder} decoding"
                         + (f" (beam {beam.beam}, LM weight {beam.lm_weight}, word bonus {beam.word_bonus})"
                            if decoder == "beam" else "") + f", torch {threads} threads")

    def transcribe(self, audio: np.ndarray) -> str:
        return self._engine.transcribe(audio).text


@dataclass
class Row:
    set: str
    system: str
    utterances: int = 0
    audio_seconds: float = 0.0
    processing_seconds: float = 0.0
    wer: float | None = None
    cer: float | None = None
    rtf: float | None = None
    skipped: str = ""
    hypotheses: list[str] = field(default_factory=list, repr=False)


def load_system(key: str, model_path: str | None, lm_path: str | None, threads: int) -> tuple[object | None, str]:
    """The loaded, warmed-up system and "", or None and a one-line reason it cannot run."""
    try:
        if key.startswith("ours"):
            system = Ours(model_path, "greedy" if key == "ours-greedy" else "beam", lm_path, threads,
                          streaming=key == "ours-stream")
        else:
            system = PEERS[key](threads)
        system.transcribe(WARM_UP)
    except Exception as error:  # any import, weights or model failure means "skip", not "crash"
        reason = f"{type(error).__name__}: {error}".splitlines()[0]
        return None, reason.replace("|", "/")
    return system, ""


def read_audio(path: Path) -> np.ndarray:
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    if rate != SAMPLE_RATE:
        raise ValueError(f"{path}: {rate} Hz, expected {SAMPLE_RATE}")
    return np.ascontiguousarray(audio.mean(axis=1))


def run_set(system, set_name: str, utterances: list[Utterance]) -> Row:
    refs, hyps, audio_seconds, busy = [], [], 0.0, 0.0
    for utterance in tqdm(utterances, desc=f"{set_name} / {system.name}", unit="utt", file=sys.stderr):
        audio = read_audio(utterance.path)
        start = time.perf_counter()
        hyps.append(system.transcribe(audio))
        busy += time.perf_counter() - start
        audio_seconds += len(audio) / SAMPLE_RATE
        refs.append(utterance.text)
    wer, cer = error_rates(refs, hyps)
    row = Row(set_name, system.name, len(utterances), audio_seconds, busy, wer, cer, busy / max(audio_seconds, 1e-9),
              hypotheses=hyps)
    print(table_row(row), file=sys.stderr, flush=True)
    return row


def load_sets(specs: list[tuple[str, Path | None]], limit: int | None) -> dict[str, list[Utterance]]:
    """NAME=MANIFEST specs, or named sets from bench.sets (NAME alone); `limit` keeps an evenly spaced subset."""
    specs = specs or [(name, None) for name in DEFAULT_SETS]
    return {name: spread(read_manifest(manifest) if manifest else SETS[name](), limit) for name, manifest in specs}


def machine() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} cores"


def table_row(r: Row) -> str:
    if r.skipped:
        return f"| {r.set} | {r.system} | skipped: {r.skipped} | | | | |"
    return (f"| {r.set} | {r.system} | {r.utterances} | {r.audio_seconds / 60:.1f} "
            f"| {r.wer:.1%} | {r.cer:.1%} | {r.rtf:.3f} |")


def markdown(rows: list[Row], settings: dict[str, str], footer: str) -> str:
    lines = ["| set | system | utterances | audio min | WER | CER | RTF |", "|---|---|---:|---:|---:|---:|---:|"]
    lines += [table_row(r) for r in rows] + [""]
    lines += [f"- {name}: {text}" for name, text in settings.items()] + ["", footer]
    return "\n".join(lines)


def parse_set(spec: str) -> tuple[str, Path | None]:
    name, _, manifest = spec.partition("=")
    if not name or (not manifest and name not in SETS):
        raise argparse.ArgumentTypeError(f"expected NAME=MANIFEST or one of {', '.join(SETS)}; got {spec!r}")
    return name, Path(manifest) if manifest else None


def parse_systems(spec: str) -> list[str]:
    keys = [key.strip() for key in spec.split(",") if key.strip()]
    unknown = [key for key in keys if key not in SYSTEMS]
    if unknown or not keys:
        raise argparse.ArgumentTypeError(f"unknown system(s) {unknown}; choose from {', '.join(SYSTEMS)}")
    return keys


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.asr", description=__doc__.splitlines()[0])
    parser.add_argument("--set", dest="sets", type=parse_set, action="append", default=[], metavar="NAME=MANIFEST",
                        help=f"set to score (repeatable): NAME=MANIFEST or one of {', '.join(SETS)}; "
                        f"default: {' '.join(DEFAULT_SETS)}")
    parser.add_argument("--limit", type=int, help="score N utterances evenly spaced through each set")
    parser.add_argument("--systems", type=parse_systems, default=list(SYSTEMS), help=f"default: {','.join(SYSTEMS)}")
    parser.add_argument("--model", action="append", help="our model checkpoint, repeatable to compare several "
                        "in one run (default: the shipped default model)")
    parser.add_argument("--stream-model", help="model for ours-stream (default: the shipped streaming model)")
    parser.add_argument("--lm", help="language model for beam decoding (default: the shipped LM)")
    parser.add_argument("--threads", type=int, default=THREADS, help=f"torch and Whisper threads (default {THREADS})")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also save the raw numbers as JSON")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        sets = load_sets(args.sets, args.limit)
    except ManifestError as error:
        sys.exit(f"bench.asr: {error}")
    models = {"ours": args.model or [None], "ours-greedy": args.model or [None], "ours-stream": [args.stream_model]}
    specs = [(key, path) for key in args.systems for path in models.get(key, [None])]
    loaded = [(key, *load_system(key, path, args.lm, args.threads)) for key, path in specs]
    rows = [
        run_set(system, set_name, utterances) if system else Row(set_name, key, skipped=reason)
        for set_name, utterances in sets.items()
        for key, system, reason in loaded
    ]
    settings = {system.name: system.settings for _, system, _ in loaded if system}
    date = datetime.now().astimezone().isoformat(timespec="minutes")
    command = shlex.join(["python", "-m", "bench.asr", *argv])
    print(markdown(rows, settings, f"Machine: {machine()}; date: {date}; command: `{command}`"))
    if args.json:
        report = {"machine": machine(), "date": date, "command": command, "settings": settings,
                  "rows": [asdict(row) for row in rows]}
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
