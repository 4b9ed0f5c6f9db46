"""The `minutes` command line: `minutes transcribe INPUT... [-o OUTDIR] [-f md,srt,...] [--model PATH]`."""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from acoustic.checkpoint import CheckpointError
from lm.beam import BeamOptions
from minutes import __version__
from minutes.audio import AUDIO_EXTENSIONS
from minutes.batch import Outcome, Settings, make_options
from minutes.cluster import BackendError
from minutes.console import Bars, print_summary, problem_lines
from minutes.diarization import DiarizationError, SpeakerHint
from minutes.files import Job, check_writable, discover, parse_extensions, write_atomic
from minutes.model import Minutes
from minutes.pipeline import DECODERS, DEFAULT_BEAM, DEFAULT_HOTWORD_BONUS, DEFAULT_LM, resolve_model
from minutes.resume import REPORT, BusyError
from minutes.runner import BACKENDS, RunOptions, run_batch
from minutes.speakers import name_speakers, parse_names, resolve
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
    add_batch_arguments(t)
    t.add_argument("--stream", action="store_true",
                   help="transcribe through the live streaming path (latency-controlled BiLSTM, chunk by chunk; "
                   "default model: the streaming model) to see what a live session would write")
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
    r.add_argument("--force", action="store_true",
                   help="overwrite outputs that exist, the JSON itself included when json is rendered beside it "
                   "(default: if any output exists, or two inputs would write the same file, write nothing and "
                   "exit 2)")
    add_app_commands(commands)
    return parser


def add_batch_arguments(t: argparse.ArgumentParser) -> None:
    """Folder runs: which files, how many workers, where (this machine or a Ray cluster), redo or resume."""
    t.add_argument("--ext", type=extensions_argument, default=AUDIO_EXTENSIONS, metavar="EXTS",
                   help=f"file extensions taken from folders (default: {','.join(e[1:] for e in AUDIO_EXTENSIONS)})")
    t.add_argument("-j", "--jobs", type=int, metavar="N",
                   help="parallel worker processes, each with its own model (default: from cores and free memory)")
    t.add_argument("--force", action="store_true",
                   help="transcribe again even inputs whose outputs are up to date (folders and several inputs)")
    t.add_argument("--backend", choices=BACKENDS, default="local",
                   help="local: worker processes on this machine (default); ray: actors on a Ray cluster")
    t.add_argument("--address", metavar="ADDR",
                   help="Ray cluster to join, e.g. 10.0.0.5:6379 or auto (default: start Ray on this machine)")


def extensions_argument(value: str) -> tuple[str, ...]:
    try:
        return parse_extensions(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


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
        a.add_argument("--stream", action="store_true", help="transcribe recordings live with the streaming "
                       "engine (LC-BLSTM) instead of decoding pause-cut chunks with the offline model")
        a.add_argument("--stream-model", type=Path, help="streaming model file (default: the shipped one)")


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
        settings, warning = transcribe_settings(args)
        if args.stream:
            settings = streaming_settings(settings, args)
        run = RunOptions(jobs=args.jobs, force=args.force, backend=args.backend, address=args.address,
                         resume=len(args.inputs) > 1 or any(Path(i).is_dir() for i in args.inputs))
        settings.check()  # a bad model fails here, before any file
    except (CheckpointError, DiarizationError, ValueError, OSError) as error:
        print(f"minutes: error: {error}", file=sys.stderr)
        return 2
    if warning:
        print(f"minutes: warning: {warning}", file=sys.stderr)
    jobs, problems = discover(args.inputs, args.output_dir, args.ext)
    unusable = [Outcome(item, "failed", reason) for item, reason in problems]
    for outcome in unusable:
        problem_lines(outcome)
    try:
        with Bars(args.quiet) as bars:
            outcomes = run_batch(jobs, args.output_dir, settings, run, bars, problem_lines, unusable)
    except (BusyError, BackendError) as error:
        print(f"minutes: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("minutes: interrupted; finished outputs are complete, nothing half-written was left; "
              "run the same command again to go on", file=sys.stderr)
        return 130
    print_summary(outcomes, args.output_dir / REPORT if run.resume else None)
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def transcribe_settings(args: argparse.Namespace) -> tuple[Settings, str | None]:
    """The options that decide the outputs, validated (ValueError, OSError, DiarizationError), and a warning
    line when diarization is off because its model is missing."""
    speakers, warning = resolve(args.diarization, SpeakerHint(args.speakers, args.min_speakers, args.max_speakers),
                                args.names, diarize=not args.no_diarize)
    options = make_options(args.decoder, beam_options(args), read_hotwords(args))
    return Settings(args.formats, resolve_model(args.model), args.lm or DEFAULT_LM, options, speakers,
                    args.debug), warning


def streaming_settings(settings: Settings, args: argparse.Namespace) -> Settings:
    """--stream: the same outputs from minutes.streaming's engine (imported only when asked for)."""
    from minutes.streaming import stream_settings

    return stream_settings(settings, model_given=args.model is not None)


def beam_options(args: argparse.Namespace) -> BeamOptions:
    return replace(DEFAULT_BEAM, beam=args.beam, lm_weight=args.lm_weight, word_bonus=args.word_bonus)


def read_hotwords(args: argparse.Namespace) -> dict[str, float]:
    """--hotwords and --hotwords-file -> {word: bonus}; "Anna Kowalski" gives two hotwords. Raises OSError
    for an unreadable file."""
    entries = args.hotwords.split(",")
    if args.hotwords_file:
        entries += [line.split("#", 1)[0] for line in args.hotwords_file.read_text(encoding="utf-8").splitlines()]
    return {word: args.hotword_bonus for entry in entries for word in entry.split()}


def write_formats(minutes: Minutes, job: Job, formats: tuple[str, ...]) -> None:
    for fmt in formats:
        write_atomic(job.output(fmt), lambda f, w=WRITERS[fmt]: w(minutes, f))


def render_command(args: argparse.Namespace) -> int:
    """Re-render minutes JSON files in other formats, with new speaker names if given. Nothing is written
    when two inputs would write the same file, or (without --force) when an output exists."""
    jobs = render_jobs(args.inputs, args.output_dir)
    problem = render_conflict(jobs, args.formats, args.force) or next(
        filter(None, (check_writable(job.out_stem.parent) for job in jobs)), None)
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


def render_jobs(inputs: list[Path], output_dir: Path | None) -> list[Job]:
    """One job per input file, outputs in output_dir or beside it; a file named twice is rendered once."""
    unique: dict[Path, Path] = {}
    for path in inputs:
        unique.setdefault(path.resolve(), path)
    return [Job(path, (output_dir or path.parent) / path.stem) for path in unique.values()]


def render_conflict(jobs: list[Job], formats: tuple[str, ...], force: bool) -> str | None:
    """Why render must write nothing: two inputs would write the same file, or (unless `force`) outputs exist
    (an input among them when json is rendered beside it); None when it may go on."""
    owners: dict[Path, Path] = {}
    existing = []
    for job in jobs:
        for path in map(job.output, formats):
            owner = owners.setdefault(path.resolve(), job.source)
            if owner != job.source:
                return (f"{owner} and {job.source} would both write {path}; "
                        "render them one at a time into different -o folders")
            if os.path.lexists(path):
                existing.append(f"{path} (the input)" if path.resolve() == job.source.resolve() else str(path))
    if existing and not force:
        shown = ", ".join(existing[:3]) + (f" and {len(existing) - 3} more" if len(existing) > 3 else "")
        return f"would overwrite {shown}; pass --force to overwrite, or -o to write elsewhere"
    return None
