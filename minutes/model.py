"""The typed minutes model: words, segments and whole minutes, with a versioned JSON form.

Times are float seconds everywhere; only writers round them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Word:
    """One recognised word with its time span (seconds) and confidence in [0, 1]."""

    word: str
    start: float
    end: float
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return {"word": self.word, "start": self.start, "end": self.end, "confidence": self.confidence}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Word:
        return cls(
            word=str(_need(d, "word")),
            start=float(_need(d, "start")),
            end=float(_need(d, "end")),
            confidence=float(_need(d, "confidence")),
        )


@dataclass(frozen=True)
class Segment:
    """A speaker turn or utterance: time span (seconds), text, its words, and speaker if known."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    speaker: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "words", tuple(self.words))

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "speaker": self.speaker,
            "text": self.text,
            "words": [w.to_dict() for w in self.words],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Segment:
        words = d.get("words") or ()
        speaker = d.get("speaker")
        return cls(
            start=float(_need(d, "start")),
            end=float(_need(d, "end")),
            text=str(_need(d, "text")),
            words=tuple(_item(Word, w, f"words[{i}]") for i, w in enumerate(words)),
            speaker=None if speaker is None else str(speaker),
        )


@dataclass(frozen=True)
class Note:
    """A line a person added to the minutes at a time (seconds): a decision, an action item (with its
    owner, if named) or a free note."""

    time: float
    text: str
    owner: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"time": self.time, "text": self.text}
        if self.owner:
            d["owner"] = self.owner
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Note:
        return cls(time=float(_need(d, "time")), text=str(_need(d, "text")), owner=_opt_str(d.get("owner")))


_NOTE_LISTS = ("participants", "decisions", "actions", "notes")


@dataclass(frozen=True)
class Minutes:
    """A whole transcribed recording: metadata plus time-ordered segments, and what people added: named
    participants, decisions, action items and free notes (omitted from the JSON when empty)."""

    source: str
    duration: float
    model: str
    segments: tuple[Segment, ...]
    speakers: tuple[str, ...] = ()
    title: str | None = None
    date: str | None = None
    participants: tuple[str, ...] = ()
    decisions: tuple[Note, ...] = ()
    actions: tuple[Note, ...] = ()
    notes: tuple[Note, ...] = ()

    def __post_init__(self) -> None:
        for name in ("segments", "speakers", *_NOTE_LISTS):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    @property
    def text(self) -> str:
        """All segment texts joined by single spaces."""
        return " ".join(s.text for s in self.segments)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form, tagged with `FORMAT_VERSION`."""
        return {
            "version": FORMAT_VERSION,
            "source": self.source,
            "duration": self.duration,
            "model": self.model,
            "title": self.title,
            "date": self.date,
            "speakers": list(self.speakers),
            "segments": [s.to_dict() for s in self.segments],
            **{name: [n if isinstance(n, str) else n.to_dict() for n in getattr(self, name)]
               for name in _NOTE_LISTS if getattr(self, name)},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Minutes:
        """Rebuild from `to_dict()` output; raises ValueError on a wrong version or missing keys."""
        if not isinstance(d, Mapping):
            raise ValueError(f"minutes JSON must be an object, got {type(d).__name__}")
        if "version" not in d:
            raise ValueError(f"minutes JSON has no 'version' field (expected {FORMAT_VERSION})")
        if d["version"] != FORMAT_VERSION:
            raise ValueError(
                f"unsupported minutes JSON version {d['version']!r}; this build reads version {FORMAT_VERSION}"
            )
        try:
            segments = tuple(_item(Segment, s, f"segments[{i}]") for i, s in enumerate(_need(d, "segments")))
            return cls(
                source=str(_need(d, "source")),
                duration=float(_need(d, "duration")),
                model=str(_need(d, "model")),
                segments=segments,
                speakers=tuple(str(s) for s in d.get("speakers") or ()),
                title=_opt_str(d.get("title")),
                date=_opt_str(d.get("date")),
                participants=tuple(str(p) for p in d.get("participants") or ()),
                **{name: tuple(_item(Note, n, f"{name}[{i}]") for i, n in enumerate(d.get(name) or ()))
                   for name in _NOTE_LISTS[1:]},
            )
        except (TypeError, ValueError) as error:
            raise ValueError(f"invalid minutes JSON: {error}") from error


def _need(d: Mapping[str, Any], key: str) -> Any:
    if not isinstance(d, Mapping):
        raise ValueError(f"expected an object, got {type(d).__name__}")
    if key not in d:
        raise ValueError(f"missing key {key!r}")
    return d[key]


def _item(kind: type, d: Any, where: str) -> Any:
    """`kind.from_dict(d)`, with `where` (e.g. 'segments[3]') prefixed to any error."""
    try:
        return kind.from_dict(d)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where}: {error}") from error


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)
