"""Speaker diarization on meetings_dev: DER (no collar and a +-0.25 s collar), JER and speed, per subset and
tune/report part (diarize.devset: hyper-parameters were tuned on the `tune` part only).

    python -m bench.diarization [--pipeline models/diarization] [--dev ../shared/data/meetings_dev]
    python -m bench.diarization --long 120     # RTF and peak RSS on a 120-minute recording
The diarizer gets the speech track of the shipped acoustic model (`--model`; `--no-speech-track`: none), as in
`minutes transcribe`; the transcription that fills it is not timed (it runs anyway).

DER and JER come from pyannote.metrics with the UEM of each recording (ami_debug has one; elsewhere the whole
file). pyannote's `collar` is the total width removed around each reference boundary, so the NIST-style
+-0.25 s collar is `collar=0.5`. The peer row "oracle speech, one speaker" labels all reference speech as a
single speaker: the DER of a system that finds speech perfectly and never tells speakers apart. RTF is wall
time over audio duration through `minutes.diarization.Diarizer` (what `minutes transcribe` runs); CPU RTF is
process CPU time over audio duration, less sensitive to other jobs on a shared machine.
"""
from __future__ import annotations

import argparse
import resource
import shlex
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import torch

from bench.asr import machine
from minutes.diarization import DEFAULT_DIARIZATION, DiarizationError, Diarizer, Turn  # sets the offline/telemetry variables
from diarize.devset import Recording, load_devset, part
from minutes.pipeline import Transcriber
from minutes.speech import SpeechTrack
from pyannote.core import Annotation, Segment
from pyannote.metrics.diarization import DiarizationErrorRate, JaccardErrorRate

SAMPLE_RATE = 16000


@dataclass
class Scores:
    """Accumulated metrics of one table row."""
    der: DiarizationErrorRate = field(default_factory=lambda: DiarizationErrorRate(collar=0.0))
    der_collar: DiarizationErrorRate = field(default_factory=lambda: DiarizationErrorRate(collar=0.5))
    jer: JaccardErrorRate = field(default_factory=lambda: JaccardErrorRate(collar=0.0))
    files: int = 0
    seconds: float = 0.0
    wall: float = 0.0
    cpu: float = 0.0
    speakers_ref: int = 0
    speakers_hyp: int = 0

    def add(self, r: Recording, hyp: Annotation, wall: float = 0.0, cpu: float = 0.0) -> None:
        for metric in (self.der, self.der_collar, self.jer):
            metric(r.reference, hyp, uem=r.uem)
        self.files += 1
        self.seconds += r.duration
        self.wall += wall
        self.cpu += cpu
        self.speakers_ref += len(r.reference.labels())
        self.speakers_hyp += len(hyp.labels())

    def row(self, name: str, system: str, timed: bool = True) -> str:
        speed = f"{self.wall / self.seconds:.3f} | {self.cpu / self.seconds:.3f}" if timed else "- | -"
        return (f"| {name} | {system} | {self.files} | {self.seconds / 60:.1f} | {100 * abs(self.der):.1f} | "
                f"{100 * abs(self.der_collar):.1f} | {100 * abs(self.jer):.1f} | "
                f"{self.speakers_hyp / self.files:.1f} / {self.speakers_ref / self.files:.1f} | {speed} |")


def annotation(turns: list[Turn], uri: str) -> Annotation:
    ann = Annotation(uri=uri)
    for i, t in enumerate(turns):
        ann[Segment(t.start, t.end), i] = t.speaker
    return ann


def one_speaker(reference: Annotation) -> Annotation:
    """All reference speech as one speaker (the peer row)."""
    ann = Annotation(uri=reference.uri)
    for i, segment in enumerate(reference.get_timeline().support()):
        ann[segment, i] = "A"
    return ann


def transcribed_track(transcriber: Transcriber | None, audio: np.ndarray) -> SpeechTrack | None:
    """The speech track `minutes transcribe` hands the diarizer: the one its transcription fills (untimed here:
    the transcription runs anyway)."""
    if transcriber is None:
        return None
    track = transcriber.speech_track()
    transcriber.transcribe(audio, speech=track)
    return track


def evaluate(diarizer: Diarizer, recordings: list[Recording], transcriber: Transcriber | None) -> list[str]:
    """Table rows: per (subset, part), our pipeline then the one-speaker peer; totals per part."""
    groups: dict[tuple[str, str], tuple[Scores, Scores]] = {}
    for r in recordings:
        audio = r.audio()
        speech = transcribed_track(transcriber, audio)
        wall, cpu = time.perf_counter(), time.process_time()
        turns = diarizer(audio, speech=speech)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        hyp = annotation(turns, r.uri)
        for key in ((r.subset, part(r)), ("all", part(r))):
            ours, peer = groups.setdefault(key, (Scores(), Scores()))
            ours.add(r, hyp, wall, cpu)
            peer.add(r, one_speaker(r.reference))
        print(f"{r.key}: {len(turns)} turns, {len(hyp.labels())} speakers (ref {len(r.reference.labels())}), "
              f"{wall:.1f} s", file=sys.stderr)
    rows = []
    for (subset, p), (ours, peer) in sorted(groups.items(), key=lambda kv: (kv[0][0] == "all", kv[0])):
        rows.append(ours.row(f"{subset} ({p})", "minutes-diarization"))
        rows.append(peer.row(f"{subset} ({p})", "oracle speech, one speaker", timed=False))
    return rows


def long_run(diarizer: Diarizer, recordings: list[Recording], minutes: float, transcriber: Transcriber | None) -> str:
    """RTF and peak RSS on the so762 meetings concatenated (and repeated) to `minutes`."""
    parts = [r.audio() for r in recordings if r.subset == "so762"]
    audio = np.concatenate(parts)
    audio = np.tile(audio, int(np.ceil(minutes * 60 * SAMPLE_RATE / len(audio))))[: int(minutes * 60 * SAMPLE_RATE)]
    speech = transcriber.speech_of(audio) if transcriber else None  # what a live recording gets; untimed
    wall, cpu = time.perf_counter(), time.process_time()
    turns = diarizer(audio, speech=speech)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    speakers = len({t.speaker for t in turns})
    return (f"| {minutes:.0f} min (so762 meetings concatenated) | {len(turns)} turns, {speakers} speakers | "
            f"{wall / (minutes * 60):.3f} | {cpu / (minutes * 60):.3f} | {rss:.2f} GB |")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m bench.diarization", description=__doc__.splitlines()[0])
    p.add_argument("--pipeline", type=Path, default=DEFAULT_DIARIZATION)
    p.add_argument("--dev", type=Path, default=Path("../shared/data/meetings_dev"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--long", type=float, metavar="MINUTES", help="only time one long recording (RTF, peak RSS)")
    p.add_argument("--model", type=Path, help="acoustic model whose speech track the diarizer gets (default: "
                   "the shipped one, as `minutes transcribe`)")
    p.add_argument("--no-speech-track", action="store_true", help="diarize without the transcriber's speech track")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        diarizer = Diarizer.load(args.pipeline)
        transcriber = None if args.no_speech_track else Transcriber.load(args.model)
    except (DiarizationError, OSError, ValueError) as error:
        sys.exit(f"bench.diarization: {error}")
    if not (args.dev / "manifest.tsv").is_file():
        sys.exit(f"bench.diarization: no meetings_dev set in {args.dev} (manifest.tsv is missing)")
    recordings = load_devset(args.dev)
    if args.long:
        print("| recording | output | RTF | CPU RTF | peak RSS |\n|---|---|---:|---:|---:|")
        print(long_run(diarizer, recordings, args.long, transcriber))
    else:
        print("| set (part) | system | files | audio min | DER % | DER % (+-0.25 s) | JER % | speakers hyp / ref "
              "| RTF | CPU RTF |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        print("\n".join(evaluate(diarizer, recordings, transcriber)))
    track = "none" if transcriber is None else transcriber.name
    print(f"\nPipeline: {args.pipeline}; speech track: {track}; threads: {args.threads}; machine: {machine()} (no GPU); "
          f"date: {datetime.now().astimezone().isoformat(timespec='minutes')}; "
          f"command: `{shlex.join(['python', '-m', 'bench.diarization', *argv])}`")


if __name__ == "__main__":
    main()
