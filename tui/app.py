"""The minutes terminal app: record (or open) a meeting, watch the transcript grow, mark decisions and action
items, name speakers, export. Heavy work runs in thread workers that talk to the UI only through messages."""
from __future__ import annotations

import datetime as dt
import os
import queue
import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from rich.text import Text
from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, ProgressBar, Static

from acoustic.features import SAMPLE_RATE
from minutes.audio import AudioError, load_audio
from minutes.files import write_atomic
from minutes.model import Minutes, Segment
from minutes.pipeline import SilentAudioError, Transcriber
from minutes.writers import WRITERS
from tui.dialogs import ChoiceScreen, FilePickerScreen, FormScreen
from tui.live import ChunkedTranscriber, ChunkOptions, LiveTranscriber, LiveUpdate
from tui.recorder import AudioSource, AudioSourceError, DeviceSource, GrowingWav, InputDevice, input_devices
from tui.recorder import recover, unfinished
from tui.session import Draft
from tui.widgets import PARTIAL, LevelMeter, TranscriptView, clock, line_text, note_text

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


# Messages from the workers (thread -> UI).
class ModelReady(Message):
    def __init__(self, transcriber: Transcriber | None, error: str = "") -> None:
        super().__init__()
        self.transcriber, self.error = transcriber, error


class AudioLevel(Message):
    def __init__(self, rms: float, seconds: float) -> None:
        super().__init__()
        self.rms, self.seconds = rms, seconds


class LiveText(Message):
    def __init__(self, update: LiveUpdate, heard: list[float], done: bool) -> None:
        super().__init__()
        self.update, self.heard, self.done = update, heard, done  # heard: wall time each new word arrived


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


class MinutesApp(App[None]):
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
                 live: Callable[[Transcriber, ChunkOptions], LiveTranscriber] = ChunkedTranscriber) -> None:
        super().__init__()
        self.config = config
        self._loader = transcriber if callable(transcriber) and not isinstance(transcriber, Transcriber) else None
        self.transcriber: Transcriber | None = None if self._loader else transcriber  # type: ignore[assignment]
        self._model_ready = threading.Event()
        self.open_source = open_source
        self.make_live = live
        self.draft = Draft(source="untitled")
        self.recording: Path | None = None
        self.busy = False  # a recording or file transcription is running
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
        if self.transcriber:
            self._model_ready.set()
        else:
            self._load_model()
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
        try:
            self.post_message(ModelReady(self._loader()))  # type: ignore[misc]
        except Exception as error:  # any load failure is reported in the UI, not as a traceback
            self.post_message(ModelReady(None, f"{type(error).__name__}: {error}"))

    def on_model_ready(self, message: ModelReady) -> None:
        self.transcriber = message.transcriber
        self._model_ready.set()
        if message.error:
            self.notify(f"Cannot load the model: {message.error}", severity="error", timeout=30)
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
                 _count(len(self.draft.segments), "line")]
        if self.latencies:
            parts.append(f"latency {statistics.median(self.latencies):.1f} s")
        if self.recording:
            parts.append(f"saving to {self.recording.name}")
        self.query_one("#status", Static).update("  ·  ".join(parts))

    # ---- recording --------------------------------------------------------------------------------
    def action_record(self) -> None:
        if self.recording:
            self._stop.set()
            self._show_state("Stopping…")
            return
        if self.busy:
            self.notify("Wait for the current transcription to finish", severity="warning")
            return
        if self.open_source:
            self.start_recording(None)
            return
        try:
            devices = input_devices()
        except AudioSourceError as error:
            self.notify(str(error), severity="error", timeout=15)
            return
        if not devices:
            self.notify("No input device found: connect a microphone, or open a file with o", severity="error")
        elif self.config.device is not None or len(devices) == 1:
            self.start_recording(devices[0] if self.config.device is None else None)
        else:
            self.push_screen(ChoiceScreen("Record from which input?", map(str, devices)),
                             lambda i: None if i is None else self.start_recording(devices[i]))

    def start_recording(self, device: InputDevice | None) -> None:
        stamp = self.config.clock().strftime("%Y-%m-%d-%H%M%S")
        path = self.config.recordings_dir / f"meeting-{stamp}.wav"
        try:
            source = self._open(device)
        except AudioSourceError as error:
            self.notify(str(error), severity="error", timeout=15)
            return
        try:
            wav = GrowingWav(path, device=source.name)
        except OSError as error:
            source.close()
            self.notify(f"Cannot save recordings in {self.config.recordings_dir}: {error.strerror or error}",
                        severity="error", timeout=15)
            return
        self._begin(Draft(source=path.name, date=self.config.clock().date().isoformat()), busy=True)
        self.recording = path
        self._stop.clear()
        self._paused.clear()
        self.query_one("#level").display = True
        blocks: queue.Queue = queue.Queue()
        self._record(source, wav, blocks)
        self._decode(blocks)
        self._show_status()

    def _open(self, device: InputDevice | None) -> AudioSource:
        if self.open_source:
            return self.open_source(device)
        return DeviceSource(device.index if device else self.config.device)

    def _begin(self, draft: Draft, busy: bool) -> None:
        """A new meeting: empty transcript, fresh draft."""
        self.draft = draft
        self.busy = busy
        self.exported = False
        self.latencies.clear()
        self.transcript.clear_options()
        self.title = draft.title or draft.source

    @work(thread=True, group="record")
    def _record(self, source: AudioSource, wav: GrowingWav, blocks: queue.Queue) -> None:
        """Read blocks until stopped or the source ends: each goes to disk first, then to the decoder."""
        error = ""
        try:
            while not self._stop.is_set():
                block = source.read()
                if block is None:
                    break
                rms = float(np.sqrt(np.mean(block ** 2))) if block.size else 0.0
                if not self._paused.is_set():
                    wav.write(block)
                    blocks.put((block, time.monotonic()))
                self.post_message(AudioLevel(rms, wav.seconds))
        except AudioSourceError as error_:
            error = str(error_)
        except OSError as error_:
            error = f"cannot write the recording: {error_.strerror or error_}"
        finally:
            source.close()
            blocks.put(None)
            try:
                wav.close()
            except OSError as error_:
                error = error or f"cannot finish the recording file: {error_.strerror or error_}"
            self.post_message(RecordingEnded(wav.path, wav.seconds, error))

    @work(thread=True, group="decode")
    def _decode(self, blocks: queue.Queue) -> None:
        """Feed recorded blocks to the live transcriber as fast as it keeps up (it gets all blocks waiting)."""
        self._model_ready.wait()
        if self.transcriber is None:
            return
        live = self.make_live(self.transcriber, self.config.chunks)
        arrivals: deque[tuple[int, float]] = deque()  # (recording sample at the end of a block, wall time)
        received, shown = 0, 0.0
        done = False
        while not done:
            items = [blocks.get()]
            while not blocks.empty():
                items.append(blocks.get_nowait())
            done = items[-1] is None
            audio = [block for block, _ in filter(None, items)]
            for block, at in filter(None, items):
                received += block.size
                arrivals.append((received, at))
            update = live.feed(np.concatenate(audio)) if audio else LiveUpdate()
            if done:
                flushed = live.flush()
                update = LiveUpdate(update.final + flushed.final)
            heard, shown = _new_words(update, arrivals, shown)
            self.post_message(LiveText(update, heard, done))

    def on_audio_level(self, message: AudioLevel) -> None:
        self._seconds = message.seconds
        self.query_one(LevelMeter).show_level(message.rms)
        state = "⏸ PAUSED" if self._paused.is_set() else "● REC"
        self._show_state(f"{state} {clock(message.seconds)}   p: pause/resume   r: stop")

    def on_live_text(self, message: LiveText) -> None:
        now = time.monotonic()
        for at in message.heard:
            self.latencies.append(now - at)
            self.all_latencies.append(now - at)
        rows = [(f"seg-{i}", line_text(s, self.draft.speaker(i))) for i, s in
                zip(self.draft.add(message.update.final), message.update.final)]
        partial = message.update.partial
        self.transcript.append_rows(rows, None if partial is None else _provisional(partial),
                                    keep_partial=not rows and not message.done)
        if message.done:
            self.busy = bool(self.recording)
            self.notify(f"Transcript complete: {_count(len(self.draft.segments), 'line')}")
        self._show_status()

    def on_recording_ended(self, message: RecordingEnded) -> None:
        self.recording = None
        self.query_one("#level").display = False
        self.draft.duration = max(self.draft.duration, message.seconds)
        if message.error:
            self.notify(f"Recording stopped: {message.error}. The {clock(message.seconds)} recorded so far "
                        f"are saved in {message.path}", severity="error", timeout=30)
        else:
            self.notify(f"Recording saved: {message.path} ({clock(message.seconds)})")
        self._show_state(f"Recorded {clock(message.seconds)} into {message.path.name}. "
                         "e: export   r: record again")
        self._show_status()

    def action_pause(self) -> None:
        if not self.recording:
            self.notify("Not recording", severity="warning")
        elif self._paused.is_set():
            self._paused.clear()
        else:
            self._paused.set()
        self._show_state(f"{'⏸ PAUSED' if self._paused.is_set() else '● REC'} {clock(self._seconds)}   "
                         "p: pause/resume   r: stop")

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
            minutes = self.transcriber.transcribe(
                audio, source=path.name, date=date,
                hook=lambda step, completed, total: self.post_message(FileProgress(completed, total)))
            self.post_message(FileDone(path, minutes))
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
        self.draft = Draft.from_minutes(message.minutes)
        self.exported = False
        self.transcript.append_rows([(f"seg-{i}", line_text(s, self.draft.speaker(i)))
                                     for i, s in enumerate(self.draft.segments)], None)
        self._show_state(f"{message.path.name}: {clock(message.minutes.duration)}, "
                         f"{_count(len(self.draft.segments), 'line')}.   e: export")
        self._show_status()

    # ---- editing ----------------------------------------------------------------------------------
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


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _provisional(segment: Segment) -> Text:
    text = line_text(segment, None)
    text.stylize("dim italic")
    return text


def _new_words(update: LiveUpdate, arrivals: deque[tuple[int, float]], shown: float) -> tuple[list[float], float]:
    """Arrival times of the words in `update` that end after `shown` (seconds), and the new `shown`."""
    segments: list[Segment] = list(update.final) + ([update.partial] if update.partial else [])
    heard = []
    for word in (w for s in segments for w in s.words if w.end > shown):
        sample = word.end * SAMPLE_RATE
        heard.append(next((at for end, at in arrivals if end >= sample), arrivals[-1][1]))
        shown = word.end
    while len(arrivals) > 1 and arrivals[0][0] < shown * SAMPLE_RATE - 30 * SAMPLE_RATE:
        arrivals.popleft()
    return heard, shown


def make_app(config: AppConfig = AppConfig(), transcriber: Transcriber | Callable[[], Transcriber] | None = None,
             open_source: SourceFactory | None = None,
             live: Callable[[Transcriber, ChunkOptions], LiveTranscriber] = ChunkedTranscriber) -> MinutesApp:
    """The app as the CLI and the tests build it; the model loads in the background unless given. `open_source`
    replaces the sound device, `live` the live transcriber (a streaming engine plugs in here)."""
    return MinutesApp(config, transcriber or Transcriber.load, open_source, live)
