"""Shared fixtures: a tiny randomly initialised acoustic model and a short non-silent WAV."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from acoustic.checkpoint import save_model
from acoustic.features import FeatureConfig, SAMPLE_RATE
from acoustic.model import BiLSTMCTC, ModelDims
from lm.rnnlm import CharRNNLM, LMDims, save_lm
from lm.vocab import CharVocab

# Tests use tiny models: one intra-op thread is faster than two and avoids oversubscription.
torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def no_shipped_diarization(tmp_path_factory: pytest.TempPathFactory):
    """Tests never load the shipped diarization model unless they point at it themselves: `transcribe` runs
    without speakers (and warns) as on an install without models/diarization. Session-scoped, so module
    fixtures (test_e2e's sample run) see it too."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("minutes.speakers.DEFAULT_DIARIZATION", tmp_path_factory.getbasetemp() / "no-diarization")
        yield


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path to a small random BiLSTM-CTC checkpoint (hidden=16, 1 layer): fast to load and run."""
    torch.manual_seed(0)
    model = BiLSTMCTC(ModelDims(hidden=16, layers=1))
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_model(path, model, CharVocab(), FeatureConfig())
    save_lm(path.with_name("lm.pt"), CharRNNLM(LMDims(embed=8, hidden=16)))  # tiny_lm(): beside the model
    return path


def tiny_lm(model_path: Path) -> Path:
    """The tiny random language model written beside `tiny_model`."""
    return model_path.with_name("lm.pt")


def make_speech_like(seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    """Seeded noise bursts (syllable-like 80-250 ms bursts with short gaps), float32 in [-1, 1]."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    audio = np.zeros(n, dtype=np.float32)
    pos = int(0.1 * SAMPLE_RATE)
    while pos < n:
        length = min(int(rng.uniform(0.08, 0.25) * SAMPLE_RATE), n - pos)
        envelope = np.hanning(length).astype(np.float32)
        audio[pos:pos + length] = 0.3 * envelope * rng.standard_normal(length).astype(np.float32)
        pos += length + int(rng.uniform(0.03, 0.2) * SAMPLE_RATE)
    return np.clip(audio, -1.0, 1.0)


@pytest.fixture
def speech_like_wav(tmp_path: Path) -> Path:
    """A 3 s, 16 kHz, 16-bit mono WAV of seeded noise bursts (not silent)."""
    path = tmp_path / "speech.wav"
    sf.write(path, make_speech_like(), SAMPLE_RATE, subtype="PCM_16")
    return path
