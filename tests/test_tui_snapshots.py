"""SVG snapshots of the app's main screens (fixed size, no clock, injected audio and transcriber).
Update them with `pytest tests/test_tui_snapshots.py --snapshot-update` after a deliberate UI change."""
from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import numpy as np
import pytest

from minutes.model import Minutes, Segment
from tui.app import AppConfig, FileDone, MinutesApp, make_app
from tui.live import LiveUpdate

SIZE = (100, 24)
SEGMENTS = [
    Segment(1.2, 4.0, "good morning everyone let us start with the budget", speaker="SPEAKER_00"),
    Segment(4.5, 8.0, "we agreed to ship the release on friday", speaker="SPEAKER_01"),
    Segment(8.4, 12.0, "anna will send the report by monday", speaker="SPEAKER_00"),
]


class FakeTranscriber:
    name = "test-model"


class HeldSource:
    """Twenty quiet blocks (2 s), then nothing until the recording is stopped."""

    name = "test input"

    def __init__(self) -> None:
        self.blocks = 20
        self.stopped = threading.Event()

    def read(self) -> np.ndarray | None:
        if self.blocks:
            self.blocks -= 1
            return np.full(1600, 0.01, dtype=np.float32)
        self.stopped.wait(3)  # keep "recording" until the snapshot is taken
        return None

    def close(self) -> None:
        self.stopped.set()


class OneLine:
    """A live transcriber that hears one line, then one provisional line."""

    def __init__(self, *_: object) -> None:
        self.calls = 0

    def feed(self, samples: np.ndarray) -> LiveUpdate:
        self.calls += 1
        return LiveUpdate((SEGMENTS[0],), Segment(4.5, 5.0, "we agreed")) if self.calls == 1 else LiveUpdate()

    def flush(self) -> LiveUpdate:
        return LiveUpdate()


def file_app(tmp_path: Path) -> MinutesApp:
    config = AppConfig(recordings_dir=tmp_path / "rec", output_dir=tmp_path)
    return make_app(config, FakeTranscriber())  # type: ignore[arg-type]


async def show_file(pilot) -> None:  # type: ignore[no-untyped-def]
    minutes = Minutes("standup.wav", 12.5, "test-model", SEGMENTS, date="2026-11-26")
    pilot.app.post_message(FileDone(Path("standup.wav"), minutes))
    await pilot.pause()


def test_transcript_with_marks(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    async def edit(pilot) -> None:  # type: ignore[no-untyped-def]
        await show_file(pilot)
        await pilot.press("down", "s", *"Anna", "enter", "down", "d", "down", "a", "enter", *"Anna", "enter")
        await pilot.pause()

    assert snap_compare(file_app(tmp_path), terminal_size=SIZE, run_before=edit)


def test_action_item_dialog(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    async def open_dialog(pilot) -> None:  # type: ignore[no-untyped-def]
        await show_file(pilot)
        await pilot.press("down", "down", "down", "a")
        await pilot.pause()

    assert snap_compare(file_app(tmp_path), terminal_size=SIZE, run_before=open_dialog)


def test_recording_screen(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = HeldSource()
    config = AppConfig(recordings_dir=tmp_path / "rec", clock=lambda: dt.datetime(2026, 11, 26, 9, 30))
    app = make_app(config, FakeTranscriber(),  # type: ignore[arg-type]
                   open_source=lambda device: source, live=OneLine)

    async def record(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.press("r")
        while pilot.app._seconds < 2.0 or not pilot.app.draft.segments:
            await pilot.pause(0.05)
        pilot.app.latencies.clear()  # measured wall-clock delays differ from run to run
        pilot.app._show_status()
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=record)
    source.stopped.set()
