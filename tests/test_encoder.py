"""The frozen Whisper-encoder front end: frame counts, window limits and packed extraction."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from acoustic.data import Utterance, load_features
from acoustic.encoder import WhisperEncoder, whisper_log_mel
from acoustic.features import FeatureConfig
from acoustic.frontend import make_frontend
from tests.conftest import make_speech_like


@pytest.fixture(scope="module")
def encoder() -> WhisperEncoder:
    return WhisperEncoder(threads=1)


def test_log_mel_window_shape_and_range(encoder):
    mel = whisper_log_mel(make_speech_like(2.0), encoder._filters)
    assert mel.shape == (80, 3000)
    assert mel.max() - mel.min() <= 2.0 + 1e-5  # Whisper clamps to 8 log10 units, then divides by 4


def test_encoder_frames_follow_audio_length(encoder):
    audio = [make_speech_like(3.0), make_speech_like(1.01, seed=1)]
    states = encoder.encode(audio)
    assert [s.shape for s in states] == [(150, 384), (51, 384)]
    assert all(torch.isfinite(s).all() for s in states)
    with pytest.raises(ValueError, match="at most 30 s"):
        encoder.encode([np.zeros(31 * 16000, np.float32)])


def test_frontend_dispatch():
    feats = make_frontend(FeatureConfig(kind="whisper-encoder"))(make_speech_like(2.0))
    assert feats.shape == (100, 384)
    assert make_frontend(FeatureConfig())(make_speech_like(2.0)).shape == (201, 80)
    with pytest.raises(ValueError, match="logmel, whisper-encoder"):
        FeatureConfig(kind="mfcc")


def test_packed_extraction_gives_each_utterance_its_frames(tmp_path):
    utterances = []
    for i, seconds in enumerate([2.0, 7.3, 12.0, 9.9, 0.5]):  # 31.7 s in all: two windows
        path = tmp_path / f"u{i}.wav"
        sf.write(path, make_speech_like(seconds, seed=i), 16000)
        utterances.append(Utterance(path, "x", "s", seconds))
    feats = load_features(utterances, FeatureConfig(kind="whisper-encoder"), None, workers=1)
    assert [f.shape[0] for f in feats] == [100, 365, 600, 495, 25]
    assert all(f.dtype == torch.float16 and f.shape[1] == 384 for f in feats)
