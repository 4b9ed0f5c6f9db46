"""Audio loading: any supported file -> float32 mono at 16 kHz. The audio constants themselves live in
acoustic.features (SAMPLE_RATE, HOP_LENGTH, frames_to_seconds), re-exported here for the core."""
from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

from acoustic.features import SAMPLE_RATE

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".aac", ".wma", ".webm", ".mp4")
_SOUNDFILE_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3")
ACCEPTED = "WAV, FLAC, OGG/Opus, MP3 or M4A"


class AudioError(ValueError):
    """An input that cannot be used as audio; the message is one line meant for the user."""


def load_audio(path: str | Path) -> np.ndarray:
    """Read any supported file as float32 mono at 16 kHz, shape (samples,).

    Raises AudioError with a one-line reason (without the path) for missing, empty, non-audio or
    undecodable files.
    """
    path = Path(path)
    if not path.exists():
        raise AudioError("no such file")
    if path.is_dir():
        raise AudioError("is a folder, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError("empty file (0 bytes)")
    audio, rate = _decode(path)
    if audio.size == 0:
        raise AudioError("no audio samples (zero-length audio)")
    if not np.isfinite(audio).all():
        raise AudioError("audio contains invalid (NaN/inf) samples")
    return _resample(audio, rate)


def _decode(path: Path) -> tuple[np.ndarray, int]:
    if path.suffix.lower() in _SOUNDFILE_EXTENSIONS:
        try:
            audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
            if _cheap_to_resample(rate):
                return audio.mean(axis=1), rate
            # A corrupt header or odd rate (e.g. 1 GHz, 16001 Hz) would make torchaudio build a sinc
            # kernel of (rate/g) x (16000/g) taps (GBs, or a RuntimeError); let ffmpeg resample or refuse.
            soundfile_reason = f"unusual sample rate {rate} Hz"
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
