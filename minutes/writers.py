"""Writers: format `Minutes` into a text stream the caller opened.

Writers never open paths and never print; the CLI owns paths, atomic writes and messages.
Times stay float seconds in the model; rounding happens here only, through `format_timestamp`
(or fixed-decimal fields for the NIST formats RTTM/CTM/STM).
"""
from __future__ import annotations

import json
import math
import re
from decimal import ROUND_HALF_UP, Decimal
from pathlib import PurePath
from typing import Callable, TextIO

from minutes.model import Minutes, Note, Segment
from minutes.speakers import speakers_of

Writer = Callable[[Minutes, TextIO], None]
DEFAULT_FORMATS: tuple[str, ...] = ("md",)

_MD_SPECIAL = re.compile(r"([\\`*_~\[\]<>])")


def format_timestamp(seconds: float, always_include_hours: bool = False, decimal_marker: str = ".") -> str:
    """`[HH:]MM:SS<marker>mmm`, milliseconds rounded half up; hours shown if asked or if >= 1 h."""
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"timestamp must be a finite, non-negative number of seconds, got {seconds}")
    millis = int(Decimal(str(seconds)).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP) * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    prefix = f"{hours:02d}:" if always_include_hours or hours > 0 else ""
    return f"{prefix}{minutes:02d}:{secs:02d}{decimal_marker}{millis:03d}"


def _clock(seconds: float) -> str:
    """`HH:MM:SS`, floored to the second (a turn starting at 5.9 s is shown as 00:00:05)."""
    return format_timestamp(math.floor(seconds), always_include_hours=True)[:-4]


def _duration(seconds: float) -> str:
    """`H:MM:SS`, rounded half up to the second."""
    hours, rest = format_timestamp(math.floor(seconds + 0.5), always_include_hours=True)[:-4].split(":", 1)
    return f"{int(hours)}:{rest}"


def _one_line(text: str) -> str:
    """Collapse all whitespace (newlines included) to single spaces."""
    return " ".join(text.split())


def _field(text: str) -> str:
    """A whitespace-free token for space-separated formats (RTTM/CTM/STM)."""
    return "_".join(text.split()) or "<NA>"


def _file_id(minutes: Minutes) -> str:
    return _field(PurePath(minutes.source).stem)


def _participants(minutes: Minutes) -> list[str]:
    """`minutes.participants` (named by a person), else `minutes.speakers`, else the segment speakers in order
    of first appearance."""
    return list(minutes.participants or speakers_of(minutes))


def _md(text: str) -> str:
    """Escape characters that could start Markdown emphasis, code, links or HTML."""
    return _MD_SPECIAL.sub(r"\\\1", _one_line(text))


def write_markdown(minutes: Minutes, file: TextIO) -> None:
    """Markdown minutes: title, header bullets, then `## Transcript` with one paragraph per speaker turn."""
    title = minutes.title or f"Minutes: {PurePath(minutes.source).stem}"
    people = ", ".join(_md(p) for p in _participants(minutes)) or "not identified"
    file.write(f"# {_md(title)}\n\n")
    file.write(f"- **Date:** {_md(minutes.date or 'unknown')}\n")
    file.write(f"- **Duration:** {_duration(minutes.duration)}\n")
    file.write(f"- **Participants:** {people}\n")
    file.write(f"- **Source:** {_md(PurePath(minutes.source).name)}\n")
    file.write(f"- **Model:** {_md(minutes.model)}\n")
    _write_notes(file, "Decisions", minutes.decisions)
    _write_notes(file, "Action items", minutes.actions)
    _write_notes(file, "Notes", minutes.notes)
    file.write("\n## Transcript\n")
    if not minutes.segments:
        file.write("\n*No speech detected.*\n")
    for turn in _turns(minutes.segments):
        file.write(f"\n{turn}\n")


def _turns(segments: tuple[Segment, ...]) -> list[str]:
    """One Markdown paragraph per turn, a run of segments by the same speaker: `**[00:01:05] Anna:** text`,
    then each further segment on a line of its own, `**[00:01:09]** text`, after a hard line break (two
    spaces), so a turn reads as one block and the speaker is named once. A segment without a speaker is a
    paragraph of its own, `**[00:01:05]** text`, so it is never mistaken for the previous speaker's."""
    turns: list[list[str]] = []
    previous = None
    for seg in segments:
        if seg.speaker and seg.speaker == previous:
            turns[-1].append(f"**[{_clock(seg.start)}]** {_md(seg.text)}")
        else:
            who = f" {_md(seg.speaker)}:" if seg.speaker else ""
            turns.append([f"**[{_clock(seg.start)}]{who}** {_md(seg.text)}"])
        previous = seg.speaker
    return ["  \n".join(lines) for lines in turns]


def _write_notes(file: TextIO, heading: str, notes: tuple[Note, ...]) -> None:
    """`## heading` and one bullet per note, `- **[00:01:05]** text (owner: Anna)`; nothing when empty."""
    if not notes:
        return
    file.write(f"\n## {heading}\n\n")
    for note in notes:
        owner = f" (owner: {_md(note.owner)})" if note.owner else ""
        file.write(f"- **[{_clock(note.time)}]** {_md(note.text)}{owner}\n")


def write_srt(minutes: Minutes, file: TextIO) -> None:
    """SubRip: numbered cues from 1, `HH:MM:SS,mmm --> HH:MM:SS,mmm`, `Speaker: ` prefix if known."""
    cues = [s for s in minutes.segments if _one_line(s.text)]
    for index, seg in enumerate(cues, start=1):
        start = format_timestamp(seg.start, always_include_hours=True, decimal_marker=",")
        end = format_timestamp(seg.end, always_include_hours=True, decimal_marker=",")
        who = f"{_one_line(seg.speaker)}: " if seg.speaker else ""
        file.write(f"{index}\n{start} --> {end}\n{who}{_one_line(seg.text)}\n\n")


def _vtt_text(text: str) -> str:
    """Cue text safe for WebVTT: one line, no `-->`, `&` and `<` escaped."""
    text = _one_line(text)
    while "-->" in text:
        text = text.replace("-->", "->")
    return text.replace("&", "&amp;").replace("<", "&lt;")


def write_vtt(minutes: Minutes, file: TextIO) -> None:
    """WebVTT: `WEBVTT` header, `[hh:]mm:ss.ttt` times, speakers as `<v Name>` voice spans."""
    file.write("WEBVTT\n\n")
    for seg in minutes.segments:
        if not _one_line(seg.text):
            continue
        voice = f"<v {_vtt_text(seg.speaker).replace('>', '&gt;')}>" if seg.speaker else ""
        file.write(f"{format_timestamp(seg.start)} --> {format_timestamp(seg.end)}\n")
        file.write(f"{voice}{_vtt_text(seg.text)}\n\n")


def write_json(minutes: Minutes, file: TextIO) -> None:
    """The whole versioned `Minutes.to_dict()`, pretty-printed, UTF-8 kept as is."""
    json.dump(minutes.to_dict(), file, indent=2, ensure_ascii=False)
    file.write("\n")


def write_txt(minutes: Minutes, file: TextIO) -> None:
    """Plain text: `[HH:MM:SS] Speaker: text`, one line per segment."""
    for seg in minutes.segments:
        who = f"{_one_line(seg.speaker)}: " if seg.speaker else ""
        file.write(f"[{_clock(seg.start)}] {who}{_one_line(seg.text)}\n")


def write_rttm(minutes: Minutes, file: TextIO) -> None:
    """NIST RTTM speaker turns; segments without a speaker are skipped."""
    fid = _file_id(minutes)
    for seg in minutes.segments:
        if not seg.speaker:
            continue
        duration = max(0.0, seg.end - seg.start)
        speaker = _field(seg.speaker)
        file.write(f"SPEAKER {fid} 1 {seg.start:.3f} {duration:.3f} <NA> <NA> {speaker} <NA> <NA>\n")


def write_ctm(minutes: Minutes, file: TextIO) -> None:
    """NIST CTM: one line per word, `<file> 1 <begin> <duration> <word> <conf>`."""
    fid = _file_id(minutes)
    for seg in minutes.segments:
        for w in seg.words:
            duration = max(0.0, w.end - w.start)
            file.write(f"{fid} 1 {w.start:.3f} {duration:.3f} {_field(w.word)} {w.confidence:.2f}\n")


def write_stm(minutes: Minutes, file: TextIO) -> None:
    """NIST STM: one line per segment, `<file> 1 <speaker> <begin> <end> <text>`."""
    fid = _file_id(minutes)
    for seg in minutes.segments:
        speaker = _field(seg.speaker) if seg.speaker else "unknown"
        file.write(f"{fid} 1 {speaker} {seg.start:.3f} {seg.end:.3f} {_one_line(seg.text)}\n")


WRITERS: dict[str, Writer] = {
    "md": write_markdown,
    "srt": write_srt,
    "vtt": write_vtt,
    "json": write_json,
    "txt": write_txt,
    "rttm": write_rttm,
    "ctm": write_ctm,
    "stm": write_stm,
}
