"""The minutes terminal app: record (or open) a meeting, watch the transcript grow, mark decisions and action
items, name speakers, export. Heavy work runs in thread workers that talk to the UI only through messages."""
from __future__ import annotations

import datetime as dt
import os
import statistics
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Header, ProgressBar, Static

from acoustic.features import SAMPLE_RATE
from minutes.audio import AudioError, load_audio
from minutes.diarization import DiarizationError
from minutes.pipeline import SilentAudioError, Transcriber
from minutes.speakers import attribute
from tui.dialogs import ChoiceScreen, FilePickerScreen
from tui.editing import EditingMixin
from tui.live import ChunkedTranscriber, ChunkOptions, LiveTranscriber
from tui.messages import FileDone, FileProgress, ModelReady
from tui.recorder import AudioSource, InputDevice, recover, unfinished
from tui.recording import RecordingMixin
from tui.session import Draft
from tui.speakers import Diarize
from tui.widgets import LevelMeter, TranscriptView, clock, count, line_text

SourceFactory = Callable[[InputDevice | None], AudioSource]
LATENCY_WINDOW = 20  # words behind the latency shown in the status line


def default_recordings_dir() -> Path:
    """`$MINUTES_RECORDINGS`, else `$XDG_DATA_HOME/minutes/recordings` (~/.local/share/...)."""
    if os.environ.get("MINUTES_RECORDINGS"):
        return Path(os.environ["MINUTES_RECORDINGS"]).expanduser()
    data = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data / "minutes" / "recordings"


@dataclass(frozen=True)
class AppConfig:
    file: Path | None = None  # transcribe this file at start
    record: bool = False  # start recording at once
    device: int | str | None = None  # input device (index or name); None: ask when there are several
    recordings_dir: Path = field(default_factory=default_recordings_dir)
    output_dir: Path = Path(".")
    formats: tuple[str, ...] = ("md", "json")
    chunks: ChunkOptions = ChunkOptions()
    clock: Callable[[], dt.datetime] = dt.datetime.now  # names recordings (fixed in snapshot tests)


class MinutesApp(RecordingMixin, EditingMixin, App[None]):
    """See the module docstring; build it with `make_app`."""

    CSS_PATH = "app.tcss"
    TITLE = "minutes"
    BINDINGS = [
        Binding("r", "record", "Record/Stop"),
        Binding("p", "pause", "Pause"),
        Binding("o", "open", "Open"),
        Binding("s", "speaker", "Speaker"),
        Binding("d", "decision", "Decision"),
        Binding("a", "action", "Action"),
        Binding("n", "note", "Note"),
        Binding("i", "info", "Title"),
        Binding("e", "export", "Export"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, config: AppConfig, transcriber: Transcriber | Callable[[], Transcriber],
                 open_source: SourceFactory | None = None,
                 live: Callable[[Transcriber, ChunkOptions], LiveTranscriber] = ChunkedTranscriber,
                 speakers: Callable[[], tuple[Diarize | None, str]] | None = None) -> None:
        super().__init__()
        self.config = config
        self._loader = transcriber if callable(transcriber) and not isinstance(transcriber, Transcriber) else None
        self.transcriber: Transcriber | None = None if self._loader else transcriber  # type: ignore[assignment]
        self._model_ready = threading.Event()
        self.open_source = open_source
        self.make_live = live
        self.draft = Draft(source="untitled")
        self.recording: Path | None = None
        self.last_recording: Path | None = None
        self._speakers = speakers
        self.diarize: Diarize | None = None
        self.speakers_note = ""
        self.busy = False  # a recording, its live transcription or a file transcription is running
        self.decoding = False  # the live transcription of a recording is running
        self.exported = True  # nothing to lose yet
        self.latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self.all_latencies: list[float] = []  # every word's delay, for benchmarks
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._seconds = 0.0

    # ---- layout and start -------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="panel"):
            yield Static("", id="state")
            yield LevelMeter("", id="level")
            yield ProgressBar(id="progress", show_eta=False)
        yield TranscriptView(id="transcript")
        yield Static("", id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#progress").display = False
        self.query_one("#level").display = False
        self.transcript.focus()
        if self._loader or self._speakers:
            self._load_model()
        else:
            self._model_ready.set()
        self._show_state()
        if self.config.file:
            self.open_file(self.config.file)
        elif self.config.record:
            self.action_record()
        else:
            self._offer_recovery()

    @property
    def transcript(self) -> TranscriptView:
        return self.query_one(TranscriptView)

    @work(thread=True, group="model")
    def _load_model(self) -> None:
        """The acoustic model (unless given) and the speaker step (if any), off the UI thread."""
        try:
            transcriber = self._loader() if self._loader else self.transcriber
        except Exception as error:  # any load failure is reported in the UI, not as a traceback
            self.post_message(ModelReady(None, f"{type(error).__name__}: {error}"))
            return
        diarize, note = self._speakers() if self._speakers else (None, "")
        self.post_message(ModelReady(transcriber, diarize=diarize, speakers_note=note))

    def on_model_ready(self, message: ModelReady) -> None:
        self.transcriber = message.transcriber
        self.draft.model = self.draft.model or (self.transcriber.name if self.transcriber else "")
        self.diarize, self.speakers_note = message.diarize, message.speakers_note
        self._model_ready.set()
        if message.error:
            self.notify(f"Cannot load the model: {message.error}", severity="error", timeout=30)
        elif message.speakers_note:
            self.notify(message.speakers_note, timeout=8)
        self._show_status()

    def _offer_recovery(self) -> None:
        try:
            found = unfinished(self.config.recordings_dir)
        except OSError:
            return
        if not found:
            return
        wav = found[0]
        seconds = max(0, wav.stat().st_size - 44) / 2 / SAMPLE_RATE
        when = dt.datetime.fromtimestamp(wav.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
        question = (f"An unfinished recording was found: {wav.name} ({clock(seconds)}, last written {when}).\n"
                    "Recover it and transcribe it?")

        def answer(choice: int | None) -> None:
            if choice == 0:
                recovered = recover(wav)
                self.notify(f"Recovered {clock(recovered)} of audio in {wav}")
                self.open_file(wav)

        self.push_screen(ChoiceScreen(question, ["Recover and transcribe", "Not now (ask again next time)"]), answer)

    # ---- state shown ------------------------------------------------------------------------------
    def _show_state(self, text: str | None = None) -> None:
        if text is None:
            text = "Ready. r: record   o: open a recording   ctrl+p: all commands"
        self.query_one("#state", Static).update(text)

    def _show_status(self) -> None:
        parts = [f"model: {self.transcriber.name}" if self.transcriber else "loading model…",
                 count(len(self.draft.segments), "line")]
        if self.speakers_note:
            parts.append("no speaker model")
        if self.latencies:
            parts.append(f"latency {statistics.median(self.latencies):.1f} s")
        if self.recording:
            parts.append(f"saving to {self.recording.name}")
        self.query_one("#status", Static).update("  ·  ".join(parts))

    # ---- files ------------------------------------------------------------------------------------
    def action_open(self) -> None:
        if self.busy:
            self.notify("Stop the recording (r) or wait for the transcription first", severity="warning")
            return
        self.push_screen(FilePickerScreen(Path.cwd()), lambda path: path and self.open_file(path))

    def open_file(self, path: Path) -> None:
        self._begin(Draft(source=path.name), busy=True)
        progress = self.query_one(ProgressBar)
        progress.display = True
        progress.update(total=None, progress=0)
        self._show_state(f"Transcribing {path.name}…")
        self._transcribe_file(path)

    @work(thread=True, group="file")
    def _transcribe_file(self, path: Path) -> None:
        try:
            audio = load_audio(path)
            self._model_ready.wait()
            if self.transcriber is None:
                raise AudioError("no model loaded")
            date = dt.date.fromtimestamp(path.stat().st_mtime).isoformat()
            speech = self.transcriber.speech_track()
            minutes = self.transcriber.transcribe(
                audio, source=path.name, date=date, speech=speech,
                hook=lambda step, completed, total: self.post_message(FileProgress(completed, total)))
            if self.diarize:
                minutes = attribute(minutes, self.diarize(audio, speech))
            self.post_message(FileDone(path, minutes))
        except DiarizationError as error:
            self.post_message(FileDone(path, minutes, f"speakers not identified: {error}"))
        except (AudioError, SilentAudioError) as error:
            self.post_message(FileDone(path, None, str(error)))

    def on_file_progress(self, message: FileProgress) -> None:
        self.query_one(ProgressBar).update(total=message.total, progress=message.completed)

    def on_file_done(self, message: FileDone) -> None:
        self.busy = False
        self.query_one(ProgressBar).display = False
        if message.minutes is None:
            self.notify(f"Cannot transcribe {message.path.name}: {message.error}", severity="error", timeout=20)
            self._show_state()
            self.exported = True
            return
        if message.error:
            self.notify(message.error, severity="warning", timeout=15)
        self.draft = Draft.from_minutes(message.minutes)
        self.exported = False
        self.transcript.append_rows([(f"seg-{i}", line_text(s, self.draft.speaker(i)))
                                     for i, s in enumerate(self.draft.segments)], None)
        self._show_state(f"{message.path.name}: {clock(message.minutes.duration)}, "
                         f"{count(len(self.draft.segments), 'line')}.   e: export")
        self._show_status()

    async def action_quit(self) -> None:
        if self.recording:
            self.notify("Stop the recording first (r); it is saved as it goes", severity="warning")
            return
        if self.exported:
            self.exit()
            return
        choices = ["Export, then quit", "Quit without exporting", "Cancel"]

        def answer(choice: int | None) -> None:
            if choice == 0:
                self.action_export(then=self.exit)
            elif choice == 1:
                self.exit()

        self.push_screen(ChoiceScreen("The minutes have changes that are not exported.", choices), answer)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for binding in self.BINDINGS:
            assert isinstance(binding, Binding)
            if binding.action != "quit":
                yield SystemCommand(_COMMAND_TITLES[binding.action], f"key {binding.key}",
                                    getattr(self, f"action_{binding.action}"))


_COMMAND_TITLES = {
    "record": "Record / stop recording", "pause": "Pause / resume recording", "open": "Open a recording",
    "speaker": "Name or rename the speaker of a line", "decision": "Mark a line as a decision",
    "action": "Mark a line as an action item", "note": "Add a note at the current time",
    "info": "Edit title and participants", "export": "Export the minutes (Markdown and other formats)",
}


def make_app(config: AppConfig = AppConfig(), transcriber: Transcriber | Callable[[], Transcriber] | None = None,
             open_source: SourceFactory | None = None,
             live: Callable[[Transcriber, ChunkOptions], LiveTranscriber] = ChunkedTranscriber,
             speakers: Callable[[], tuple[Diarize | None, str]] | None = None) -> MinutesApp:
    """The app as the CLI and the tests build it; the model loads in the background unless given. `open_source`
    replaces the sound device, `live` the live transcriber (a streaming engine plugs in here), `speakers` loads
    the diarizer (None, and a reason, when there is none)."""
    return MinutesApp(config, transcriber or Transcriber.load, open_source, live, speakers)
