"""The terminal app through Textual's pilot: a WAV fed as if from a microphone, the tiny model, editing, export;
the crash-safe recording file; the live chunker; the real sounddevice path against ALSA's file plugin."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from acoustic.features import SAMPLE_RATE
from minutes.model import Minutes, Segment, Word
from minutes.pipeline import Transcriber
from tests.conftest import make_speech_like, tiny_lm
from tui.app import AppConfig, FileDone, make_app
from tui.live import ChunkedTranscriber, ChunkOptions
from tui.recorder import FileSource, GrowingWav, recover, unfinished
from tui.session import Draft


@pytest.fixture(scope="module")
def transcriber(tiny_model: Path) -> Transcriber:
    return Transcriber.load(tiny_model, decoder="greedy", lm_path=tiny_lm(tiny_model))


def meeting_wav(path: Path, seconds: float = 6.0) -> Path:
    """Speech-like bursts with two clear pauses, so the live chunker cuts there."""
    parts = [make_speech_like(seconds / 3, seed=s) for s in range(3)]
    gap = np.zeros(int(0.6 * SAMPLE_RATE), dtype=np.float32)
    sf.write(path, np.concatenate([parts[0], gap, parts[1], gap, parts[2]]), SAMPLE_RATE, subtype="PCM_16")
    return path


def config(tmp_path: Path, **changes: object) -> AppConfig:
    fields: dict[str, object] = dict(recordings_dir=tmp_path / "rec", output_dir=tmp_path / "out")
    fields.update(changes)
    return AppConfig(**fields)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_record_edit_export(tmp_path: Path, transcriber: Transcriber) -> None:
    wav = meeting_wav(tmp_path / "in.wav")
    app = make_app(config(tmp_path), transcriber, open_source=lambda device: FileSource(wav))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.recording is None and app.draft.segments, "the recording ended with transcript lines"
        view = app.transcript
        assert view.option_count == len(app.draft.segments)
        assert [s.start for s in app.draft.segments] == sorted(s.start for s in app.draft.segments)
        # the recording is on disk, complete (no marker), as long as the input
        saved = list((tmp_path / "rec").glob("meeting-*.wav"))
        assert len(saved) == 1 and not unfinished(tmp_path / "rec")
        assert sf.info(saved[0]).frames == sf.info(wav).frames

        await pilot.press("down", "s")  # name the speaker of the first line
        await pilot.press(*"Anna", "enter")
        await pilot.press("s", "ctrl+u", *"Anna Kowalski", "enter")  # rename: every line of hers follows
        await pilot.press("down", "a", "enter", *"Ben", "enter")  # action item, owner Ben
        await pilot.press("i", *"Weekly sync", "enter", *"Anna Kowalski, Ben", "enter")
        await pilot.press("e", "enter", "enter")
        await pilot.pause()
        assert "Anna Kowalski" in str(view.get_option_at_index(0).prompt)
        assert "ACTION @Ben" in str(view.get_option_at_index(1).prompt)
    md = (tmp_path / "out" / f"{saved[0].stem}.md").read_text()
    first, second = app.draft.segments[0], app.draft.segments[1]
    assert md.startswith("# Weekly sync\n")
    assert "- **Participants:** Anna Kowalski, Ben" in md
    assert f"## Action items\n\n- **[{clock(second.start)}]** {second.text} (owner: Ben)\n" in md
    assert f"**[{clock(first.start)}] Anna Kowalski:** {first.text}" in md
    data = json.loads((tmp_path / "out" / f"{saved[0].stem}.json").read_text())
    assert Minutes.from_dict(data).actions[0].owner == "Ben"


def clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


@pytest.mark.asyncio
async def test_open_file_shows_progress_then_lines(tmp_path: Path, transcriber: Transcriber) -> None:
    wav = meeting_wav(tmp_path / "talk.wav")
    app = make_app(config(tmp_path, file=wav), transcriber)
    async with app.run_test(size=(100, 30)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not app.busy and app.transcript.option_count == len(app.draft.segments) > 0
        assert app.draft.source == "talk.wav"


@pytest.mark.asyncio
async def test_bad_file_gets_a_notice_not_a_crash(tmp_path: Path, transcriber: Transcriber) -> None:
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio at all")
    app = make_app(config(tmp_path, file=bad), transcriber)
    async with app.run_test() as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert any("Cannot transcribe notes.wav" in n.message for n in app._notifications)
        assert not app.busy


@pytest.mark.asyncio
async def test_unwritable_recordings_folder_is_reported(tmp_path: Path, transcriber: Transcriber) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    app = make_app(config(tmp_path, recordings_dir=blocker / "rec"), transcriber,
                   open_source=lambda device: FileSource(meeting_wav(tmp_path / "in.wav")))
    async with app.run_test() as pilot:
        await pilot.press("r")
        await pilot.pause()
        assert app.recording is None
        assert any("Cannot save recordings" in n.message for n in app._notifications)


@pytest.mark.asyncio
async def test_quit_with_unexported_changes_asks(tmp_path: Path, transcriber: Transcriber) -> None:
    app = make_app(config(tmp_path), transcriber)
    async with app.run_test() as pilot:
        app.post_message(FileDone(Path("x.wav"), Minutes("x.wav", 2.0, "m", [Segment(0.0, 1.0, "hello")])))
        await pilot.pause()
        await pilot.press("q")
        await pilot.pause()
        assert type(app.screen).__name__ == "ChoiceScreen"
        await pilot.press("escape")
        assert app.is_running


@pytest.mark.asyncio
async def test_command_palette_lists_the_actions(tmp_path: Path, transcriber: Transcriber) -> None:
    app = make_app(config(tmp_path), transcriber)
    async with app.run_test():
        titles = [c.title for c in app.get_system_commands(app.screen)]
    for title in ("Record / stop recording", "Mark a line as an action item", "Export the minutes (Markdown and "
                  "other formats)", "Name or rename the speaker of a line", "Add a note at the current time"):
        assert title in titles


def test_draft_rename_marks_and_notes() -> None:
    words = (Word("hi", 0.0, 0.5, 1.0),)
    draft = Draft(source="m.wav")
    draft.add([Segment(0, 1, "hi", words, "SPEAKER_00"), Segment(1, 2, "yo", (), "SPEAKER_01"),
               Segment(2, 3, "ok", (), "SPEAKER_00")])
    assert draft.name_speaker(2, "Anna") == [0, 2]
    draft.mark(1, "decision")
    draft.mark(0, "action", owner="Ben")
    draft.add_note(1.5, "  coffee   ran out ")
    m = draft.minutes()
    assert [s.speaker for s in m.segments] == ["Anna", "SPEAKER_01", "Anna"]
    assert m.decisions[0].text == "yo" and m.actions[0].owner == "Ben" and m.notes[0].text == "coffee ran out"
    draft.unmark(1)
    assert not draft.minutes().decisions
    with pytest.raises(ValueError):
        draft.name_speaker(0, "  ")


def test_chunker_cuts_at_pauses_and_keeps_recording_time(transcriber: Transcriber, tmp_path: Path) -> None:
    audio = sf.read(meeting_wav(tmp_path / "m.wav"))[0].astype(np.float32)
    live = ChunkedTranscriber(transcriber, ChunkOptions())
    finals, offsets = [], []
    for start in range(0, audio.size, 1600):
        update = live.feed(audio[start:start + 1600])
        finals += update.final
        offsets.append(live.offset)
    finals += live.flush().final
    assert offsets[-1] > 0 and live.pending.size == 0
    cut_times = sorted(set(offsets) - {0})
    assert all(1.9 < t / SAMPLE_RATE < 2.7 or 4.2 < t / SAMPLE_RATE < 5.0 for t in cut_times[:2])  # in the gaps
    assert all(0 <= s.start <= s.end <= audio.size / SAMPLE_RATE for s in finals)


def test_chunker_options_are_validated() -> None:
    with pytest.raises(ValueError):
        ChunkOptions(min_chunk_s=10, max_chunk_s=8)


def test_growing_wav_survives_a_kill_and_is_recovered(tmp_path: Path) -> None:
    """A recorder process killed with SIGKILL: the file plays up to the last header rewrite, and `recover`
    gets back everything that reached the disk; the next start finds it."""
    script = textwrap.dedent(f"""
        import sys, time, numpy as np
        from pathlib import Path
        from tui.recorder import GrowingWav
        wav = GrowingWav(Path({str(tmp_path / "rec" / "m.wav")!r}))
        for i in range(23):  # 2.3 s in 0.1 s blocks
            wav.write(np.full(1600, 0.1, dtype=np.float32))
        print("ready", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=Path(__file__).parent.parent)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    proc.kill()
    proc.wait()
    wav = tmp_path / "rec" / "m.wav"
    assert unfinished(tmp_path / "rec") == [wav]
    assert 2.0 <= sf.info(wav).duration <= 2.3  # header from the last rewrite: at most 0.5 s behind
    assert recover(wav) == pytest.approx(2.3)
    assert sf.info(wav).duration == pytest.approx(2.3) and not unfinished(tmp_path / "rec")


def test_own_recording_in_progress_is_not_offered(tmp_path: Path) -> None:
    wav = GrowingWav(tmp_path / "live.wav")
    wav.write(np.zeros(800, dtype=np.float32))
    assert unfinished(tmp_path) == []
    wav.close()
    assert sf.info(tmp_path / "live.wav").frames == 800


@pytest.mark.asyncio
async def test_start_offers_to_recover(tmp_path: Path, transcriber: Transcriber) -> None:
    rec = tmp_path / "rec"
    rec.mkdir()
    sf.write(rec / "old.wav", make_speech_like(3.0), SAMPLE_RATE, subtype="PCM_16")
    (rec / "old.wav.recording").write_text(json.dumps({"pid": dead_pid()}))
    app = make_app(config(tmp_path), transcriber)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert type(app.screen).__name__ == "ChoiceScreen"
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.draft.source == "old.wav" and not unfinished(rec)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


ASOUNDRC = """pcm.!default {{
    type asym
    capture.pcm "meeting16k"
    playback.pcm "null"
}}
pcm.meeting16k {{
    type plug
    slave {{ pcm "meeting" format S16_LE rate 16000 channels 1 }}
}}
pcm.meeting {{
    type file
    slave.pcm "null"
    file "/dev/null"
    infile "{raw}"
    format "raw"
}}
"""


def test_sounddevice_path_through_alsa_file_plugin(tmp_path: Path) -> None:
    """DeviceSource reads the default ALSA capture device, here a raw 16-bit 16 kHz file through the `file`
    plugin (behind `plug`, which converts to the float32 PortAudio asks for)."""
    if not shutil.which("true") or not Path("/usr/share/alsa/alsa.conf").exists():
        pytest.skip("ALSA configuration is not installed")
    audio = (make_speech_like(2.0) * 32767).astype("<i2")
    raw = tmp_path / "in.raw"
    raw.write_bytes(audio.tobytes())
    (tmp_path / ".asoundrc").write_text(ASOUNDRC.format(raw=raw))
    script = textwrap.dedent("""
        import numpy as np
        from tui.recorder import AudioSourceError, DeviceSource
        try:
            source = DeviceSource(None)
        except AudioSourceError as error:
            print("SKIP", error)
            raise SystemExit(0)
        blocks = [source.read() for _ in range(10)]
        source.close()
        np.save("got.npy", np.stack(blocks))
        print("OK", source.rate)
    """)
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONPATH": str(Path(__file__).parent.parent)}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60,
                            cwd=tmp_path)
    if result.returncode != 0 and "PortAudio" in result.stderr:
        pytest.skip("PortAudio is not available")
    assert result.returncode == 0, result.stderr
    if result.stdout.startswith("SKIP"):
        pytest.skip(result.stdout.strip())
    assert result.stdout.split() == ["OK", "16000"]
    # each 100 ms block is a block of the file, in order (the file plugin can run ahead: a block may be dropped)
    file_blocks = audio.reshape(-1, 1600) / 32768
    got = np.load(tmp_path / "got.npy")
    found = [int(np.argmin(np.abs(file_blocks - block).max(axis=1))) for block in got]
    assert all(np.abs(file_blocks[k] - block).max() < 1e-3 for k, block in zip(found, got))
    assert found == sorted(set(found)) and found[-1] >= 9


async def until(pilot, condition, seconds: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    """Let the app run until `condition()` holds (fails after `seconds`)."""
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError("the app never reached the expected state")


def two_speakers(audio: np.ndarray, speech=None) -> list:  # type: ignore[no-untyped-def]
    """A fake diarizer: SPEAKER_00 speaks the first half, SPEAKER_01 the rest; it needs the speech track."""
    from minutes.diarization import Turn

    assert speech is not None and speech.values().size  # the transcriber's track of this audio
    half = audio.size / SAMPLE_RATE / 2
    return [Turn(0.0, half, "SPEAKER_00"), Turn(half, audio.size / SAMPLE_RATE, "SPEAKER_01")]


@pytest.mark.asyncio
async def test_speakers_after_a_recording_and_for_a_file(tmp_path: Path, transcriber: Transcriber) -> None:
    wav = meeting_wav(tmp_path / "in.wav")
    app = make_app(config(tmp_path), transcriber, open_source=lambda device: FileSource(wav),
                   speakers=lambda: (two_speakers, ""))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("r")
        # the speaker step starts once the live transcript is complete
        await until(pilot, lambda: bool(app.draft.segments) and app.draft.speaker(0) is not None)
        speakers = [app.draft.speaker(i) for i in range(len(app.draft.segments))]
        assert speakers[0] == "SPEAKER_00" and speakers[-1] == "SPEAKER_01"
        assert "SPEAKER_01:" in str(app.transcript.get_option_at_index(len(speakers) - 1).prompt)
        app.open_file(wav)
        await app.workers.wait_for_complete()
        await pilot.pause()
        # the tiny model hears one long word here: the file's lines all get a speaker from the diarizer
        assert app.draft.segments and {s.speaker for s in app.draft.segments} <= {"SPEAKER_00", "SPEAKER_01"}


@pytest.mark.asyncio
async def test_without_a_speaker_model_the_status_says_so(tmp_path: Path, transcriber: Transcriber) -> None:
    app = make_app(config(tmp_path), transcriber, speakers=lambda: (None, "speakers not identified: no model"))
    async with app.run_test() as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "no speaker model" in str(app.query_one("#status").render())


def test_cli_rejects_a_missing_file_and_lists_no_devices(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from minutes.cli import main

    assert main(["tui", str(tmp_path / "missing.wav")]) == 2
    assert "missing.wav: no such file" in capsys.readouterr().err
    assert main(["record", "--model", str(tmp_path / "none.pt")]) == 2
    assert "no such model file" in capsys.readouterr().err


class FailingSource:
    """Ten blocks of audio, then the device disappears."""

    name = "usb mic"

    def __init__(self) -> None:
        self.blocks = 10

    def read(self) -> np.ndarray | None:
        from tui.recorder import AudioSourceError

        if not self.blocks:
            raise AudioSourceError("the input device stopped: device unavailable")
        self.blocks -= 1
        return make_speech_like(0.1, seed=self.blocks)

    def close(self) -> None:
        pass


@pytest.mark.asyncio
async def test_device_lost_mid_recording_keeps_the_audio(tmp_path: Path, transcriber: Transcriber) -> None:
    app = make_app(config(tmp_path), transcriber, open_source=lambda device: FailingSource())
    async with app.run_test() as pilot:
        await pilot.press("r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.recording is None
        messages = [n.message for n in app._notifications]
        assert any("Recording stopped: the input device stopped" in m and "00:00:01" in m for m in messages)
    saved = list((tmp_path / "rec").glob("*.wav"))
    assert sf.info(saved[0]).frames == 10 * 1600 and not unfinished(tmp_path / "rec")


@pytest.mark.asyncio
async def test_disk_full_stops_the_recording_with_a_notice(tmp_path: Path, transcriber: Transcriber,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    written = []

    def write(self: GrowingWav, block: np.ndarray) -> None:
        if len(written) == 5:
            raise OSError(28, "No space left on device")
        written.append(block)

    monkeypatch.setattr(GrowingWav, "write", write)
    wav = meeting_wav(tmp_path / "in.wav")
    app = make_app(config(tmp_path), transcriber, open_source=lambda device: FileSource(wav))
    async with app.run_test() as pilot:
        await pilot.press("r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.recording is None
        assert any("cannot write the recording: No space left on device" in n.message for n in app._notifications)


@pytest.mark.asyncio
async def test_record_through_the_streaming_engine(tmp_path: Path, tiny_model: Path,
                                                   transcriber: Transcriber) -> None:
    from tui.live import streaming

    wav = meeting_wav(tmp_path / "in.wav")
    app = make_app(config(tmp_path), transcriber, open_source=lambda device: FileSource(wav),
                   live=streaming(tiny_model, "greedy"))
    async with app.run_test() as pilot:
        await pilot.press("r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.recording is None and not app.busy
        assert app.transcript.option_count == len(app.draft.segments) > 0
        assert all(0 <= s.start <= s.end <= sf.info(wav).duration + 0.1 for s in app.draft.segments)


@pytest.mark.asyncio
async def test_a_live_transcriber_that_cannot_load_leaves_the_recording(tmp_path: Path,
                                                                        transcriber: Transcriber) -> None:
    from tui.live import streaming

    wav = meeting_wav(tmp_path / "in.wav")
    app = make_app(config(tmp_path), transcriber, open_source=lambda device: FileSource(wav),
                   live=streaming(tmp_path / "missing.pt", "greedy"))
    async with app.run_test() as pilot:
        await pilot.press("r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not app.busy and any("No live transcript" in n.message for n in app._notifications)
    assert sf.info(next((tmp_path / "rec").glob("*.wav"))).frames == sf.info(wav).frames


@pytest.mark.asyncio
async def test_pause_without_a_recording_changes_nothing(tmp_path: Path, transcriber: Transcriber) -> None:
    app = make_app(config(tmp_path), transcriber)
    async with app.run_test() as pilot:
        await pilot.press("p")
        await pilot.pause()
        assert "REC" not in str(app.query_one("#state").render())
        assert any(n.message == "Not recording" for n in app._notifications)
