"""Speaker-attributed minutes: words assigned to diarization turns, segments cut at speaker changes, names.

A word goes to the speaker whose turns overlap its span the most. Ties (a word inside two overlapping turns,
as in cross-talk or quick turn-taking) go to the previous word's speaker when it is among them, else to the
speaker of the longer turn; a word that falls in a gap between turns goes to the nearest turn.
"""
from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from minutes import diarization
from minutes.diarization import DEFAULT_DIARIZATION, DiarizationError, SpeakerHint, Turn
from minutes.speech import SpeechTrack
from minutes.model import Minutes, Segment, Word

Diarize = Callable[..., list[Turn]]  # diarizer(audio, hint, hook, speech) -> turns (minutes.diarization.Diarizer)

_MIN_SPAN = 1e-3  # a zero-length word counts as 1 ms, so a turn around it still overlaps it
_TIE = 1e-6  # overlaps this close (seconds) are ties


class _TurnIndex:
    """Turns sorted by start, with the running maximum end, for overlap and nearest-turn queries."""

    def __init__(self, turns: Sequence[Turn]) -> None:
        self.turns = sorted(turns, key=lambda t: (t.start, t.end))
        self.starts = [t.start for t in self.turns]
        self.reach: list[int] = []  # reach[i]: index of the turn with the largest end among turns[:i + 1]
        for i, turn in enumerate(self.turns):
            best = self.reach[-1] if self.reach else i
            self.reach.append(i if turn.end > self.turns[best].end else best)

    def overlaps(self, start: float, end: float) -> dict[str, tuple[float, float]]:
        """{speaker: (total overlap with [start, end], longest overlapping turn)} of the turns that overlap."""
        found: dict[str, tuple[float, float]] = {}
        j = bisect_left(self.starts, end) - 1
        while j >= 0 and self.turns[self.reach[j]].end > start:
            turn = self.turns[j]
            overlap = min(end, turn.end) - max(start, turn.start)
            if overlap > 0:
                total, longest = found.get(turn.speaker, (0.0, 0.0))
                found[turn.speaker] = (total + overlap, max(longest, turn.end - turn.start))
            j -= 1
        return found

    def nearest(self, start: float, end: float) -> str | None:
        """The speaker of the turn closest to [start, end] (which no turn overlaps); None without turns."""
        j = bisect_left(self.starts, end)
        before = self.turns[self.reach[j - 1]] if j > 0 else None
        after = self.turns[j] if j < len(self.turns) else None
        if before and (after is None or start - before.end <= after.start - end):
            return before.speaker
        return after.speaker if after else None


def assign_speakers(words: Sequence[Word], turns: Sequence[Turn]) -> list[str | None]:
    """The speaker of each word (see the module docstring); all None when there are no turns."""
    index = _TurnIndex(turns)
    speakers: list[str | None] = []
    previous: str | None = None
    for word in words:
        end = _end(word.start, word.end)
        previous = _pick(index.overlaps(word.start, end), previous) or index.nearest(word.start, end)
        speakers.append(previous)
    return speakers


def _end(start: float, end: float) -> float:
    """The end of a span, a zero-length one stretched to _MIN_SPAN."""
    return end if end > start else start + _MIN_SPAN


def _pick(found: dict[str, tuple[float, float]], previous: str | None) -> str | None:
    """The speaker with the most overlap; ties go to `previous`, then to the longer turn."""
    if not found:
        return None
    most = max(total for total, _ in found.values())
    tied = [s for s, (total, _) in found.items() if total >= most - _TIE]
    if previous in tied:
        return previous
    return max(tied, key=lambda s: found[s][1])


def attribute(minutes: Minutes, turns: Sequence[Turn]) -> Minutes:
    """Minutes whose segments carry speakers: each segment is cut where its words change speaker, and
    `speakers` lists them in order of first appearance. A segment without words takes the speaker
    that overlaps its span the most."""
    words = [w for seg in minutes.segments for w in seg.words]
    labels = iter(assign_speakers(words, turns))
    index = _TurnIndex(turns)
    segments: list[Segment] = []
    for seg in minutes.segments:
        if seg.words:
            segments.extend(_split_at_changes(seg.words, [next(labels) for _ in seg.words]))
        else:
            end = _end(seg.start, seg.end)
            speaker = _pick(index.overlaps(seg.start, end), None) or index.nearest(seg.start, end)
            segments.append(replace(seg, speaker=speaker))
    return replace(minutes, segments=tuple(segments), speakers=_in_order(segments))


def _split_at_changes(words: Sequence[Word], speakers: Sequence[str | None]) -> list[Segment]:
    """Consecutive words of one speaker become one segment."""
    runs: list[tuple[str | None, list[Word]]] = []
    for word, speaker in zip(words, speakers):
        if runs and runs[-1][0] == speaker:
            runs[-1][1].append(word)
        else:
            runs.append((speaker, [word]))
    return [Segment(start=run[0].start, end=run[-1].end, text=" ".join(w.word for w in run), words=tuple(run),
                    speaker=speaker) for speaker, run in runs]


def _in_order(segments: Sequence[Segment]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(s.speaker for s in segments if s.speaker))


def speakers_of(minutes: Minutes) -> tuple[str, ...]:
    """`minutes.speakers`, or the segment speakers in order of first appearance (JSON from elsewhere)."""
    return minutes.speakers or _in_order(minutes.segments)


# ------------------------------------------------------------------------------------------------ names

Names = tuple[str, ...] | dict[str, str]  # names in order of first appearance, or {current label: name}


def parse_names(value: str) -> Names:
    """`--names` -> names. A path to an existing file is read as a mapping file (`SPEAKER_00=Anna` lines,
    `#` comments); otherwise a comma list: `Anna,Bartek` (speakers in order of first appearance) or
    `SPEAKER_00=Anna,SPEAKER_01=Bartek`. Raises ValueError (one line) on malformed input or an unreadable file."""
    path = Path(value)
    if path.is_file():
        return read_names_file(path)
    if path.suffix.lower() in {".txt", ".map", ".names"} or "/" in value:
        raise ValueError(f"names file not found: {value}")
    entries = [e.strip() for e in value.split(",")]
    if not any(entries) or not all(entries):
        raise ValueError(f"empty name in {value!r}; give names like \"Anna,Bartek\" or a file of SPEAKER_00=Anna lines")
    with_labels = ["=" in e for e in entries]
    if all(with_labels):
        return _mapping((e, f"entry {i}") for i, e in enumerate(entries, start=1))
    if any(with_labels):
        raise ValueError(f"mix of plain names and LABEL=Name entries in {value!r}; use one form")
    if len(set(entries)) < len(entries):
        raise ValueError(f"a name is given twice in {value!r}; to merge speakers use a mapping (SPEAKER_02=Anna)")
    return tuple(entries)


def read_names_file(path: Path) -> dict[str, str]:
    """A mapping file: `LABEL=Name` per line, blank lines and `#` comments ignored."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read names file {path}: {getattr(error, 'strerror', None) or error}") from None
    lines = ((line.split("#", 1)[0].strip(), f"{path} line {n}") for n, line in enumerate(text.splitlines(), start=1))
    mapping = _mapping((line, where) for line, where in lines if line)
    if not mapping:
        raise ValueError(f"names file {path} has no SPEAKER_00=Name lines")
    return mapping


def _mapping(entries: Iterable[tuple[str, str]]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for entry, where in entries:
        label, sep, name = (part.strip() for part in entry.partition("="))
        if not sep or not label or not name:
            raise ValueError(f"{where}: expected LABEL=Name (e.g. SPEAKER_00=Anna), got {entry!r}")
        if label in mapping:
            raise ValueError(f"{where}: {label} is named twice")
        mapping[label] = name
    return mapping


def name_speakers(minutes: Minutes, names: Names) -> tuple[Minutes, list[str]]:
    """Minutes with speakers renamed, and warnings (one line each) for names that matched no speaker.
    Two labels mapped to one name merge into one speaker."""
    current = speakers_of(minutes)
    if isinstance(names, dict):
        mapping = names
        unused = [label for label in names if label not in current]
        warnings = [f"no speaker {label!r} to name; the speakers are {', '.join(current) or 'not identified'}"
                    for label in unused]
    else:
        mapping = dict(zip(current, names))
        extra = names[len(current):]
        warnings = [f"more names than speakers ({len(current)} found); unused: {', '.join(extra)}"] if extra else []
    return _renamed(minutes, mapping, current), warnings


def _renamed(minutes: Minutes, mapping: dict[str, str], current: Sequence[str]) -> Minutes:
    """Speakers renamed in the segments, the speaker list and the owners of notes and action items."""
    def rename(who: str | None) -> str | None:
        return mapping.get(who, who) if who else who

    return replace(
        minutes,
        segments=tuple(replace(s, speaker=rename(s.speaker)) for s in minutes.segments),
        speakers=tuple(dict.fromkeys(mapping.get(s, s) for s in current)),
        **{kind: tuple(replace(n, owner=rename(n.owner)) for n in getattr(minutes, kind))
           for kind in ("decisions", "actions", "notes")},
    )


# ------------------------------------------------------------------------------------ the pipeline step


@dataclass(frozen=True)
class SpeakerOptions:
    """Diarization settings for a run: the model folder, speaker-count hints, and names."""

    model: Path = DEFAULT_DIARIZATION
    hint: SpeakerHint = field(default_factory=SpeakerHint)
    names: Names | None = None


@lru_cache(maxsize=2)
def load_diarizer(path: Path) -> Diarize:
    """The diarization pipeline in the folder `path`, loaded once per process. Raises DiarizationError."""
    return diarization.Diarizer.load(path)


def resolve(model: Path | None, hint: SpeakerHint, names: Names | None,
            diarize: bool = True) -> tuple[SpeakerOptions | None, str | None]:
    """A run's diarization settings (None: no diarization) and a warning line when it is off because the shipped
    model is missing or unusable. Loads the diarizer now, so a bad model fails before any file is transcribed.
    Raises ValueError for contradictory options, DiarizationError for a given `model` that cannot be loaded."""
    if not diarize:
        if names:
            raise ValueError("--names needs speakers; drop --no-diarize")
        return None, None
    if model is not None and not model.exists():
        raise DiarizationError(f"no diarization model at {model}")
    try:
        load_diarizer(model or DEFAULT_DIARIZATION)
    except DiarizationError as error:
        if model is not None:
            raise
        return None, f"{error}; minutes without speakers (--no-diarize hides this warning)"
    return SpeakerOptions(model or DEFAULT_DIARIZATION, hint, names), None


def add_speakers(minutes: Minutes, audio: np.ndarray, options: SpeakerOptions,
                 hook: Callable[..., None] | None = None, speech: SpeechTrack | None = None) -> tuple[Minutes, list[str]]:
    """Diarize 16 kHz float32 `audio` (with the transcriber's `speech` track of it, when there is one),
    attribute the words of `minutes` and apply the names. Returns the minutes and warnings (one line each); if
    diarization fails the minutes come back without speakers."""
    try:
        turns = load_diarizer(options.model)(audio, options.hint, hook, speech)
    except DiarizationError as error:
        return minutes, [f"diarization failed ({error}); minutes written without speakers"]
    minutes = attribute(minutes, turns)
    return name_speakers(minutes, options.names) if options.names else (minutes, [])
