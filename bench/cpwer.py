"""Speaker-attributed WER (cpWER, meeteval) next to plain WER on the same meetings: what attribution costs.

    python -m bench.cpwer [--manifest ../shared/data/meetings_dev/manifest.tsv] [--diarization models/diarization]
                          [--model PATH] [--cache exp/cpwer] [--known-count]

For every meeting with an STM transcript: plain WER of the whole transcript, and cpWER (concatenated
minimum-permutation WER: each reference speaker's words against the best-matching hypothesis speaker's) of the
words attributed to speakers by `minutes.speakers.attribute`, with turns from the reference RTTM (oracle:
the cost of attribution alone) and from the diarization model (the cost users see), if it loads.
Transcripts are cached under --cache (keyed by the model), so a rerun only diarizes and scores.
"""
from __future__ import annotations

import argparse
import csv
import json
import shlex
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
from meeteval.wer.wer.cp import cp_word_error_rate

from bench.asr import machine
from diarize.devset import TUNE
from lm.metrics import edit_distance
from lm.vocab import normalize
from minutes.audio import load_audio
from minutes.diarization import DiarizationError, SpeakerHint, Turn
from minutes.model import Minutes
from minutes.pipeline import Transcriber
from minutes.speakers import DEFAULT_DIARIZATION, attribute, load_diarizer
from minutes.speech import SpeechTrack

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "meetings_dev" / "manifest.tsv"


@dataclass
class Meeting:
    name: str  # e.g. so762/meeting00
    audio: Path
    rttm: Path
    reference: list[tuple[float, str, str]]  # (start, speaker, text) from the STM

    def by_speaker(self) -> dict[str, str]:
        return _join((speaker, text) for _, speaker, text in sorted(self.reference))


@dataclass
class Tally:
    """Errors and reference words summed over meetings, per measure."""
    words: int = 0
    meetings: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def add(self, measure: str, errors: int) -> None:
        self.errors[measure] = self.errors.get(measure, 0) + errors

    def rate(self, measure: str) -> str:
        return f"{100 * self.errors[measure] / self.words:.1f}" if measure in self.errors else "n/a"


def read_meetings(manifest: Path) -> list[Meeting]:
    """Meetings of the manifest (`path rttm stm duration`) that have an STM transcript."""
    meetings = []
    with manifest.open(encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            if row["stm"]:
                stm = (manifest.parent / row["stm"]).read_text(encoding="utf-8").splitlines()
                reference = [(float(p[3]), p[2], p[5]) for p in (line.split(maxsplit=5) for line in stm) if len(p) == 6]
                meetings.append(Meeting(row["path"].rsplit(".", 1)[0], manifest.parent / row["path"],
                                        manifest.parent / row["rttm"], reference))
    return meetings


def read_rttm(path: Path) -> list[Turn]:
    turns = []
    for line in path.read_text(encoding="utf-8").splitlines():
        p = line.split()
        if len(p) >= 8 and p[0] == "SPEAKER":
            turns.append(Turn(float(p[3]), float(p[3]) + float(p[4]), p[7]))
    return turns


def transcript(meeting: Meeting, transcriber: Transcriber, cache: Path) -> tuple[Minutes, SpeechTrack]:
    """The meeting's minutes (no speakers) and the speech track the transcription filled (what `minutes
    transcribe` hands the diarizer), from the cache if this model already transcribed it."""
    path = cache / f"{meeting.name.replace('/', '_')}.{transcriber.name}.json"
    speech = transcriber.speech_track()
    if path.exists() and path.with_suffix(".speech.npy").exists():
        values = np.load(path.with_suffix(".speech.npy"))
        speech.add(0.0, values, len(values) * speech.step)
        return Minutes.from_dict(json.loads(path.read_text(encoding="utf-8"))), speech
    minutes = transcriber.transcribe(load_audio(meeting.audio), source=meeting.audio.name, speech=speech)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(minutes.to_dict()), encoding="utf-8")
    np.save(path.with_suffix(".speech.npy"), speech.values())
    return minutes, speech


def _join(pairs) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """(speaker, text) pairs in time order -> {speaker: normalized words, concatenated}."""
    joined: dict[str, list[str]] = {}
    for speaker, text in pairs:
        joined.setdefault(speaker or "unknown", []).append(normalize(text))
    return {speaker: " ".join(" ".join(parts).split()) for speaker, parts in joined.items()}


def part(name: str) -> str:
    """`so762 (report)`: the meeting's set and whether the diarization model was tuned on it (diarize.devset)."""
    key = "/".join(Path(name).parts[-2:])
    return f"{Path(name).parent.name} ({'tune' if key in TUNE else 'report'})"


def cp_errors(meeting: Meeting, minutes: Minutes, turns: list[Turn]) -> int:
    hypothesis = _join((s.speaker, s.text) for s in attribute(minutes, turns).segments)
    # the texts are already in time order per speaker: no timestamps for meeteval to sort by
    return cp_word_error_rate(meeting.by_speaker(), hypothesis, reference_sort=False, hypothesis_sort=False).errors


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m bench.cpwer", description=__doc__.splitlines()[0])
    p.add_argument("--manifest", type=Path, default=DATA)
    p.add_argument("--diarization", type=Path, default=DEFAULT_DIARIZATION)
    p.add_argument("--model", type=Path, help="acoustic model (default: the shipped one)")
    p.add_argument("--cache", type=Path, default=Path("exp/cpwer"))
    p.add_argument("--known-count", action="store_true", help="tell the diarizer the reference number of speakers")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    transcriber = Transcriber.load(args.model)
    try:
        diarizer = load_diarizer(args.diarization)
    except DiarizationError as error:
        print(f"diarization model not used: {error}", file=sys.stderr)
        diarizer = None
    tallies: dict[str, Tally] = {}
    diarized_s = audio_s = 0.0
    for meeting in read_meetings(args.manifest):
        minutes, speech = transcript(meeting, transcriber, args.cache)
        tally = tallies.setdefault(part(meeting.name), Tally())
        reference = normalize(" ".join(text for _, _, text in sorted(meeting.reference))).split()
        tally.words += len(reference)
        tally.meetings += 1
        tally.add("wer", edit_distance(reference, normalize(minutes.text).split()))
        tally.add("oracle", cp_errors(meeting, minutes, read_rttm(meeting.rttm)))
        if diarizer:
            hint = SpeakerHint(num=len(meeting.by_speaker())) if args.known_count else SpeakerHint()
            started = time.perf_counter()
            turns = diarizer(load_audio(meeting.audio), hint, None, speech)
            diarized_s += time.perf_counter() - started
            audio_s += minutes.duration
            tally.add("model", cp_errors(meeting, minutes, turns))
        print(f"{meeting.name}: done", file=sys.stderr)
    print_table(tallies, diarized_s / audio_s if audio_s else None)
    print(f"\nModel: {transcriber.name}; diarization: {args.diarization if diarizer else 'none'}; "
          f"machine: {machine()}; date: {datetime.now().astimezone().isoformat(timespec='minutes')}; "
          f"command: `{shlex.join(['python', '-m', 'bench.cpwer', *argv])}`")


def print_table(tallies: dict[str, Tally], diarization_rtf: float | None) -> None:
    print("| set | meetings | reference words | WER % | cpWER %, reference turns | cpWER %, diarization model |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, t in tallies.items():
        print(f"| {name} | {t.meetings} | {t.words} | {t.rate('wer')} | {t.rate('oracle')} | {t.rate('model')} |")
    if diarization_rtf is not None:
        print(f"\nDiarization real-time factor (this run, 1 thread): {diarization_rtf:.3f}")


if __name__ == "__main__":
    main()
