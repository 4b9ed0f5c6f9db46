"""The `minutes` command line: `minutes transcribe INPUT... [-o OUTDIR] [-f md,srt,...] [--model PATH]`."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from tqdm import tqdm

from acoustic.checkpoint import CheckpointError
from lm.beam import BeamOptions
from minutes import __version__
from minutes.audio import AudioError, load_audio
from minutes.diarization import DiarizationError, SpeakerHint
from minutes.files import Job, check_writable, discover, write_atomic
from minutes.model import Minutes
from minutes.pipeline import DECODERS, DEFAULT_BEAM, DEFAULT_HOTWORD_BONUS, SilentAudioError, Transcriber
from minutes.speakers import SpeakerOptions, add_speakers, name_speakers, parse_names, resolve
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
    add_speaker_arguments(t)
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    t.add_argument("--debug", action="store_true", help="show full tracebacks for unexpected errors")
    r = commands.add_parser("render", help="write minutes again from their JSON (e.g. with speaker names), "
                            "without transcribing")
    r.set_defaults(run=render_command)
    r.add_argument("inputs", nargs="+", type=Path, metavar="JSON", help="minutes JSON files written by transcribe")
    r.add_argument("-o", "--output-dir", type=Path, help="where outputs go (default: beside each JSON)")
    r.add_argument("-f", "--formats", type=parse_formats, default=DEFAULT_FORMATS,
                   help=f"comma-separated: {','.join(FORMATS)} or all (default: md)")
    r.add_argument("--names", type=names_argument, help=NAMES_HELP)
    add_app_commands(commands)
    return parser


def add_app_commands(commands: argparse._SubParsersAction) -> None:
    """`tui [FILE]` and `record`: the terminal app."""
    for name, text in (("tui", "the terminal app: record or open a meeting, mark decisions, export minutes"),
                       ("record", "start the terminal app recording, transcribing as it goes")):
        a = commands.add_parser(name, help=text, description=text)
        a.set_defaults(run=app_command)
        if name == "tui":
            a.add_argument("file", nargs="?", type=Path, metavar="FILE", help="a recording to open and transcribe")
        a.add_argument("--device", help="input device, by index or name (see --list-devices; default: ask)")
        a.add_argument("--list-devices", action="store_true", help="list the input devices and exit")
        a.add_argument("--recordings-dir", type=Path, help="where recordings are saved as they are made "
                       "(default: $MINUTES_RECORDINGS or ~/.local/share/minutes/recordings)")
        a.add_argument("-o", "--output-dir", type=Path, default=Path("."), help="export folder (default: .)")
        a.add_argument("-f", "--formats", type=parse_formats, default=("md", "json"),
                       help=f"export formats: {','.join(FORMATS)} or all (default: md,json)")
        a.add_argument("--model", type=Path, help="acoustic model file (default: the shipped model)")
        a.add_argument("--decoder", choices=DECODERS, default="beam",
                       help="beam (default, with the language model) or greedy")


def app_command(args: argparse.Namespace) -> int:
    from tui.main import run  # imported here: minutes never imports tui (an upper layer) at load time

    return run(args)


NAMES_HELP = ('speaker names: "Anna,Bartek" (in order of first appearance), "SPEAKER_00=Anna,...", '
              "or a file of SPEAKER_00=Anna lines (# comments)")


def add_speaker_arguments(t: argparse.ArgumentParser) -> None:
    """Diarization options of `transcribe`."""
    t.add_argument("--speakers", type=int, metavar="N", help="exact number of speakers, if known")
    t.add_argument("--min-speakers", type=int, metavar="N", help="at least N speakers")
    t.add_argument("--max-speakers", type=int, metavar="N", help="at most N speakers")
    t.add_argument("--no-diarize", action="store_true", help="do not identify speakers")
    t.add_argument("--diarization", type=Path, metavar="DIR",
                   help="diarization model folder (default: the shipped models/diarization)")
    t.add_argument("--names", type=names_argument, help=NAMES_HELP)


def names_argument(value: str) -> object:
    try:
        return parse_names(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


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
        args.speaker_options, warning = resolve(args.diarization, SpeakerHint(args.speakers, args.min_speakers,
                                                args.max_speakers), args.names, diarize=not args.no_diarize)
    except (CheckpointError, DiarizationError, ValueError, OSError) as error:
        print(f"minutes: error: {error}", file=sys.stderr)
        return 2
    if warning:
        print(f"minutes: warning: {warning}", file=sys.stderr)
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
            if args.speaker_options:
                minutes = with_speakers(minutes, audio, args.speaker_options, hook, job.source)
        write_formats(minutes, job, args.formats)
    except (AudioError, SilentAudioError) as error:
        return str(error)
    except OSError as error:
        return f"cannot write output: {error.strerror or error}"
    except Exception as error:  # one bad file must not stop the batch; --debug shows the traceback
        if args.debug:
            raise
        return f"unexpected {type(error).__name__}: {error} (rerun with --debug for details)"
    return None


def with_speakers(minutes: Minutes, audio: np.ndarray, options: SpeakerOptions, hook: Callable[..., None],
                  source: Path) -> Minutes:
    """The diarization step of a job; its warnings are printed, one line each."""
    minutes, warnings = add_speakers(minutes, audio, options, hook)
    for warning in warnings:
        print(f"minutes: warning: {source}: {warning}", file=sys.stderr)
    return minutes


def write_formats(minutes: Minutes, job: Job, formats: tuple[str, ...]) -> None:
    for fmt in formats:
        write_atomic(job.output(fmt), lambda f, w=WRITERS[fmt]: w(minutes, f))


def render_command(args: argparse.Namespace) -> int:
    """Re-render minutes JSON files in other formats, with new speaker names if given."""
    jobs = [Job(path, (args.output_dir or path.parent) / path.stem) for path in args.inputs]
    problem = next(filter(None, (check_writable(job.out_stem.parent) for job in jobs)), None)
    if problem:
        print(f"minutes: error: {problem}", file=sys.stderr)
        return 2
    code = 0
    for job in jobs:
        try:
            minutes = Minutes.from_dict(json.loads(job.source.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, ValueError) as error:  # JSONDecodeError is a ValueError
            reason = getattr(error, "strerror", None) or error
            print(f"minutes: error: {job.source}: not readable minutes JSON: {reason}", file=sys.stderr)
            code = 2
            continue
        if args.names:
            minutes, warnings = name_speakers(minutes, args.names)
            for warning in warnings:
                print(f"minutes: warning: {job.source}: {warning}", file=sys.stderr)
        try:
            write_formats(minutes, job, args.formats)
        except OSError as error:
            print(f"minutes: error: cannot write output: {error.strerror or error}", file=sys.stderr)
            code = max(code, 1)
            continue
        print(f"{job.source} -> {', '.join(str(job.output(fmt)) for fmt in args.formats)}")
    return code


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
