"""Recording in the app: pick the input, save the audio as it comes (crash-safe), transcribe it live in a
worker thread, show the level, elapsed time and delay. A mixin of `MinutesApp`."""
from __future__ import annotations

import queue
import time
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
from rich.text import Text
from textual import work

from acoustic.checkpoint import CheckpointError
from acoustic.features import SAMPLE_RATE
from minutes.audio import AudioError, load_audio
from minutes.diarization import DiarizationError
from minutes.model import Segment
from tui.dialogs import ChoiceScreen
from tui.live import LiveUpdate
from tui.messages import AudioLevel, LiveText, RecordingEnded, SpeakersFound
from tui.recorder import AudioSource, AudioSourceError, DeviceSource, GrowingWav, InputDevice, input_devices
from tui.session import Draft
from tui.speakers import line_speakers
from tui.widgets import LevelMeter, clock, count, line_text

LEVEL_EVERY_S = 0.1  # audio seconds between updates of the level meter and elapsed time (every block if paused)


class RecordingMixin:
    """Recording actions, workers and their message handlers; the app provides the attributes annotated here
    (and the `threading.Event`s `_stop` and `_paused`)."""

    config: Any  # tui.app.AppConfig
    draft: Draft
    recording: Path | None
    last_recording: Path | None
    busy: bool
    decoding: bool
    _seconds: float
    _stop: Any
    _paused: Any
    _model_ready: Any
    transcriber: Any
    diarize: Any
    open_source: Any
    make_live: Any
    latencies: deque[float]
    all_latencies: list[float]
    notify: Callable[..., None]
    push_screen: Callable[..., Any]
    post_message: Callable[..., Any]
    call_from_thread: Callable[..., Any]
    query_one: Callable[..., Any]
    transcript: Any
    _show_state: Callable[..., None]
    _show_status: Callable[..., None]
    _refresh_lines: Callable[..., None]

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
            default = next((n for n, d in enumerate(devices) if d.default), 0)
            self.push_screen(ChoiceScreen("Record from which input?", map(str, devices), default),
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
        self.last_recording = None  # set when this recording has ended
        self.decoding = True
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
        self.draft.model = self.transcriber.name if self.transcriber else ""
        self.busy = busy
        self.exported = False
        self.latencies.clear()
        self.transcript.clear_options()
        self.title = draft.title or draft.source

    @work(thread=True, group="record")
    def _record(self, source: AudioSource, wav: GrowingWav, blocks: queue.Queue) -> None:
        """Read blocks until stopped or the source ends: each goes to disk first, then to the decoder."""
        error = ""
        shown = -LEVEL_EVERY_S  # recording time of the last level posted: one per LEVEL_EVERY_S of audio
        try:
            while not self._stop.is_set():
                block = source.read()
                if block is None:
                    break
                if not self._paused.is_set():
                    wav.write(block)
                    blocks.put((block, time.monotonic()))
                if wav.seconds - shown >= LEVEL_EVERY_S - 1e-9 or self._paused.is_set():
                    shown = wav.seconds
                    rms = float(np.sqrt(np.mean(block ** 2))) if block.size else 0.0
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
        try:
            live = self.make_live(self.transcriber, self.config.chunks)
        except (CheckpointError, OSError, ValueError) as error:  # e.g. a missing streaming model
            self.call_from_thread(self.notify, f"No live transcript: {error}. The recording is still saved.",
                                  severity="error", timeout=20)
            self.post_message(LiveText(LiveUpdate(), [], done=True))
            return
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
            self.decoding = False
            self.busy = self.recording is not None
            self.notify(f"Transcript complete: {count(len(self.draft.segments), 'line')}")
            self._speakers_when_ready()
        self._show_status()

    def _speakers_when_ready(self) -> None:
        """Diarize once both the recording has ended and its live transcript is complete (either comes first)."""
        if self.diarize and self.draft.segments and self.last_recording and not self.decoding:
            self._find_speakers(self.last_recording, list(self.draft.segments))

    @work(thread=True, group="speakers")
    def _find_speakers(self, path: Path, segments: list[Segment]) -> None:
        """Diarize the finished recording and give each live line the speaker of most of its words."""
        try:
            audio = load_audio(path)
            speech = self.transcriber.speech_of(audio) if self.transcriber else None
            turns = self.diarize(audio, speech)  # type: ignore[misc]
            self.post_message(SpeakersFound(line_speakers(segments, turns)))
        except (DiarizationError, AudioError) as error:
            self.post_message(SpeakersFound([], str(error)))

    def on_speakers_found(self, message: SpeakersFound) -> None:
        if message.error:
            self.notify(f"Speakers not identified: {message.error}", severity="warning", timeout=15)
            return
        changed = [i for i, label in enumerate(message.labels)
                   if label and i < len(self.draft.segments) and self.draft.segments[i].speaker is None]
        for i in changed:
            self.draft.segments[i] = replace(self.draft.segments[i], speaker=message.labels[i])
        self._refresh_lines(changed)
        self.notify(f"Speakers identified: {len({message.labels[i] for i in changed})} (s renames one everywhere)")

    def on_recording_ended(self, message: RecordingEnded) -> None:
        self.recording = None
        self.busy = self.decoding
        self.last_recording = message.path
        self.query_one("#level").display = False
        self.draft.duration = max(self.draft.duration, message.seconds)
        self._speakers_when_ready()
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
            return
        if self._paused.is_set():
            self._paused.clear()
        else:
            self._paused.set()
        self._show_state(f"{'⏸ PAUSED' if self._paused.is_set() else '● REC'} {clock(self._seconds)}   "
                         "p: pause/resume   r: stop")


def _provisional(segment: Segment) -> Text:
    text = line_text(segment, None)
    text.stylize("dim italic")
    return text


def _new_words(update: LiveUpdate, arrivals: deque[tuple[int, float]], shown: float) -> tuple[list[float], float]:
    """Arrival times of the words in `update` that end after `shown` (seconds), and the new `shown`. A line
    without word times (a streaming partial) counts once, at its end."""
    segments: list[Segment] = list(update.final) + ([update.partial] if update.partial else [])
    ends = [end for s in segments for end in ([w.end for w in s.words] or ([s.end] if s.text else []))]
    heard = []
    for word_end in (end for end in ends if end > shown):
        sample = word_end * SAMPLE_RATE
        heard.append(next((at for end, at in arrivals if end >= sample), arrivals[-1][1]))
        shown = word_end
    while len(arrivals) > 1 and arrivals[0][0] < shown * SAMPLE_RATE - 30 * SAMPLE_RATE:
        arrivals.popleft()
    return heard, shown
