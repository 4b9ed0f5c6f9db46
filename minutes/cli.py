"""The `minutes` command line: `minutes transcribe INPUT... [-o OUTDIR] [-f md,srt,...] [--model PATH]`."""
from __future__ import annotations

import argparse
import datetime as dt
import sys
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator

from tqdm import tqdm

from acoustic.checkpoint import CheckpointError
from lm.beam import BeamOptions
from minutes import __version__
from minutes.audio import AudioError, load_audio
from minutes.files import Job, check_writable, discover, write_atomic
from minutes.pipeline import DECODERS, DEFAULT_BEAM, DEFAULT_HOTWORD_BONUS, SilentAudioError, Transcriber
from minutes.writers import DEFAULT_FORMATS, WRITERS

FORMATS = tuple(WRITERS)


def parse_formats(value: str) -> tuple[str, ...]:
    """`md,srt` or `all` -> validated format names."""
    names = FORMATS if value.strip() == "all" else tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
    unknown = [n for n in names if n not in WRITERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown format {', '.join(map(repr, unknown)) or repr(value)}; "
                                         f"choose from {', '.join(FORMATS)} or all")
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minutes", description="Offline meeting transcription into minutes.")
    parser.add_argument("--version", action="version", version=f"minutes {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    t = commands.add_parser("transcribe", help="transcribe audio files or folders into minutes")
    t.set_defaults(run=transcribe_command)
    t.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files or folders (searched recursively)")
    t.add_argument("-o", "--output-dir", type=Path, default=Path("."), help="where outputs go (default: .)")
    t.add_argument("-f", "--formats", type=parse_formats, default=DEFAULT_FORMATS,
                   help=f"comma-separated: {','.join(FORMATS)} or all (default: md)")
    t.add_argument("--model", type=Path, help="acoustic model file (default: the shipped model)")
    t.add_argument("--decoder", choices=DECODERS, default="beam",
                   help="beam: CTC prefix beam search with the RNN language model (default); greedy: best path")
    t.add_argument("--lm", type=Path, help="character language model file (default: the shipped LM)")
    t.add_argument("--beam", type=int, default=DEFAULT_BEAM.beam, help=f"beam width 1..256 (default {DEFAULT_BEAM.beam})")
    t.add_argument("--lm-weight", type=float, default=DEFAULT_BEAM.lm_weight,
                   help=f"language model weight 0..5 (default {DEFAULT_BEAM.lm_weight})")
    t.add_argument("--word-bonus", type=float, default=DEFAULT_BEAM.word_bonus,
                   help=f"score added per word -10..10 (default {DEFAULT_BEAM.word_bonus})")
    t.add_argument("--hotwords", default="", help='comma-separated words and names to favour, spelled in letters, '
                   'e.g. "Anna Kowalski,Kubernetes"')
    t.add_argument("--hotwords-file", type=Path, help="a file of hotwords, one per line (# starts a comment)")
    t.add_argument("--hotword-bonus", type=float, default=DEFAULT_HOTWORD_BONUS,
                   help=f"log-score bonus of a hotword, -100..100 (default {DEFAULT_HOTWORD_BONUS:g})")
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    t.add_argument("--debug", action="store_true", help="show full tracebacks for unexpected errors")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


def transcribe_command(args: argparse.Namespace) -> int:
    problem = check_writable(args.output_dir)
    if problem:
        print(f"minutes: error: {problem}", file=sys.stderr)
        return 2
    try:
        transcriber = Transcriber.load(args.model, decoder=args.decoder, lm_path=args.lm, beam=beam_options(args),
                                       hotwords=read_hotwords(args))
    except (CheckpointError, ValueError, OSError) as error:
        print(f"minutes: error: {error}", file=sys.stderr)
        return 2
    jobs, failures = discover(args.inputs, args.output_dir)
    for item, reason in failures:
        print(f"minutes: error: {item}: {reason}", file=sys.stderr)
    done = []
    try:
        for number, job in enumerate(jobs, start=1):
            reason = run_job(job, transcriber, args, f"[{number}/{len(jobs)}]")
            if reason:
                failures.append((str(job.source), reason))
                print(f"minutes: error: {job.source}: {reason}", file=sys.stderr)
            else:
                done.append(job)
    except KeyboardInterrupt:
        print("minutes: interrupted; finished outputs are complete, nothing half-written was left", file=sys.stderr)
        return 130
    print_summary(done, failures, args.formats)
    return 1 if failures else 0


def beam_options(args: argparse.Namespace) -> BeamOptions:
    return replace(DEFAULT_BEAM, beam=args.beam, lm_weight=args.lm_weight, word_bonus=args.word_bonus)


def read_hotwords(args: argparse.Namespace) -> dict[str, float]:
    """--hotwords and --hotwords-file -> {word: bonus}; "Anna Kowalski" gives two hotwords. Raises OSError
    for an unreadable file."""
    entries = args.hotwords.split(",")
    if args.hotwords_file:
        entries += [line.split("#", 1)[0] for line in args.hotwords_file.read_text(encoding="utf-8").splitlines()]
    return {word: args.hotword_bonus for entry in entries for word in entry.split()}


def run_job(job: Job, transcriber: Transcriber, args: argparse.Namespace, label: str) -> str | None:
    """Transcribe one input and write every format; returns None on success, else a one-line reason."""
    try:
        audio = load_audio(job.source)
        date = dt.date.fromtimestamp(job.source.stat().st_mtime).isoformat()
        with progress(label, job.source.name, args.quiet) as hook:
            minutes = transcriber.transcribe(audio, source=job.source.name, hook=hook, date=date)
        for fmt in args.formats:
            write_atomic(job.output(fmt), lambda f, w=WRITERS[fmt]: w(minutes, f))
    except (AudioError, SilentAudioError) as error:
        return str(error)
    except OSError as error:
        return f"cannot write output: {error.strerror or error}"
    except Exception as error:  # one bad file must not stop the batch; --debug shows the traceback
        if args.debug:
            raise
        return f"unexpected {type(error).__name__}: {error} (rerun with --debug for details)"
    return None


@contextmanager
def progress(label: str, name: str, quiet: bool) -> Iterator[Callable[..., None]]:
    """Yield a progress hook(step, completed=, total=) drawn as a tqdm bar on stderr."""
    with tqdm(desc=f"{label} {name}", unit="chunk", disable=quiet, leave=False, file=sys.stderr) as bar:
        def hook(step: str, completed: int, total: int) -> None:
            bar.total, bar.n = total, completed
            bar.refresh()
        yield hook


def print_summary(done: list[Job], failures: list[tuple[str, str]], formats: tuple[str, ...]) -> None:
    for job in done:
        outputs = ", ".join(str(job.output(fmt)) for fmt in formats)
        print(f"{job.source} -> {outputs}")
    if failures:
        print(f"{len(done)} done, {len(failures)} failed:", file=sys.stderr)
        for item, reason in failures:
            print(f"  {item}: {reason}", file=sys.stderr)
