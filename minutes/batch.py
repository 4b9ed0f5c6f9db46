"""The per-file job of a batch (`process_file`: one recording -> its rendered outputs) and the settings
that decide those outputs. Runners (`minutes.runner` here, `minutes.cluster` on Ray) call it per input."""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable

import torch

from acoustic.checkpoint import load_model
from lm.beam import BeamOptions
from lm.rnnlm import load_lm
from minutes.audio import AudioError, load_audio, stream_audio
from minutes.files import Job, write_atomic
from minutes.model import Minutes
from minutes.pipeline import DEFAULT_BEAM, DEFAULT_LM, Hook, SilentAudioError, Transcriber, TranscribeOptions
from minutes.writers import WRITERS


@dataclass(frozen=True)
class Settings:
    """Everything that decides a file's outputs (and so whether old outputs can be kept), plus --debug."""

    formats: tuple[str, ...]
    model: Path
    lm: Path = DEFAULT_LM
    options: TranscribeOptions = field(default_factory=TranscribeOptions)
    speakers: Any = None  # minutes.speakers.SpeakerOptions, or None: no diarization
    debug: bool = False

    def load(self, threads: int | None = None) -> Transcriber:
        """The model, with `threads` intra-op threads per process (default: torch's)."""
        if threads:
            torch.set_num_threads(threads)
        return Transcriber(self.model, self.options, self.lm)

    def check(self) -> None:
        """Read the model (and LM) files without building the pipeline, so a bad one fails before any file
        (CheckpointError / LMCheckpointError, both ValueError) and the driver keeps no model in memory."""
        load_model(self.model)
        if self.options.decoder == "beam":
            load_lm(self.lm)

    def model_files(self) -> list[Path]:
        """Every file the outputs depend on: acoustic model, LM (beam), diarization model files (speakers)."""
        files = [self.model, self.lm] if self.options.decoder == "beam" else [self.model]
        if self.speakers is not None:
            files += sorted(p for p in Path(self.speakers.model).rglob("*") if p.is_file() and p.suffix != ".md")
        return files

    def fingerprint(self) -> str:
        """Short hash of the model files (path, size, mtime) and decoding options; formats are not part of it
        (each output file is checked on its own)."""
        files = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in self.model_files()]
        options = [asdict(self.options), repr(self.speakers)]
        return hashlib.sha256(json.dumps([files, options], sort_keys=True, default=str).encode()).hexdigest()[:16]


def make_options(decoder: str, beam: BeamOptions = DEFAULT_BEAM, hotwords: dict[str, float] | None = None,
                 max_chunk_s: float = 30.0) -> TranscribeOptions:
    return TranscribeOptions(decoder=decoder, beam=beam, hotwords=tuple((hotwords or {}).items()),
                             max_chunk_s=max_chunk_s)


@dataclass(frozen=True)
class Outcome:
    """What happened to one input. `permanent` failures come from the input itself (a rerun skips them
    until the file changes); others (a full disk, an unexpected error) are retried on the next run."""

    source: str
    status: str  # done | skipped | failed
    reason: str = ""
    outputs: tuple[str, ...] = ()
    audio_s: float = 0.0
    wall_s: float = 0.0
    permanent: bool = False
    warnings: tuple[str, ...] = ()


def file_date(path: Path) -> str:
    """The recording's date as the minutes show it: the file's modification day in this machine's time zone
    (deterministic, not 'now'; the Ray driver computes it, so remote nodes' time zones do not matter)."""
    return dt.date.fromtimestamp(path.stat().st_mtime).isoformat()


def transcribe_file(source: Path, transcriber: Transcriber, settings: Settings, hook: Hook | None = None,
                    date: str | None = None) -> tuple[Minutes, list[str]]:
    """The steps of one file -> (minutes, warnings): decode it in blocks and transcribe window by window
    (bounded memory), then, if asked, diarize the whole file (with the transcription's speech track) and
    attribute the words to speakers.
    `date` defaults to the file's (see file_date)."""
    total_s, blocks = stream_audio(source)
    # the diarizer's speech gate was tuned on the offline model's track; the streaming engine (--stream) has none
    speech = transcriber.speech_track() if settings.speakers and isinstance(transcriber, Transcriber) else None
    options = {"speech": speech} if speech is not None else {}
    minutes = transcriber.transcribe_blocks(blocks, source=source.name, hook=hook, date=date or file_date(source),
                                            total_s=total_s, **options)
    if settings.speakers is None:
        return minutes, []
    from minutes.speakers import add_speakers  # pyannote is heavy: only when diarizing

    return add_speakers(minutes, load_audio(source), settings.speakers, hook, speech)


def render(minutes: Minutes, formats: Iterable[str]) -> dict[str, str]:
    """{format: file text} of every requested format."""
    texts = {}
    for fmt in formats:
        buffer = io.StringIO(newline="\n")
        WRITERS[fmt](minutes, buffer)
        texts[fmt] = buffer.getvalue()
    return texts


def process_file(job: Job, transcriber: Transcriber, settings: Settings, hook: Hook | None = None,
                 date: str | None = None) -> tuple[Outcome, dict[str, str]]:
    """The per-file job: transcribe `job.source` and render its formats -> (Outcome, {format: text}).
    Never raises for a bad input: the Outcome carries a one-line reason (--debug re-raises surprises)."""
    started = time.monotonic()
    try:
        minutes, warnings = transcribe_file(job.source, transcriber, settings, hook, date)
        texts = render(minutes, settings.formats)
    except (AudioError, SilentAudioError) as error:
        return _failed(job, str(error), started, permanent=True), {}
    except Exception as error:  # one bad file must not stop the batch
        if settings.debug:
            raise
        return _failed(job, f"unexpected {type(error).__name__}: {error} (rerun with --debug for details)",
                       started), {}
    outputs = tuple(str(job.output(fmt)) for fmt in texts)
    return Outcome(str(job.source), "done", outputs=outputs, audio_s=minutes.duration,
                   wall_s=time.monotonic() - started, warnings=tuple(warnings)), texts


def write_outputs(job: Job, outcome: Outcome, texts: dict[str, str]) -> Outcome:
    """Write each rendered format atomically; a write error turns the outcome into a (retryable) failure."""
    try:
        for fmt, text in texts.items():
            write_atomic(job.output(fmt), lambda file, t=text: file.write(t))
    except OSError as error:
        return replace(outcome, status="failed", reason=f"cannot write output: {error.strerror or error}", outputs=())
    return outcome


def run_one(job: Job, transcriber: Transcriber, settings: Settings, hook: Hook | None = None) -> Outcome:
    """process_file, then write its outputs (what a local worker does for each file)."""
    return write_outputs(job, *process_file(job, transcriber, settings, hook))


def _failed(job: Job, reason: str, started: float, permanent: bool = False) -> Outcome:
    return Outcome(str(job.source), "failed", reason, wall_s=time.monotonic() - started, permanent=permanent)
