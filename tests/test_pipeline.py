"""The offline pipeline: chunking on pauses, segmentation, decoders and option validation."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lm.beam import BeamOptions
from minutes.model import Word
from minutes.pipeline import SilentAudioError, Transcriber, TranscribeOptions
from minutes.segmenting import cut_points, sentence_cuts, split_on_pauses
from tests.conftest import make_speech_like, tiny_lm


class BeamText:
    def __init__(self, text: str) -> None:
        self.text = text


def test_cut_points_fall_in_pauses():
    rng = np.random.default_rng(0)
    audio = np.concatenate([0.3 * rng.standard_normal(16000 * 7), np.zeros(8000),  # a pause at 7.0-7.5 s
                            0.3 * rng.standard_normal(16000 * 7)]).astype(np.float32)
    cuts = cut_points(audio, 10 * 16000)
    assert cuts[0] == 0 and cuts[-1] == audio.size and len(cuts) == 3
    assert 7.0 * 16000 <= cuts[1] <= 7.5 * 16000
    assert all(b - a <= 10 * 16000 for a, b in zip(cuts[:-1], cuts[1:]))


def test_split_on_pauses_and_length():
    words = [Word("a", 0.0, 0.3, 0.9), Word("b", 0.4, 0.6, 0.9), Word("c", 1.5, 1.8, 0.9),
             Word("d", 1.9, 25.0, 0.9)]
    segments = split_on_pauses(words, pause_s=0.5, max_segment_s=20.0)
    assert [s.text for s in segments] == ["a b", "c", "d"]
    assert (segments[0].start, segments[0].end) == (0.0, 0.6)


def test_sentence_cuts_at_long_pauses_between_speech():
    pause = np.zeros(100, dtype=bool)
    pause[:10] = pause[90:] = True   # leading and trailing silence: no sentence before or after it
    pause[30:34] = True              # too short
    pause[50:60] = True              # a sentence end, cut in its middle
    assert sentence_cuts(pause, min_frames=5) == [0, 55, 100]
    assert sentence_cuts(pause, min_frames=3) == [0, 32, 55, 100]
    assert sentence_cuts(np.ones(7, dtype=bool), min_frames=1) == [0, 7]


@pytest.mark.parametrize("sentence_pause_s, sentences", [(None, 1), (1.0, 2), (5.0, 1)])
def test_beam_decodes_each_sentence_on_its_own(tiny_model, monkeypatch, sentence_pause_s, sentences):
    """The LM starts a new sentence after a long pause: beam search runs once per stretch between pauses."""
    from minutes import pipeline

    transcriber = Transcriber(tiny_model, TranscribeOptions(beam=BeamOptions(beam=4),
                                                            sentence_pause_s=sentence_pause_s), tiny_lm(tiny_model))
    pause = round(2.0 / pipeline.frames_to_seconds(1, transcriber.stride))  # frames of a 2 s pause
    log_probs = torch.full((20 + pause + 20, len(transcriber.vocab)), -20.0)
    log_probs[:, 1] = 0.0                                                    # speech, ...
    log_probs[20: 20 + pause, 1], log_probs[20: 20 + pause, transcriber.vocab.blank] = -20.0, 0.0  # ... a pause, speech
    seen = []
    monkeypatch.setattr(pipeline, "beam_search", lambda lp, *args: seen.append(len(lp)) or [BeamText("x")])
    assert transcriber.decode(log_probs) == " ".join(["x"] * sentences)
    assert seen == ([len(log_probs)] if sentences == 1 else [20 + pause // 2, len(log_probs) - 20 - pause // 2])


@pytest.mark.parametrize("decoder", ["greedy", "beam"])
def test_long_audio_is_chunked_with_monotonic_times(tiny_model, decoder):
    transcriber = Transcriber.load(tiny_model, decoder=decoder, lm_path=tiny_lm(tiny_model),
                                   beam=BeamOptions(beam=4))
    audio = make_speech_like(41.0)
    ticks = []
    minutes = transcriber.transcribe(audio, source="long.wav",
                                     hook=lambda step, completed, total: ticks.append((completed, total)))
    # progress in seconds of audio: a first window cut in the last third of 30 s, then the rest
    assert len(ticks) == 2 and 20.0 <= ticks[0][0] <= 30.0 and ticks[1] == (41.0, 41.0) and ticks[0][1] == 41.0
    assert minutes.duration == pytest.approx(41.0)
    words = [w for s in minutes.segments for w in s.words]
    assert [w.start for w in words] == sorted(w.start for w in words)
    assert all(0 <= w.start <= w.end <= 41.0 for w in words)


def test_silence_is_refused(tiny_model):
    transcriber = Transcriber.load(tiny_model, decoder="greedy")
    with pytest.raises(SilentAudioError, match="silent"):
        transcriber.transcribe(np.zeros(16000, np.float32))


@pytest.mark.parametrize("kwargs, message", [
    ({"decoder": "viterbi"}, "choose one of: beam, greedy"),
    ({"max_chunk_s": 60.0}, "between 5 and 30"),
    ({"decoder": "greedy", "hotwords": (("anna", 5.0),)}, "hotwords need the beam decoder"),
    ({"pause_s": 0.0}, "positive"),
    ({"sentence_pause_s": 0.0}, "sentence_pause_s must be positive"),
])
def test_option_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TranscribeOptions(**kwargs)
