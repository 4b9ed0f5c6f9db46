"""Damaged files never crash the loaders: whatever bytes a header holds, load_audio and stream_audio either
give finite float32 16 kHz audio or raise AudioError (one line), nothing else."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minutes.audio import AudioError, load_audio, stream_audio

_RNG = np.random.default_rng(0)
_AUDIO = (0.3 * _RNG.standard_normal(4000)).astype(np.float32)


def _encoded(format: str, subtype: str, rate: int = 16000) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, _AUDIO, rate, format=format, subtype=subtype)
    return buffer.getvalue()


SEEDS = {"wav": _encoded("WAV", "PCM_16"), "flac": _encoded("FLAC", "PCM_16"),
         "ogg": _encoded("OGG", "VORBIS", 22050), "aiff": _encoded("AIFF", "PCM_16", 8000)}
FUZZ = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def check(path: Path) -> None:
    """Both loaders on `path`: audio that is usable, or AudioError with a one-line message."""
    try:
        audio = load_audio(path)
        assert audio.dtype == np.float32 and audio.ndim == 1 and np.isfinite(audio).all()
    except AudioError as error:
        assert str(error) and "\n" not in str(error)
    try:
        _, blocks = stream_audio(path)
        for block in blocks:
            assert block.dtype == np.float32 and block.ndim == 1 and np.isfinite(block).all()
    except AudioError as error:
        assert str(error) and "\n" not in str(error)


@FUZZ
@given(kind=st.sampled_from(sorted(SEEDS)), edits=st.lists(st.tuples(st.integers(0, 63), st.integers(0, 255)),
                                                           min_size=1, max_size=8))
def test_damaged_headers(tmp_path_factory, kind: str, edits: list[tuple[int, int]]) -> None:
    data = bytearray(SEEDS[kind])
    for offset, value in edits:
        data[offset] = value
    path = tmp_path_factory.mktemp("fuzz") / f"damaged.{kind}"
    path.write_bytes(bytes(data))
    check(path)


def test_header_claiming_billions_of_frames(tmp_path) -> None:
    """A FLAC header whose total-samples field was damaged (found by the fuzzer: 8.6 G frames) is read for what
    is there, not allocated for what the header claims (that was a 32 GiB MemoryError)."""
    data = bytearray(SEEDS["flac"])
    data[21] = 114
    path = tmp_path / "damaged.flac"
    path.write_bytes(bytes(data))
    assert sf.info(str(path)).frames > 10**9
    check(path)


@FUZZ
@given(kind=st.sampled_from(sorted(SEEDS)), keep=st.floats(0.0, 1.0))
def test_truncated_files(tmp_path_factory, kind: str, keep: float) -> None:
    data = SEEDS[kind]
    path = tmp_path_factory.mktemp("fuzz") / f"cut.{kind}"
    path.write_bytes(data[: int(len(data) * keep)])
    check(path)


@FUZZ
@given(data=st.binary(min_size=0, max_size=512), suffix=st.sampled_from([".wav", ".flac", ".mp3", ".m4a", ".opus"]))
def test_random_bytes(tmp_path_factory, data: bytes, suffix: str) -> None:
    path = tmp_path_factory.mktemp("fuzz") / f"random{suffix}"
    path.write_bytes(data)
    check(path)


@pytest.mark.parametrize("kind", sorted(SEEDS))
def test_intact_seeds_load(tmp_path, kind: str) -> None:
    """The seeds themselves are good audio (so the fuzzing starts from files the loaders accept)."""
    path = tmp_path / f"good.{kind}"
    path.write_bytes(SEEDS[kind])
    audio = load_audio(path)
    _, blocks = stream_audio(path)
    streamed = np.concatenate(list(blocks))
    assert audio.size > 0 and abs(streamed.size - audio.size) <= 0.03 * 16000
