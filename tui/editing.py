"""What a person does to the minutes in the app: name speakers, mark decisions and action items, add notes,
set title and participants, export. A mixin of `MinutesApp`, kept apart from recording and transcribing."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable

from minutes.files import write_atomic
from minutes.writers import WRITERS
from tui.dialogs import FormScreen
from tui.session import Draft
from tui.widgets import TranscriptView, clock, line_text, note_text


class EditingMixin:
    """Editing and export actions; the app provides the attributes annotated here."""

    draft: Draft
    config: Any  # tui.app.AppConfig
    recording: Path | None
    exported: bool
    title: str
    _seconds: float
    transcript: TranscriptView
    notify: Callable[..., None]
    push_screen: Callable[..., Any]

    def _line(self) -> int | None:
        """The highlighted transcript line, else the last one; None (with a notice) when there is none."""
        option = self.transcript.highlighted_option
        if option is not None and option.id and option.id.startswith("seg-"):
            return int(option.id[4:])
        if option is None and self.draft.segments:
            return len(self.draft.segments) - 1
        self.notify("Choose a transcript line first (↑/↓)", severity="warning")
        return None

    def _refresh_lines(self, indices: Iterable[int]) -> None:
        for i in indices:
            self.transcript.replace(f"seg-{i}", line_text(self.draft.segments[i], self.draft.speaker(i),
                                                          self.draft.marks.get(i)))
        self.exported = False

    def action_speaker(self) -> None:
        if (index := self._line()) is None:
            return
        current = self.draft.speaker(index)
        title = (f"Rename {current} everywhere" if current else "Who is speaking on this line?")

        def done(values: list[str] | None) -> None:
            if values and values[0].strip():
                self._refresh_lines(self.draft.name_speaker(index, values[0]))

        self.push_screen(FormScreen(title, [("Name", current or "")]), done)

    def action_decision(self) -> None:
        if (index := self._line()) is None:
            return
        if self.draft.marks.get(index, ("",))[0] == "decision":
            self.draft.unmark(index)
        else:
            self.draft.mark(index, "decision")
        self._refresh_lines([index])

    def action_action(self) -> None:
        if (index := self._line()) is None:
            return
        seg = self.draft.segments[index]

        def done(values: list[str] | None) -> None:
            if values is None:
                return
            if values[0].strip():
                self.draft.mark(index, "action", values[0], values[1].strip())
            else:
                self.draft.unmark(index)
            self._refresh_lines([index])

        fields = [("Action item (empty: unmark)", seg.text), ("Owner", self.draft.speaker(index) or "")]
        self.push_screen(FormScreen(f"Action item at {clock(seg.start)}", fields), done)

    def action_note(self) -> None:
        at = self._seconds if self.recording else self.draft.duration
        index = self.transcript.highlighted_option
        if not self.recording and index is not None and index.id and index.id.startswith("seg-"):
            at = self.draft.segments[int(index.id[4:])].start

        def done(values: list[str] | None) -> None:
            if values and values[0].strip():
                note = self.draft.add_note(at, values[0])
                row = (f"note-{len(self.draft.notes) - 1}", note_text(note))
                self.transcript.append_rows([row], keep_partial=True)
                self.exported = False

        self.push_screen(FormScreen(f"Note at {clock(at)}", [("Note", "")]), done)

    def action_info(self) -> None:
        fields = [("Title", self.draft.title or ""), ("Participants (comma-separated)",
                                                      ", ".join(self.draft.participants))]

        def done(values: list[str] | None) -> None:
            if values is None:
                return
            self.draft.title = values[0].strip() or None
            self.draft.participants = [p.strip() for p in values[1].split(",") if p.strip()]
            self.title = self.draft.title or self.draft.source
            self.exported = False

        self.push_screen(FormScreen("Title and participants", fields), done)

    # ---- export and quit --------------------------------------------------------------------------
    def action_export(self, then: Callable[[], None] | None = None) -> None:
        if not self.draft.segments and not self.draft.notes:
            self.notify("Nothing to export yet", severity="warning")
            return
        fields = [("Folder", str(self.config.output_dir)), (f"Formats ({','.join(WRITERS)} or all)",
                                                            ",".join(self.config.formats))]

        def done(values: list[str] | None) -> None:
            if values is not None and self.export(Path(values[0].strip() or "."), values[1]) and then:
                then()

        self.push_screen(FormScreen("Export the minutes", fields), done)

    def export(self, folder: Path, formats: str) -> list[Path]:
        """Write the minutes in `formats` into `folder`; notifies what was written (or why not)."""
        names = list(WRITERS) if formats.strip() == "all" else [f.strip() for f in formats.split(",") if f.strip()]
        unknown = [n for n in names if n not in WRITERS]
        if unknown or not names:
            self.notify(f"Unknown format {', '.join(unknown) or formats!r}: choose from {', '.join(WRITERS)} or all",
                        severity="error")
            return []
        minutes = self.draft.minutes()
        stem = Path(self.draft.source).stem or "minutes"
        written = []
        try:
            for name in names:
                path = folder / f"{stem}.{name}"
                write_atomic(path, lambda f, w=WRITERS[name]: w(minutes, f))
                written.append(path)
        except OSError as error:
            self.notify(f"Cannot write to {folder}: {error.strerror or error}", severity="error", timeout=20)
            return []
        self.exported = True
        self.notify(f"Exported {', '.join(str(p) for p in written)}", timeout=10)
        return written
