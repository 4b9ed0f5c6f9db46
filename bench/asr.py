"""ASR benchmark: WER, CER and real-time factor of our model and its peers on the same dev sets.

    python -m bench.asr [--set NAME=MANIFEST ...] [--limit N] [--systems ours,ours-greedy,pocketsphinx,whisper-tiny.en]
                        [--model PATH ...] [--json OUT]

Prints a Markdown table (plus decoding settings, machine, date and the exact command) for bench/RESULTS.md.
All systems are scored with one normalizer (lm.vocab.normalize via lm.metrics.error_rates) and run with at most
2 threads. Only the transcribe call is timed, after loading and one untimed warm-up on 1 s of noise;
RTF = processing seconds / audio seconds over the whole set. A system that fails to load is reported as skipped.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from dataclasses import asdict, dataclass
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

PEERS = {"pocketsphinx": PocketSphinx, "whisper-tiny.en": WhisperTiny}
SYSTEMS = ("ours", "ours-greedy", *PEERS)
WARM_UP = np.random.default_rng(0).normal(0.0, 0.05, SAMPLE_RATE).astype(np.float32)  # 1 s, untimed


class Ours:
    """Our BiLSTM-CTC model through the shipped pipeline, with beam+LM or greedy decoding."""

    def __init__(self, model_path: str | None, decoder: str, lm_path: str | None) -> None:
        from minutes.pipeline import Transcriber

        self._transcriber = Transcriber.load(model_path, decoder=decoder, lm_path=lm_path)
        self.name = f"ours ({self._transcriber.name}, {decoder})"
        beam = self._transcriber.options.beam
        self.settings = (f"minutes.pipeline.Transcriber, {decoder} decoding"
                         + (f" (beam {beam.beam}, LM weight {beam.lm_weight}, word bonus {beam.word_bonus})"
                            if decoder == "beam" else "") + f", torch {THREADS} threads")

    def transcribe(self, audio: np.ndarray) -> str:
        return self._transcriber.transcribe(audio).text


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


def load_system(key: str, model_path: str | None, lm_path: str | None) -> tuple[object | None, str]:
    """The loaded, warmed-up system and "", or None and a one-line reason it cannot run."""
    try:
        if key.startswith("ours"):
            system = Ours(model_path, "greedy" if key == "ours-greedy" else "beam", lm_path)
        else:
            system = PEERS[key]()
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
    return Row(set_name, system.name, len(utterances), audio_seconds, busy, wer, cer, busy / max(audio_seconds, 1e-9))


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


def markdown(rows: list[Row], settings: dict[str, str], footer: str) -> str:
    lines = ["| set | system | utterances | audio min | WER | CER | RTF |", "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r.skipped:
            lines.append(f"| {r.set} | {r.system} | skipped: {r.skipped} | | | | |")
        else:
            lines.append(
                f"| {r.set} | {r.system} | {r.utterances} | {r.audio_seconds / 60:.1f} "
                f"| {r.wer:.1%} | {r.cer:.1%} | {r.rtf:.3f} |"
            )
    lines += [""] + [f"- {name}: {text}" for name, text in settings.items()] + ["", footer]
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
    parser.add_argument("--lm", help="language model for beam decoding (default: the shipped LM)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also save the raw numbers as JSON")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    torch.set_num_threads(THREADS)
    try:
        sets = load_sets(args.sets, args.limit)
    except ManifestError as error:
        sys.exit(f"bench.asr: {error}")
    models = args.model or [None]
    specs = [(key, path) for key in args.systems for path in (models if key.startswith("ours") else [None])]
    loaded = [(key, *load_system(key, path, args.lm)) for key, path in specs]
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
