"""Modal dialogs: a form of text fields, a list to choose from, and an audio file picker."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DirectoryTree, Input, Label, OptionList

from minutes.audio import AUDIO_EXTENSIONS


class FormScreen(ModalScreen["list[str] | None"]):
    """Labelled text fields; Enter in the last field submits the values, Escape cancels (None)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, fields: Iterable[tuple[str, str]], help: str = "") -> None:
        super().__init__()
        self.heading = title
        self.fields = list(fields)
        self.help = help

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.heading, classes="dialog-title")
            for number, (label, value) in enumerate(self.fields):
                yield Label(label)
                yield Input(value, id=f"field-{number}")
            yield Label(self.help or self.keys_help(), classes="dialog-help")

    def keys_help(self) -> str:
        if len(self.fields) == 1:
            return "Enter: OK   Escape: cancel"
        return "Enter: next field (OK in the last)   Escape: cancel"

    @on(Input.Submitted)
    def next_or_submit(self, event: Input.Submitted) -> None:
        inputs = list(self.query(Input))
        position = inputs.index(event.input)
        if position + 1 < len(inputs):
            inputs[position + 1].focus()
        else:
            self.dismiss([i.value for i in inputs])

    def action_cancel(self) -> None:
        self.dismiss(None)


class ChoiceScreen(ModalScreen["int | None"]):
    """A question with choices; returns the index chosen, None on Escape."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, choices: Iterable[str], highlighted: int = 0) -> None:
        super().__init__()
        self.heading = title
        self.choices = list(choices)
        self.start = highlighted

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.heading, classes="dialog-title")
            yield OptionList(*self.choices, id="choices")
            yield Label("Enter: choose   Escape: cancel", classes="dialog-help")

    def on_mount(self) -> None:
        self.query_one(OptionList).highlighted = self.start

    @on(OptionList.OptionSelected)
    def chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option_index)

    def action_cancel(self) -> None:
        self.dismiss(None)


class AudioTree(DirectoryTree):
    """Folders and audio files only; hidden entries left out."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [p for p in paths if not p.name.startswith(".")
                and (p.is_dir() or p.suffix.lower() in AUDIO_EXTENSIONS)]


class FilePickerScreen(ModalScreen["Path | None"]):
    """Pick an audio file from the tree, or type its path."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label("Open a recording", classes="dialog-title")
            yield Input(placeholder="path to an audio file (or choose below)", id="path")
            yield AudioTree(self.folder, id="tree")
            yield Label("Enter: open   Tab: switch   Escape: cancel", classes="dialog-help")

    @on(DirectoryTree.FileSelected)
    def file_chosen(self, event: DirectoryTree.FileSelected) -> None:
        self.dismiss(event.path)

    @on(Input.Submitted, "#path")
    def path_typed(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.dismiss(Path(event.value.strip()).expanduser())

    def action_cancel(self) -> None:
        self.dismiss(None)
