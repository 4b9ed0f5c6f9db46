"""load_audio: every supported container/codec, rate and channel layout -> float32 mono 16 kHz;
unusable inputs -> AudioError with a one-line reason (never another exception type)."""
from __future__ import annotations

import io
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import soundfile as sf

from minutes.audio import SAMPLE_RATE, AudioError, load_audio

FFMPEG = shutil.which("ffmpeg")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg CLI not installed")
DURATION_TOLERANCE = int(0.030 * SAMPLE_RATE)  # codecs pad (encoder delay, frame rounding)


def tone(rate: int, seconds: float = 1.0, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(rate * seconds))) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def spectrum(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies in Hz, amplitude of each bin: a sine of amplitude A shows as ~A)."""
    return np.fft.rfftfreq(audio.size, 1 / SAMPLE_RATE), 2 * np.abs(np.fft.rfft(audio)) / audio.size


def dominant_hz(audio: np.ndarray) -> float:
    freqs, amps = spectrum(audio)
    return float(freqs[np.argmax(amps)])


def amplitude_at(audio: np.ndarray, hz: float, width: float = 5.0) -> float:
    freqs, amps = spectrum(audio)
    return float(amps[np.abs(freqs - hz) <= width].max())


def assert_16k_mono(audio: np.ndarray, seconds: float, tolerance: int = DURATION_TOLERANCE) -> None:
    assert isinstance(audio, np.ndarray)
    assert audio.dtype == np.float32
    assert audio.ndim == 1
    assert audio.flags["C_CONTIGUOUS"]
    assert abs(audio.size - seconds * SAMPLE_RATE) <= tolerance, audio.size / SAMPLE_RATE
    assert np.isfinite(audio).all()


def ffmpeg_encode(source: Path, target: Path, *codec_args: str) -> Path:
    subprocess.run([FFMPEG, "-nostdin", "-y", "-v", "error", "-i", str(source), *codec_args, str(target)],
                   check=True, capture_output=True, timeout=60)
    return target


# ----------------------------------------------------------------------------------------- formats


def write_flac(path: Path, audio: np.ndarray, rate: int) -> Path:
    sf.write(path, audio, rate, format="FLAC", subtype="PCM_16")
    return path


def write_vorbis(path: Path, audio: np.ndarray, rate: int) -> Path:
    sf.write(path, audio, rate, format="OGG", subtype="VORBIS")
    return path


def write_opus(path: Path, audio: np.ndarray, rate: int) -> Path:
    sf.write(path, audio, rate, format="OGG", subtype="OPUS")
    return path


def write_mp3(path: Path, audio: np.ndarray, rate: int) -> Path:
    if "MP3" in sf.available_formats():
        sf.write(path, audio, rate, format="MP3", subtype="MPEG_LAYER_III")
        return path
    if FFMPEG is None:
        pytest.skip("neither libsndfile MP3 support nor ffmpeg available")
    wav = path.with_suffix(".src.wav")
    sf.write(wav, audio, rate)
    return ffmpeg_encode(wav, path, "-c:a", "libmp3lame", "-b:a", "128k")


def ffmpeg_writer(*codec_args: str) -> Callable[[Path, np.ndarray, int], Path]:
    def write(path: Path, audio: np.ndarray, rate: int) -> Path:
        if FFMPEG is None:
            pytest.skip("ffmpeg CLI not installed")
        wav = path.with_suffix(".src.wav")
        sf.write(wav, audio, rate)
        return ffmpeg_encode(wav, path, *codec_args)
    return write


FORMATS = [
    pytest.param("tone.flac", write_flac, 44100, DURATION_TOLERANCE, id="flac-44.1k"),
    pytest.param("tone.ogg", write_vorbis, 22050, DURATION_TOLERANCE, id="ogg-vorbis-22.05k"),
    pytest.param("tone.opus", write_opus, 48000, DURATION_TOLERANCE, id="ogg-opus-48k"),
    pytest.param("tone.mp3", write_mp3, 44100, DURATION_TOLERANCE, id="mp3-44.1k"),
    pytest.param("tone.m4a", ffmpeg_writer("-c:a", "aac", "-b:a", "128k"), 44100, DURATION_TOLERANCE,
                 id="m4a-aac-44.1k"),
    # raw ADTS has no edit list, so the encoder's priming + last-frame padding (~36 ms) stays in
    pytest.param("tone.aac", ffmpeg_writer("-c:a", "aac", "-b:a", "128k", "-f", "adts"), 48000,
                 int(0.050 * SAMPLE_RATE), id="adts-aac-48k"),
]


@pytest.mark.parametrize(("name", "write", "rate", "tolerance"), FORMATS)
def test_each_format_decodes_to_16k_mono_with_the_tone_kept(tmp_path: Path, name: str, write, rate: int,
                                                             tolerance: int) -> None:
    seconds = 1.5
    path = write(tmp_path / name, tone(rate, seconds, freq=440.0, amp=0.5), rate)
    audio = load_audio(path)
    assert_16k_mono(audio, seconds, tolerance)
    assert abs(dominant_hz(audio) - 440.0) <= 5.0
    # a lossy codec keeps the tone's level (0.5 peak) roughly; nothing got clipped or attenuated a lot
    assert 0.4 <= amplitude_at(audio, 440.0) <= 0.6
    assert np.abs(audio).max() <= 1.0
    # no energy moved far from 440 Hz (e.g. a wrong assumed rate would shift the tone)
    assert amplitude_at(audio, 3000.0, width=2000.0) < 0.02


def test_wav_int16_8k_stereo_is_averaged_to_mono(tmp_path: Path) -> None:
    left, right = tone(8000, 1.0, 440.0, amp=0.6), tone(8000, 1.0, 1000.0, amp=0.2)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 8000, subtype="PCM_16")
    audio = load_audio(path)
    assert_16k_mono(audio, 1.0)
    assert audio.size == 16000  # exact 2x upsampling
    # the mean of the channels: each tone at half its channel's amplitude
    assert amplitude_at(audio, 440.0) == pytest.approx(0.3, abs=0.02)
    assert amplitude_at(audio, 1000.0) == pytest.approx(0.1, abs=0.02)
    assert dominant_hz(audio) == pytest.approx(440.0, abs=2.0)
    # nothing above the 4 kHz Nyquist of the source appears
    assert amplitude_at(audio, 6000.0, width=1900.0) < 0.01


def test_stereo_channels_in_antiphase_cancel(tmp_path: Path) -> None:
    """Averaging, not picking one channel: L = x, R = -x gives (near) silence."""
    x = tone(16000, 0.5, 440.0, amp=0.5)
    path = tmp_path / "antiphase.wav"
    sf.write(path, np.stack([x, -x], axis=1), 16000, subtype="FLOAT")
    audio = load_audio(path)
    assert_16k_mono(audio, 0.5)
    assert np.abs(audio).max() < 1e-6


def test_16k_mono_float_wav_passes_through_unchanged(tmp_path: Path) -> None:
    x = np.random.default_rng(1).uniform(-0.9, 0.9, 8000).astype(np.float32)
    path = tmp_path / "exact.wav"
    sf.write(path, x, 16000, subtype="FLOAT")
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.shape == (8000,)
    np.testing.assert_array_equal(audio, x)


def test_int16_wav_is_scaled_to_minus_one_one(tmp_path: Path) -> None:
    path = tmp_path / "full_scale.wav"
    sf.write(path, np.array([0, 16384, -32768, 32767] * 100, dtype=np.int16), 16000, subtype="PCM_16")
    audio = load_audio(path)
    np.testing.assert_allclose(audio[:4], [0.0, 0.5, -1.0, 32767 / 32768], atol=1e-6)


def test_uppercase_extension_and_multichannel(tmp_path: Path) -> None:
    rate, chans = 48000, 4
    data = np.stack([tone(rate, 1.0, 440.0, amp=0.4)] * chans, axis=1)
    path = tmp_path / "MEETING.FLAC"
    sf.write(path, data, rate, format="FLAC")
    audio = load_audio(path)
    assert_16k_mono(audio, 1.0)
    assert amplitude_at(audio, 440.0) == pytest.approx(0.4, abs=0.02)


def test_odd_sample_rate_resamples_correctly(tmp_path: Path) -> None:
    """16001 Hz shares no factor with 16 kHz: torchaudio would need a ~1 GB sinc kernel; must still work."""
    path = tmp_path / "odd.wav"
    sf.write(path, tone(16001, 1.0, 440.0, amp=0.5), 16001, subtype="FLOAT")
    audio = load_audio(path)
    assert_16k_mono(audio, 1.0)
    assert abs(dominant_hz(audio) - 440.0) <= 2.0


def test_truncated_mid_data_wav_returns_the_frames_present(tmp_path: Path) -> None:
    buf = io.BytesIO()
    sf.write(buf, tone(16000, 1.0), 16000, format="WAV", subtype="PCM_16")
    path = tmp_path / "cut.wav"
    path.write_bytes(buf.getvalue()[:44 + 2 * 4000])  # header still claims 16000 frames
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert audio.size == 4000


# -------------------------------------------------------------------------------------- bad inputs


def zero_frame_wav(path: Path) -> Path:
    sf.write(path, np.zeros(0, dtype=np.float32), 16000, subtype="PCM_16")
    assert path.stat().st_size == 44  # header only
    return path


def nan_wav(path: Path) -> Path:
    x = tone(16000, 0.5)
    x[123] = np.nan
    sf.write(path, x, 16000, subtype="FLOAT")
    return path


def inf_wav(path: Path) -> Path:
    x = tone(16000, 0.5)
    x[-1] = np.inf
    sf.write(path, x, 16000, subtype="FLOAT")
    return path


def make_dir(path: Path) -> Path:
    path.mkdir()
    (path / "inside.wav").write_bytes(b"")
    return path


BAD_INPUTS = [
    pytest.param("missing.wav", lambda p: p, "no such file", id="missing"),
    pytest.param("folder.wav", make_dir, "is a folder", id="folder"),
    pytest.param("empty.wav", lambda p: (p.write_bytes(b""), p)[1], "empty file (0 bytes)", id="zero-bytes"),
    pytest.param("notes.wav", lambda p: (p.write_text("Agenda:\n1. budget\n2. hiring\n" * 20), p)[1],
                 "not a readable audio file", id="text-named-wav"),
    pytest.param("header_only.wav", zero_frame_wav, "zero-length", id="zero-frames-wav"),
    pytest.param("noise.mp3", lambda p: (p.write_bytes(np.random.default_rng(7).bytes(5000)), p)[1],
                 "not a readable audio file", id="random-bytes-mp3"),
    pytest.param("noise.m4a", lambda p: (p.write_bytes(np.random.default_rng(8).bytes(5000)), p)[1],
                 "not a readable audio file", id="random-bytes-m4a"),
    pytest.param("nan.wav", nan_wav, "NaN", id="nan-float-wav"),
    pytest.param("inf.wav", inf_wav, "inf", id="inf-float-wav"),
]


@pytest.mark.parametrize(("name", "make", "reason"), BAD_INPUTS)
def test_bad_input_raises_audio_error_with_a_one_line_reason(tmp_path: Path, name: str, make, reason: str) -> None:
    path = make(tmp_path / name)
    with pytest.raises(AudioError) as info:
        load_audio(path)
    message = str(info.value)
    assert reason in message
    assert "\n" not in message and message.strip() == message and message
    assert name not in message  # the caller (the CLI) prefixes the path; it must not appear twice


def test_audio_error_is_a_value_error() -> None:
    assert issubclass(AudioError, ValueError)


def test_absurd_sample_rate_in_header_is_an_audio_error(tmp_path: Path) -> None:
    """A corrupt rate field (1.04 GHz) once made torchaudio try a 66 TB allocation (RuntimeError)."""
    buf = io.BytesIO()
    sf.write(buf, tone(16000, 0.25), 16000, format="WAV", subtype="PCM_16")
    data = bytearray(buf.getvalue())
    assert data[24:28] == struct.pack("<I", 16000)
    data[24:28] = struct.pack("<I", 1_040_203_343)
    path = tmp_path / "bad_rate.wav"
    path.write_bytes(bytes(data))
    with pytest.raises(AudioError):
        load_audio(path)


def test_missing_ffmpeg_gives_a_clear_audio_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.m4a"
    path.write_bytes(b"\x00" * 100)
    monkeypatch.setattr("minutes.audio.shutil.which", lambda name: None)
    with pytest.raises(AudioError, match="ffmpeg is not installed"):
        load_audio(path)


# -------------------------------------------------------------------------------------------- fuzz


def test_fuzzed_wav_headers_never_raise_anything_but_audio_error(tmp_path: Path) -> None:
    buf = io.BytesIO()
    sf.write(buf, tone(16000, 0.25, 440.0, amp=0.3), 16000, format="WAV", subtype="PCM_16")
    base = buf.getvalue()
    outcomes = {"audio": 0, "error": 0}
    for seed in range(30):
        rng = np.random.default_rng(seed)
        data = bytearray(base)
        for _ in range(int(rng.integers(1, 5))):  # 1-4 random bytes of the 44-byte header
            data[int(rng.integers(0, 44))] = int(rng.integers(0, 256))
        path = tmp_path / f"fuzz_{seed}.wav"
        path.write_bytes(bytes(data))
        try:
            audio = load_audio(path)
        except AudioError as error:
            assert str(error) and "\n" not in str(error), seed
            outcomes["error"] += 1
        else:  # any other exception type fails the test with its seed in the traceback
            assert isinstance(audio, np.ndarray) and audio.dtype == np.float32 and audio.ndim == 1, seed
            assert audio.size > 0 and np.isfinite(audio).all(), seed
            outcomes["audio"] += 1
    assert outcomes["audio"] + outcomes["error"] == 30
    assert outcomes["error"] > 0  # the mutations do break some headers
