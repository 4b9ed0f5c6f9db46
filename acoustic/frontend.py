"""Front ends behind one call: audio (n,) float32 16 kHz, at most 30 s -> features (frames, dim)."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from acoustic.features import FeatureConfig, LogMel

Frontend = Callable[[np.ndarray], torch.Tensor]
MAX_WINDOW_S = 30.0  # longest audio one front-end call takes (the Whisper encoder's window)


def make_frontend(config: FeatureConfig, threads: int = 1) -> Frontend:
    if config.kind == "whisper-encoder":
        from acoustic.encoder import WhisperEncoder

        encoder = WhisperEncoder(threads=threads)
        return lambda audio: encoder.encode([audio])[0]
    log_mel = LogMel(config)
    return lambda audio: log_mel(torch.from_numpy(np.ascontiguousarray(audio))[None])[0]
