"""The transcript view (one row per line, following the end unless scrolled up) and the input level meter."""
from __future__ import annotations

import math

from rich.text import Text
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from minutes.model import Note, Segment

SPEAKER_STYLES = ("bold cyan", "bold magenta", "bold green", "bold yellow", "bold blue", "bold red")
PARTIAL = "partial"


def clock(seconds: float) -> str:
    """`HH:MM:SS`, floored to the second."""
    s = int(max(0.0, seconds))
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


def count(n: int, what: str) -> str:
    """`1 line`, `2 lines`."""
    return f"{n} {what}{'' if n == 1 else 's'}"


def line_text(segment: Segment, speaker: str | None, mark: tuple[str, Note] | None = None) -> Text:
    """`[00:01:05] Anna: text`, with the decision / action badge in front when marked."""
    text = Text(f"[{clock(segment.start)}] ", style="dim")
    if mark:
        kind, note = mark
        badge = " DECISION " if kind == "decision" else f" ACTION{f' @{note.owner}' if note.owner else ''} "
        text.append(badge, style="bold black on green" if kind == "decision" else "bold black on yellow")
        text.append(" ")
    if speaker:
        text.append(f"{speaker}: ", style=SPEAKER_STYLES[sum(map(ord, speaker)) % len(SPEAKER_STYLES)])
    text.append(segment.text or "…")
    return text


def note_text(note: Note) -> Text:
    text = Text(f"[{clock(note.time)}] ", style="dim")
    text.append(" NOTE ", style="bold black on white")
    text.append(f" {note.text}", style="italic")
    return text


class TranscriptView(OptionList):
    """Transcript rows (`seg-N`, `note-N`) and one provisional row at the end while words are still being
    decoded; new rows keep the view at the end only if it was already there (reading above is not disturbed)."""

    def at_end(self) -> bool:
        return self.scroll_y >= self.max_scroll_y - 1

    def append_rows(self, rows: list[tuple[str, Text]], partial: Text | None = None,
                    keep_partial: bool = False) -> None:
        """Add rows, then show `partial` as the last row; without one, the provisional row stays if
        `keep_partial`, else it goes."""
        follow = self.at_end()
        if self._has(PARTIAL):
            if partial is None and keep_partial:
                partial = self.options[-1].prompt  # type: ignore[assignment]
            self.remove_option(PARTIAL)
        self.add_options([Option(prompt, id=row_id) for row_id, prompt in rows])
        if partial is not None:
            self.add_option(Option(partial, id=PARTIAL, disabled=True))
        if follow:
            self.scroll_end(animate=False, immediate=True)

    def replace(self, row_id: str, prompt: Text) -> None:
        self.replace_option_prompt(row_id, prompt)

    def _has(self, row_id: str) -> bool:
        return any(o.id == row_id for o in self.options[-1:])


class LevelMeter(Static):
    """Input level as a bar over -60..0 dBFS."""

    WIDTH = 20

    def show_level(self, rms: float) -> None:
        db = max(-60.0, 20 * math.log10(max(rms, 1e-6)))
        filled = round(self.WIDTH * min(1.0, max(0.0, (db + 60) / 60)))
        style = "red" if db > -3 else "green"
        self.update(Text("▮" * filled, style=style) + Text("▯" * (self.WIDTH - filled), style="dim")
                    + Text(f" {db:5.0f} dB", style="dim"))
