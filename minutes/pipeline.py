"""The offline pipeline: 16 kHz audio -> chunks cut on pauses -> BiLSTM-CTC -> decoded words with times -> Minutes."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from acoustic.checkpoint import load_model
from acoustic.features import SAMPLE_RATE, frames_to_seconds
from acoustic.frontend import MAX_WINDOW_S, make_frontend
from lm.align import align_words
from lm.beam import BeamOptions, beam_search, hotword_tables
from lm.decode import greedy_ids
from lm.rnnlm import load_lm
from lm.vocab import CharVocab
from minutes.model import Minutes, Word
from minutes.segmenting import cut_points, split_on_pauses

MODELS = Path(__file__).resolve().parent.parent / "models"
DEFAULT_MODEL = MODELS / "default" / "model.pt"
DEFAULT_LM = MODELS / "lm" / "model.pt"
DECODERS = ("beam", "greedy")
# Beam defaults tuned on so762-tune, hotword bonus on bench/hotwords.py (see bench/RESULTS.md).
DEFAULT_BEAM = BeamOptions(beam=16, lm_weight=2.0, word_bonus=3.0)
DEFAULT_HOTWORD_BONUS = 50.0
Hook = Callable[..., None]


class SilentAudioError(ValueError):
    """Audio with no signal at all (digital silence)."""


@dataclass(frozen=True)
class TranscribeOptions:
    decoder: str = "beam"
    beam: BeamOptions = DEFAULT_BEAM
    hotwords: tuple[tuple[str, float], ...] = ()  # (word, log-domain bonus)
    max_chunk_s: float = 30.0  # long audio is decoded in windows of at most this length, cut at pauses
    pause_s: float = 0.5  # a gap between words at least this long starts a new segment
    max_segment_s: float = 20.0

    def __post_init__(self) -> None:
        if self.decoder not in DECODERS:
            raise ValueError(f"unknown decoder {self.decoder!r}; choose one of: {', '.join(DECODERS)}")
        if self.hotwords and self.decoder != "beam":
            raise ValueError("hotwords need the beam decoder (--decoder beam)")
        hotword_tables(dict(self.hotwords), CharVocab())
        if not 5.0 <= self.max_chunk_s <= MAX_WINDOW_S:
            raise ValueError(f"max_chunk_s must be between 5 and {MAX_WINDOW_S:.0f} seconds")
        if self.pause_s <= 0 or self.max_segment_s <= 0:
            raise ValueError("pause_s and max_segment_s must be positive")


class Transcriber:
    """A loaded acoustic model (and LM for beam decoding) with options; `transcribe` turns audio into Minutes."""

    def __init__(self, model_path: Path, options: TranscribeOptions, lm_path: Path | None = None) -> None:
        self.model, self.vocab, feature_config, checkpoint = load_model(model_path)
        self.frontend = make_frontend(feature_config, threads=torch.get_num_threads())
        self.options = options
        self.lm = load_lm(lm_path)[0] if options.decoder == "beam" and lm_path else None
        self.name = str(checkpoint.get("name") or model_path.stem)
        self.stride = self.model.dims.stack * feature_config.frame_hops  # output frame = stride hops

    @classmethod
    def load(cls, model_path: str | Path | None = None, decoder: str = "beam", lm_path: str | Path | None = None,
             beam: BeamOptions | None = None, hotwords: dict[str, float] | None = None) -> "Transcriber":
        """The shipped (or given) acoustic model; beam decoding uses the shipped LM unless `lm_path` is given."""
        path = Path(model_path or os.environ.get("MINUTES_MODEL") or DEFAULT_MODEL)
        options = TranscribeOptions(decoder=decoder, beam=beam or DEFAULT_BEAM,
                                    hotwords=tuple((hotwords or {}).items()))
        return cls(path, options, Path(lm_path) if lm_path else DEFAULT_LM)

    def transcribe(self, audio: np.ndarray, source: str = "", hook: Hook | None = None,
                   date: str | None = None) -> Minutes:
        """Float32 mono 16 kHz samples (n,) -> Minutes; `hook(step, completed=, total=)` reports progress."""
        if audio.size == 0 or float(np.abs(audio).max()) < 1e-4:
            raise SilentAudioError("audio is silent: nothing to transcribe")
        cuts = cut_points(audio, int(self.options.max_chunk_s * SAMPLE_RATE))
        words: list[Word] = []
        for index, (begin, end) in enumerate(zip(cuts[:-1], cuts[1:])):
            words.extend(self._decode_chunk(audio[begin:end], begin / SAMPLE_RATE))
            if hook:
                hook("transcribe", completed=index + 1, total=len(cuts) - 1)
        segments = split_on_pauses(words, self.options.pause_s, self.options.max_segment_s)
        return Minutes(source=source, duration=audio.size / SAMPLE_RATE, model=self.name,
                       segments=tuple(segments), date=date)

    def emissions(self, chunk: np.ndarray) -> torch.Tensor:
        """Log-probs (T, vocab) of one chunk of at most max_chunk_s seconds."""
        with torch.inference_mode():
            feats = self.frontend(chunk)[None]  # (1, frames, dim)
            return self.model(feats, torch.tensor([feats.shape[1]]))[0][0]

    def decode(self, log_probs: torch.Tensor) -> str:
        """Text of one chunk's log-probs (T, vocab) with the configured decoder."""
        if self.options.decoder == "greedy":
            return self.vocab.decode(greedy_ids(log_probs, self.vocab.blank))
        with torch.inference_mode():
            return beam_search(log_probs, self.vocab, self.lm, self.options.beam,
                               dict(self.options.hotwords))[0].text

    def _decode_chunk(self, chunk: np.ndarray, offset: float) -> list[Word]:
        log_probs = self.emissions(chunk)
        text = " ".join(self.decode(log_probs).split())
        last = chunk.size / SAMPLE_RATE
        return [Word(w.word, offset + min(frames_to_seconds(w.start_frame, self.stride), last),
                     offset + min(frames_to_seconds(w.end_frame, self.stride), last), round(w.confidence, 4))
                for w in align_words(log_probs, text, self.vocab)]
