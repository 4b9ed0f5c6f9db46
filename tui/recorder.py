"""Audio in: blocks of 16 kHz mono float32 from a sound device (sounddevice) or from a file, and a
crash-safe recording file whose WAV header is kept valid as the audio is appended."""
from __future__ import annotations

import json
import os
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import numpy as np

from acoustic.features import SAMPLE_RATE
from minutes.audio import load_audio

BLOCK_S = 0.1  # one block of audio read at a time (100 ms)
HEADER_EVERY_S = 0.5  # the WAV header is rewritten (and the file synced) after this much new audio
MARKER_SUFFIX = ".recording"  # beside X.wav while X is being recorded; gone after a clean stop


class AudioSourceError(Exception):
    """A sound device that cannot be opened or stopped delivering audio (one-line reason)."""


class AudioSource(Protocol):
    name: str

    def read(self) -> np.ndarray | None:
        """The next block, float32 mono 16 kHz (n,); None when the source has ended."""

    def close(self) -> None:
        """Release the device or file."""


@dataclass(frozen=True)
class InputDevice:
    index: int
    name: str
    rate: float  # the device's default sample rate
    default: bool = False  # the system's default input

    def __str__(self) -> str:
        return f"{self.index}: {self.name}"


def input_devices() -> list[InputDevice]:
    """The sound devices that can record; raises AudioSourceError when PortAudio itself is missing."""
    sd = _sounddevice()
    try:
        devices = sd.query_devices()
    except sd.PortAudioError as error:
        raise AudioSourceError(f"cannot list sound devices: {error}") from error
    default = sd.default.device[0]
    return [InputDevice(i, d["name"], float(d["default_samplerate"]), i == default)
            for i, d in enumerate(devices) if d["max_input_channels"] > 0]


def _sounddevice():  # type: ignore[no-untyped-def]
    try:
        import sounddevice
    except OSError as error:  # the PortAudio library is not installed
        raise AudioSourceError(f"no audio input available: {error}") from error
    return sounddevice


class DeviceSource:
    """Blocking reads from a sound device through PortAudio, at 16 kHz when the device offers it,
    else at its own rate resampled here."""

    def __init__(self, device: int | str | None = None, block_s: float = BLOCK_S) -> None:
        self._sd = _sounddevice()
        self.block_s = block_s
        try:
            info = self._sd.query_devices(device, kind="input")
            self.name = str(info["name"])
            self.stream, self.rate = self._open(device, float(info["default_samplerate"]))
        except (self._sd.PortAudioError, ValueError) as error:
            raise AudioSourceError(f"cannot open input device {device if device is not None else '(default)'}: "
                                   f"{error}") from error

    def _open(self, device: int | str | None, native: float) -> tuple[object, int]:
        for rate in dict.fromkeys((SAMPLE_RATE, int(native))):
            try:
                stream = self._sd.InputStream(device=device, channels=1, samplerate=rate, dtype="float32",
                                              blocksize=int(rate * self.block_s))
                stream.start()
                return stream, rate
            except self._sd.PortAudioError:
                if rate == int(native):
                    raise
        raise AudioSourceError("no usable sample rate")  # unreachable: the loop returns or raises

    def read(self) -> np.ndarray | None:
        try:
            data, _overflowed = self.stream.read(int(self.rate * self.block_s))
        except self._sd.PortAudioError as error:
            raise AudioSourceError(f"the input device stopped: {error}") from error
        block = np.asarray(data, dtype=np.float32).mean(axis=1)
        if self.rate != SAMPLE_RATE:
            from scipy.signal import resample_poly

            block = resample_poly(block, SAMPLE_RATE, self.rate).astype(np.float32)
        return block

    def close(self) -> None:
        try:
            self.stream.stop()
            self.stream.close()
        except self._sd.PortAudioError:
            pass  # a device unplugged mid-recording cannot be stopped; nothing is left to release


class FileSource:
    """A file played as if it were a microphone: blocks of `block_s`, paced in real time when asked
    (benchmarks, demos) or as fast as they are read (tests)."""

    def __init__(self, path: str | Path, block_s: float = BLOCK_S, realtime: bool = False) -> None:
        self.name = Path(path).name
        self.audio = load_audio(path)
        self.block = int(SAMPLE_RATE * block_s)
        self.realtime = realtime
        self.position = 0
        self.started = time.monotonic()

    def read(self) -> np.ndarray | None:
        if self.position >= self.audio.size:
            return None
        block = self.audio[self.position:self.position + self.block]
        self.position += block.size
        if self.realtime:
            time.sleep(max(0.0, self.started + self.position / SAMPLE_RATE - time.monotonic()))
        return block

    def close(self) -> None:
        self.position = self.audio.size


class GrowingWav:
    """A 16-bit mono WAV appended block by block; its header is rewritten every HEADER_EVERY_S of audio,
    so after a crash the file plays up to the last rewrite, and `recover` restores the rest."""

    def __init__(self, path: Path, device: str = "") -> None:
        self.path = path
        self.marker = path.with_name(path.name + MARKER_SUFFIX)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.marker.write_text(json.dumps({"pid": os.getpid(), "device": device, "started": time.time()}))
        self.file: BinaryIO = open(path, "wb")
        self.samples = 0
        self._since_header = 0
        self._write_header()

    @property
    def seconds(self) -> float:
        return self.samples / SAMPLE_RATE

    def write(self, block: np.ndarray) -> None:
        """Append float32 samples in [-1, 1]; raises OSError (disk full, ...) with the file still valid."""
        pcm = (np.clip(block, -1.0, 1.0) * 32767.0).astype("<i2")
        self.file.write(pcm.tobytes())
        self.file.flush()  # in the OS's hands now: survives the app being killed
        self.samples += pcm.size
        self._since_header += pcm.size
        if self._since_header >= HEADER_EVERY_S * SAMPLE_RATE:
            self._write_header()

    def close(self) -> None:
        """Final header; the recording is complete (the marker goes)."""
        try:
            self._write_header()
        finally:
            self.file.close()
        self.marker.unlink(missing_ok=True)

    def _write_header(self) -> None:
        self.file.seek(0)
        self.file.write(wav_header(self.samples))
        self.file.seek(0, os.SEEK_END)
        self.file.flush()
        os.fsync(self.file.fileno())
        self._since_header = 0


def wav_header(samples: int, rate: int = SAMPLE_RATE) -> bytes:
    """The 44-byte header of a 16-bit mono PCM WAV holding `samples` samples."""
    data = samples * 2
    return (b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt "
            + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16) + b"data" + struct.pack("<I", data))


def unfinished(folder: Path) -> list[Path]:
    """Recordings in `folder` left unfinished by an app that is no longer running, newest first."""
    found = []
    for marker in folder.glob(f"*.wav{MARKER_SUFFIX}"):
        wav = marker.with_name(marker.name[:-len(MARKER_SUFFIX)])
        if wav.exists() and not _alive(_marker_pid(marker)):
            found.append(wav)
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def recover(wav: Path) -> float:
    """Make an unfinished recording whole: header rewritten from the bytes on disk, marker removed.
    Returns its duration in seconds."""
    with open(wav, "r+b") as file:
        size = file.seek(0, os.SEEK_END)
        samples = max(0, size - 44) // 2
        file.truncate(44 + samples * 2)
        file.seek(0)
        file.write(wav_header(samples))
    wav.with_name(wav.name + MARKER_SUFFIX).unlink(missing_ok=True)
    return samples / SAMPLE_RATE


def _marker_pid(marker: Path) -> int | None:
    try:
        return int(json.loads(marker.read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
