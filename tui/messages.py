"""Messages the app's worker threads post to the UI (the only way they talk to it)."""
from __future__ import annotations

from pathlib import Path

from textual.message import Message

from minutes.model import Minutes
from minutes.pipeline import Transcriber
from tui.live import LiveUpdate
from tui.speakers import Diarize


class ModelReady(Message):
    def __init__(self, transcriber: Transcriber | None, error: str = "", diarize: Diarize | None = None,
                 speakers_note: str = "") -> None:
        super().__init__()
        self.transcriber, self.error = transcriber, error
        self.diarize, self.speakers_note = diarize, speakers_note


class AudioLevel(Message):
    def __init__(self, rms: float, seconds: float) -> None:
        super().__init__()
        self.rms, self.seconds = rms, seconds


class LiveText(Message):
    def __init__(self, update: LiveUpdate, heard: list[float], done: bool) -> None:
        super().__init__()
        self.update, self.heard, self.done = update, heard, done  # heard: wall time each new word arrived


class SpeakersFound(Message):
    def __init__(self, labels: list[str | None], error: str = "") -> None:
        super().__init__()
        self.labels, self.error = labels, error  # one speaker label per transcript line


class RecordingEnded(Message):
    def __init__(self, path: Path, seconds: float, error: str = "") -> None:
        super().__init__()
        self.path, self.seconds, self.error = path, seconds, error


class FileProgress(Message):
    def __init__(self, completed: int, total: int) -> None:
        super().__init__()
        self.completed, self.total = completed, total


class FileDone(Message):
    def __init__(self, path: Path, minutes: Minutes | None, error: str = "") -> None:
        super().__init__()
        self.path, self.minutes, self.error = path, minutes, error
