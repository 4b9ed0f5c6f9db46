"""Audio loading: any supported file -> float32 mono at 16 kHz. The audio constants themselves live in
acoustic.features (SAMPLE_RATE, HOP_LENGTH, frames_to_seconds), re-exported here for the core."""
from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf

from acoustic.features import SAMPLE_RATE

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".wma", ".webm", ".mp4",
                    ".aif", ".aiff", ".mka")
_SOUNDFILE_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff")
ACCEPTED = "WAV, FLAC, OGG/Opus, MP3 or M4A"
BLOCK_SAMPLES = 10 * SAMPLE_RATE  # what stream_audio yields at a time: 10 s, 640 KB of float32
MAX_CHANNELS = 64  # more (a damaged header?) goes to ffmpeg rather than into a huge read buffer


class AudioError(ValueError):
    """An input that cannot be used as audio; the message is one line meant for the user."""


def load_audio(path: str | Path) -> np.ndarray:
    """Read any supported file as float32 mono at 16 kHz, shape (samples,).

    Raises AudioError with a one-line reason (without the path) for missing, empty, non-audio or
    undecodable files.
    """
    path = Path(path)
    _check_file(path)
    audio, rate = _decode(path)
    if audio.size == 0:
        raise AudioError("no audio samples (zero-length audio)")
    if not np.isfinite(audio).all():
        raise AudioError("audio contains invalid (NaN/inf) samples")
    return _resample(audio, rate)


def _decode(path: Path) -> tuple[np.ndarray, int]:
    if path.suffix.lower() in _SOUNDFILE_EXTENSIONS:
        try:
            with sf.SoundFile(str(path)) as file:
                if _cheap_to_resample(file.samplerate) and 0 < file.channels <= MAX_CHANNELS:
                    # block by block: a damaged header's frame count (billions) never sizes a buffer
                    blocks = list(_mono_blocks(file, BLOCK_SAMPLES))
                    return (np.concatenate(blocks) if blocks else np.zeros(0, np.float32)), file.samplerate
                # A corrupt header or odd rate (e.g. 1 GHz, 16001 Hz) would make torchaudio build a sinc
                # kernel of (rate/g) x (16000/g) taps (GBs, or a RuntimeError); let ffmpeg resample or refuse.
                soundfile_reason = f"unusual sample rate {file.samplerate} Hz or {file.channels} channels"
        except (sf.LibsndfileError, RuntimeError, TypeError) as error:
            soundfile_reason = str(error).strip().splitlines()[-1] if str(error).strip() else "unreadable"
    else:
        soundfile_reason = "not a format libsndfile reads"
    return _decode_ffmpeg(path, soundfile_reason), SAMPLE_RATE


def _cheap_to_resample(rate: int) -> bool:
    g = math.gcd(rate, SAMPLE_RATE) if rate > 0 else 1
    return rate > 0 and (rate // g) * (SAMPLE_RATE // g) <= 20_000_000


def _decode_ffmpeg(path: Path, earlier_reason: str) -> np.ndarray:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise AudioError(f"cannot decode ({earlier_reason}) and ffmpeg is not installed; use {ACCEPTED}")
    command = [ffmpeg, "-nostdin", "-v", "error", "-i", str(path), "-f", "f32le", "-ac", "1",
               "-ar", str(SAMPLE_RATE), "-"]
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0:
        lines = result.stderr.decode(errors="replace").strip().splitlines()
        reason = lines[-1].removeprefix(f"{path}: ") if lines else "unknown error"  # the CLI adds the path
        raise AudioError(f"not a readable audio file ({ACCEPTED} expected): {reason}")
    return np.frombuffer(result.stdout, dtype=np.float32).copy()


def _resample(audio: np.ndarray, rate: int) -> np.ndarray:
    if rate == SAMPLE_RATE:
        return np.ascontiguousarray(audio, dtype=np.float32)
    import torch
    import torchaudio.functional as F

    resampled = F.resample(torch.from_numpy(np.ascontiguousarray(audio)), rate, SAMPLE_RATE)
    return resampled.numpy().astype(np.float32)




def stream_audio(path: str | Path, block_samples: int = BLOCK_SAMPLES) -> tuple[float | None, Iterator[np.ndarray]]:
    """Open any supported file for reading in blocks: (duration in seconds if known, iterator of float32 mono
    16 kHz blocks of at most block_samples). Memory stays bounded whatever the file's length.

    16 kHz files libsndfile reads are read block by block (the same samples load_audio gives); everything
    else is decoded and resampled by an ffmpeg pipe (load_audio's whole-file fallback where ffmpeg is
    missing). Raises AudioError with a one-line reason, up front or from the iterator (mid-file damage).
    """
    path = Path(path)
    _check_file(path)
    # MP3 goes to ffmpeg: it is rarely 16 kHz, and libmpg123 prints notes on stderr for damaged files
    if path.suffix.lower() in _SOUNDFILE_EXTENSIONS and path.suffix.lower() != ".mp3":
        try:
            info = sf.info(str(path))
        except (sf.LibsndfileError, RuntimeError, TypeError):
            info = None
        if info is not None and info.samplerate == SAMPLE_RATE and 0 < info.channels <= MAX_CHANNELS:
            _check_not_truncated(path, info)
            return info.frames / SAMPLE_RATE, _nonempty(_soundfile_blocks(path, block_samples))
    if shutil.which("ffmpeg") is None:
        audio = load_audio(path)
        return audio.size / SAMPLE_RATE, iter([audio[i:i + block_samples] for i in range(0, audio.size, block_samples)])
    return _probe_duration(path), _nonempty(_ffmpeg_blocks(path, block_samples))


def _check_file(path: Path) -> None:
    if not path.exists():
        raise AudioError("no such file")
    if path.is_dir():
        raise AudioError("is a folder, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError("empty file (0 bytes)")


def _check_not_truncated(path: Path, info: "sf._SoundFileInfo") -> None:
    """libsndfile quietly reads what is left of a cut-off WAV; its RIFF header still says how much there was."""
    if info.format != "WAV":
        return
    with open(path, "rb") as file:
        header = file.read(4096)
    data = header.find(b"data", 12)
    if data < 0 or data + 8 > len(header):
        return
    promised = int.from_bytes(header[data + 4:data + 8], "little")
    present = path.stat().st_size - (data + 8)
    if 0 < promised < 0xFFFFFFFF and present < promised:
        raise AudioError(f"truncated file: the header promises {promised} bytes of audio, only {present} are there")


def _mono_blocks(file: sf.SoundFile, block_samples: int) -> Iterator[np.ndarray]:
    """float32 mono blocks of an open file until libsndfile has no more (whatever frame count its header claims)."""
    while len(block := file.read(block_samples, dtype="float32", always_2d=True)):
        yield block.mean(axis=1)


def _soundfile_blocks(path: Path, block_samples: int) -> Iterator[np.ndarray]:
    try:
        with sf.SoundFile(str(path)) as file:
            for block in _mono_blocks(file, block_samples):
                yield _finite(block)
    except (sf.LibsndfileError, RuntimeError) as error:
        raise AudioError(f"damaged audio: {str(error).strip().splitlines()[-1] or 'unreadable'}") from None


def _ffmpeg_blocks(path: Path, block_samples: int) -> Iterator[np.ndarray]:
    """ffmpeg decodes and resamples to 16 kHz mono f32le on a pipe; its errors go to a file (no pipe deadlock)."""
    command = [shutil.which("ffmpeg") or "ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "f32le",
               "-ac", "1", "-ar", str(SAMPLE_RATE), "-"]
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, stdin=subprocess.DEVNULL)
        try:
            assert process.stdout is not None
            while data := process.stdout.read(block_samples * 4):
                usable = len(data) // 4 * 4
                yield _finite(np.frombuffer(data[:usable], dtype=np.float32).copy())
            if process.wait() != 0:
                errors.seek(0)
                lines = errors.read().decode(errors="replace").strip().splitlines()
                reason = lines[-1].removeprefix(f"{path}: ") if lines else "unknown error"
                raise AudioError(f"not a readable audio file ({ACCEPTED} expected): {reason}")
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def _nonempty(blocks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    count = 0
    for block in blocks:
        count += block.size
        if block.size:
            yield block
    if count == 0:
        raise AudioError("no audio samples (zero-length audio)")


def _finite(block: np.ndarray) -> np.ndarray:
    if not np.isfinite(block).all():
        raise AudioError("audio contains invalid (NaN/inf) samples")
    return np.ascontiguousarray(block, dtype=np.float32)


def _probe_duration(path: Path) -> float | None:
    """Duration from ffprobe (for progress bars only); None when it cannot tell."""
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        return None
    try:
        result = subprocess.run([ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
                                 str(path)], capture_output=True, text=True, timeout=60, check=False)
        return float(result.stdout.strip())
    except (ValueError, OSError, subprocess.TimeoutExpired):
        return None
