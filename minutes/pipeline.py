"""The offline pipeline: 16 kHz audio -> chunks cut on pauses -> BiLSTM-CTC -> decoded words with times -> Minutes."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

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
from minutes.segmenting import sentence_cuts, split_on_pauses
from minutes.speech import SpeechTrack
from minutes.windows import Windows

MODELS = Path(__file__).resolve().parent.parent / "models"
DEFAULT_MODEL = MODELS / "default" / "model.pt"
DEFAULT_LM = MODELS / "lm" / "model.pt"
DECODERS = ("beam", "greedy")
# Beam defaults tuned on so762-tune, hotword bonus on bench/hotwords.py (see bench/RESULTS.md).
DEFAULT_BEAM = BeamOptions(beam=16, lm_weight=2.0, word_bonus=3.0)
DEFAULT_HOTWORD_BONUS = 50.0
Hook = Callable[..., None]
SILENCE_PEAK = 1e-4  # audio (or a window) whose peak stays below this is digital silence
CARRY_S = 0.25  # a word ending this close to a window's cut may have been split: decode it again
SENTENCE_SPEECH = 0.1  # a pause that ends a sentence: speech probability (1 - P(blank)) under this throughout


def resolve_model(model_path: str | Path | None = None) -> Path:
    """The acoustic model file used: the given one, else $MINUTES_MODEL, else the shipped default."""
    return Path(model_path or os.environ.get("MINUTES_MODEL") or DEFAULT_MODEL)


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
    # the beam decoder ends a sentence (the LM's </s>, then a fresh <s>) at a pause at least this long where the
    # speech probability stays under SENTENCE_SPEECH; None: a whole window is one sentence
    sentence_pause_s: float | None = 1.0

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
        if self.sentence_pause_s is not None and self.sentence_pause_s <= 0:
            raise ValueError("sentence_pause_s must be positive (or None)")


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
        path = resolve_model(model_path)
        options = TranscribeOptions(decoder=decoder, beam=beam or DEFAULT_BEAM,
                                    hotwords=tuple((hotwords or {}).items()))
        return cls(path, options, Path(lm_path) if lm_path else DEFAULT_LM)

    def transcribe(self, audio: np.ndarray, source: str = "", hook: Hook | None = None,
                   date: str | None = None, speech: SpeechTrack | None = None) -> Minutes:
        """Float32 mono 16 kHz samples (n,) -> Minutes; `hook(step, completed=, total=)` reports progress."""
        return self.transcribe_blocks([audio], source, hook, date, total_s=audio.size / SAMPLE_RATE, speech=speech)

    def speech_track(self) -> SpeechTrack:
        """An empty track at this model's output frame rate, for `transcribe_blocks(..., speech=)`."""
        return SpeechTrack(frames_to_seconds(1, self.stride))

    def speech_of(self, audio: np.ndarray) -> SpeechTrack:
        """The speech track of `audio` without decoding (for audio transcribed piecewise, e.g. a live recording):
        the acoustic model over consecutive windows of max_chunk_s."""
        track = self.speech_track()
        size = int(self.options.max_chunk_s * SAMPLE_RATE)
        for start in range(0, audio.size, size):
            window = audio[start: start + size]
            if window.size >= SAMPLE_RATE // 10 and float(np.abs(window).max()) >= SILENCE_PEAK:
                track.add(start / SAMPLE_RATE, self._speech_probs(self.emissions(window)), window.size / SAMPLE_RATE)
        return track

    def transcribe_blocks(self, blocks: Iterable[np.ndarray], source: str = "", hook: Hook | None = None,
                          date: str | None = None, total_s: float | None = None,
                          speech: SpeechTrack | None = None) -> Minutes:
        """Float32 mono 16 kHz sample blocks of any size (e.g. `stream_audio`) -> Minutes, in bounded memory.

        Windows of at most max_chunk_s are cut at pauses; a word that touches a cut is dropped and its audio
        carried into the next window, so no word is split. The result does not depend on the block sizes.
        `hook("transcribe", completed=seconds, total=total_s)` reports progress after each window. A `speech`
        track (from `speech_track()`) receives every window's speech probabilities (1 - P(blank)).
        """
        windows = Windows(blocks, int(self.options.max_chunk_s * SAMPLE_RATE))
        words: list[Word] = []
        for start, window in windows:
            if float(np.abs(window).max()) >= SILENCE_PEAK:  # digital silence has no words
                found = self._decode_chunk(window, start / SAMPLE_RATE, speech)
                words.extend(self._carry_over(windows, start, window.size, found))
            if hook:
                hook("transcribe", completed=(start + window.size) / SAMPLE_RATE, total=total_s)
        if windows.peak < SILENCE_PEAK:
            raise SilentAudioError("audio is silent: nothing to transcribe")
        segments = split_on_pauses(words, self.options.pause_s, self.options.max_segment_s)
        return Minutes(source=source, duration=windows.samples / SAMPLE_RATE, model=self.name,
                       segments=tuple(segments), date=date)

    def _carry_over(self, windows: Windows, start: int, size: int, words: list[Word]) -> list[Word]:
        """Words to keep from a window; if it was cut (more audio follows) and its last word reaches the cut,
        that word is dropped and the next window starts where it begins (after the word before it)."""
        last = words[-1] if words else None
        if windows.final or last is None or (start + size) / SAMPLE_RATE - last.end > CARRY_S \
                or last.start - start / SAMPLE_RATE < size / SAMPLE_RATE / 2:
            return words
        resume_s = max(last.start - CARRY_S, words[-2].end if len(words) > 1 else start / SAMPLE_RATE)
        windows.carry_from(max(start + 1, int(round(resume_s * SAMPLE_RATE))))
        return words[:-1]

    def emissions(self, chunk: np.ndarray) -> torch.Tensor:
        """Log-probs (T, vocab) of one chunk of at most max_chunk_s seconds."""
        with torch.inference_mode():
            feats = self.frontend(chunk)[None]  # (1, frames, dim)
            return self.model(feats, torch.tensor([feats.shape[1]]))[0][0]

    def _speech_probs(self, log_probs: torch.Tensor) -> np.ndarray:
        """1 - P(blank) of each frame of one chunk's log-probs (T, vocab)."""
        return 1.0 - log_probs[:, self.vocab.blank].exp().numpy()

    def decode(self, log_probs: torch.Tensor) -> str:
        """Text of one chunk's log-probs (T, vocab) with the configured decoder; the beam decoder takes each
        stretch between long pauses (`sentence_pause_s`) as a sentence of its own."""
        if self.options.decoder == "greedy":
            return self.vocab.decode(greedy_ids(log_probs, self.vocab.blank))
        cuts = [0, len(log_probs)]
        if self.options.sentence_pause_s is not None:
            cuts = sentence_cuts(self._speech_probs(log_probs) < SENTENCE_SPEECH,
                                 max(1, round(self.options.sentence_pause_s / frames_to_seconds(1, self.stride))))
        with torch.inference_mode():
            return " ".join(beam_search(log_probs[a:b], self.vocab, self.lm, self.options.beam,
                                        dict(self.options.hotwords))[0].text for a, b in zip(cuts[:-1], cuts[1:]))

    def _decode_chunk(self, chunk: np.ndarray, offset: float, speech: SpeechTrack | None = None) -> list[Word]:
        log_probs = self.emissions(chunk)
        if speech is not None:
            speech.add(offset, self._speech_probs(log_probs), chunk.size / SAMPLE_RATE)
        text = " ".join(self.decode(log_probs).split())
        last = chunk.size / SAMPLE_RATE
        return [Word(w.word, offset + min(frames_to_seconds(w.start_frame, self.stride), last),
                     offset + min(frames_to_seconds(w.end_frame, self.stride), last), round(w.confidence, 4))
                for w in align_words(log_probs, text, self.vocab)]
