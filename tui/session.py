"""The minutes being kept in the app: transcript lines plus what the person adds (speaker names, decisions,
action items, notes, title, participants). `minutes()` freezes it into the `Minutes` the writers take."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterable, Literal

from minutes.model import Minutes, Note, Segment

Mark = Literal["decision", "action"]


@dataclass
class Draft:
    source: str
    model: str = ""
    date: str | None = None
    duration: float = 0.0
    title: str | None = None
    participants: list[str] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # speaker label -> the name a person gave it
    marks: dict[int, tuple[Mark, Note]] = field(default_factory=dict)  # line index -> its mark
    notes: list[Note] = field(default_factory=list)

    def add(self, segments: Iterable[Segment]) -> list[int]:
        """Append transcript lines; returns their indices."""
        start = len(self.segments)
        self.segments.extend(segments)
        self.duration = max([self.duration] + [s.end for s in self.segments[start:]])
        return list(range(start, len(self.segments)))

    def speaker(self, index: int) -> str | None:
        """The name shown for line `index` (renames applied), None when unknown."""
        label = self.segments[index].speaker
        return None if label is None else self.names.get(label, label)

    def name_speaker(self, index: int, name: str) -> list[int]:
        """Rename the speaker of line `index` everywhere it speaks, or name it for this line when it has none.
        Returns the indices of the lines that changed."""
        name = " ".join(name.split())
        if not name:
            raise ValueError("a speaker name cannot be empty")
        label = self.segments[index].speaker
        if label is None:
            self.segments[index] = replace(self.segments[index], speaker=name)
            return [index]
        self.names[label] = name
        return [i for i, s in enumerate(self.segments) if s.speaker == label]

    def mark(self, index: int, kind: Mark, text: str | None = None, owner: str | None = None) -> None:
        """Mark line `index` as a decision or an action item (its text unless `text` is given)."""
        seg = self.segments[index]
        self.marks[index] = (kind, Note(seg.start, " ".join((text or seg.text).split()), owner or None))

    def unmark(self, index: int) -> None:
        self.marks.pop(index, None)

    def add_note(self, time: float, text: str) -> Note:
        if not text.strip():
            raise ValueError("a note cannot be empty")
        note = Note(time, " ".join(text.split()))
        self.notes.append(note)
        return note

    def minutes(self) -> Minutes:
        """The frozen minutes with speaker renames applied and marks in time order."""
        segments = [replace(s, speaker=self.speaker(i)) for i, s in enumerate(self.segments)]
        marks = sorted(self.marks.values(), key=lambda m: m[1].time)
        return Minutes(
            source=self.source, duration=self.duration, model=self.model, segments=tuple(segments),
            title=self.title or None, date=self.date, participants=tuple(self.participants),
            decisions=tuple(n for kind, n in marks if kind == "decision"),
            actions=tuple(n for kind, n in marks if kind == "action"),
            notes=tuple(sorted(self.notes, key=lambda n: n.time)),
        )

    @classmethod
    def from_minutes(cls, minutes: Minutes) -> Draft:
        return cls(source=minutes.source, model=minutes.model, date=minutes.date, duration=minutes.duration,
                   title=minutes.title, participants=list(minutes.participants), segments=list(minutes.segments))
