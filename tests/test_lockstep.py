"""The lock-step serving path: LockstepEngine exactness (streams joining and leaving, capacity growth, int16),
chunk-granular endpointing on constructed silence, batched greedy decoding, and the LockstepServer."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from acoustic.checkpoint import load_model
from acoustic.features import FeatureConfig, LogMel
from acoustic.lockstep import LockstepEngine
from acoustic.streaming import ChunkConfig, chunked_forward
from lm.batched_greedy import BatchedGreedy, ChunkEndpointer
from lm.decode import greedy_ids
from lm.stream_beam import EndpointOptions
from lm.vocab import CharVocab
from minutes.serving import LockstepServer
from tests.conftest import make_speech_like, tiny_lm

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CONFIG = ChunkConfig(4, 2)


def reference(model_path, audio: np.ndarray, config: ChunkConfig = CONFIG) -> torch.Tensor:
    model, _, features, _ = load_model(model_path)
    feats = LogMel(features)(torch.from_numpy(audio)[None])
    return chunked_forward(model, feats, torch.tensor([feats.shape[1]]), config)[0][0]


def whole_ticks(engine: LockstepEngine, seconds: float, seed: int) -> np.ndarray:
    audio = make_speech_like(seconds, seed=seed)
    return audio[:audio.size // engine.tick_samples * engine.tick_samples]


def test_streams_joining_and_leaving_match_each_stream_alone(tiny_model):
    model, _, features, _ = load_model(tiny_model)
    engine = LockstepEngine(model, features, CONFIG, capacity=1)  # grows its tensors as streams join
    audios = [whole_ticks(engine, s, i) for i, s in enumerate((1.5, 3.0, 0.7, 2.2))]
    joins = (0, 0, 3, 5)
    slots, out, ticks_done = {}, {i: [] for i in range(4)}, [0] * 4
    for tick in range(30):
        slots.update((i, int(engine.open()[0])) for i in range(4) if tick == joins[i])
        for i in [i for i in slots if ticks_done[i] * engine.tick_samples >= audios[i].size]:
            out[i].append(engine.close(slots.pop(i)))
        if not slots:
            continue
        order = sorted(slots)
        pcm = torch.from_numpy(np.stack([audios[i][ticks_done[i] * engine.tick_samples:]
                                         [:engine.tick_samples] for i in order]))
        stepped, log_probs = engine.tick(torch.tensor([slots[i] for i in order]), pcm)
        by_slot = dict(zip(stepped.tolist(), log_probs))
        for i in order:
            ticks_done[i] += 1
            if slots[i] in by_slot:
                out[i].append(by_slot[slots[i]])
    for i, audio in enumerate(audios):
        assert torch.allclose(torch.cat(out[i]), reference(tiny_model, audio), atol=1e-4)


def test_int16_audio_is_scaled(tiny_model):
    model, _, features, _ = load_model(tiny_model)
    outs = []
    for as_int in (False, True):
        engine = LockstepEngine(model, features, CONFIG)
        slot = engine.open()
        audio = whole_ticks(engine, 1.0, 3)
        pcm = torch.from_numpy(np.round(audio * 32767).astype(np.int16))
        pcm = pcm if as_int else pcm.float() / 32768.0
        ticks = [engine.tick(slot, pcm[None, i:i + engine.tick_samples])[1]
                 for i in range(0, audio.size, engine.tick_samples)]
        outs.append(torch.cat([t[0] for t in ticks if t.shape[0]] + [engine.close(int(slot[0]))]))
    assert torch.allclose(outs[0], outs[1], atol=1e-5)


def test_bad_input_is_refused(tiny_model):
    model, _, features, _ = load_model(tiny_model)
    engine = LockstepEngine(model, features, CONFIG)
    slots = engine.open(2)
    with pytest.raises(ValueError, match="audio must be"):
        engine.tick(slots, torch.zeros(2, engine.tick_samples + 1))
    engine.close(int(slots[0]))
    with pytest.raises(ValueError, match="not open"):
        engine.close(int(slots[0]))  # twice would hand the slot to two new streams
    with pytest.raises(ValueError, match="not open"):
        engine.tick(slots, torch.zeros(2, engine.tick_samples))
    with pytest.raises(ValueError, match="log-mel"):
        LockstepEngine(model, FeatureConfig(kind="whisper-encoder"), CONFIG)


def frames(pattern: str, vocab: CharVocab = CharVocab()) -> torch.Tensor:
    """Log-probs (T, V) spelling `pattern`: '_' is a certain blank frame, a letter a certain letter frame."""
    ids = [vocab.blank if c == "_" else vocab.symbols.index(c) for c in pattern]
    return torch.nn.functional.one_hot(torch.tensor(ids), len(vocab)).float().clamp(1e-6).log()


def test_endpoint_after_silence_following_speech():
    end = ChunkEndpointer(EndpointOptions(endpoint_frames=3, max_frames=100), 0, 2, "cpu")
    slots = torch.tensor([0, 1])
    # slot 0: leading silence, speech, then 3 silent frames -> ended; slot 1: only 2 silent frames
    chunk = torch.stack([frames("__ab___"), frames("ab__c__")])
    assert end.advance(slots, chunk).tolist() == [True, False]
    assert end.start.tolist() == [7, 0] and end.trailing.tolist() == [0, 2] and end.speech.tolist() == [False, True]
    # the next chunk: slot 1's run of silence continues across the chunk boundary
    assert end.advance(slots, torch.stack([frames("___a"), frames("_abc")])).tolist() == [False, True]
    assert end.start.tolist() == [10, 11] and end.speech.tolist() == [True, False]


def test_leading_silence_never_ends_a_segment_and_max_frames_cuts():
    end = ChunkEndpointer(EndpointOptions(endpoint_frames=2, max_frames=6), 0, 1, "cpu")
    slot = torch.tensor([0])
    assert not end.advance(slot, frames("____")[None]).any() and end.start.tolist() == [4]
    assert not end.advance(slot, frames("abab")[None]).any()
    assert end.advance(slot, frames("abab")[None]).tolist() == [True]  # 8 frames of speech > max_frames 6


def test_batched_greedy_merges_repeats_across_chunks_like_whole_decoding():
    vocab = CharVocab()
    torch.manual_seed(0)
    rows = torch.randn(3, 40, len(vocab)).log_softmax(-1)
    decoder = BatchedGreedy(vocab, 3, width=4)  # the text buffer must widen on the way
    slots = torch.tensor([2, 0, 1])
    for begin in range(0, 40, 7):
        decoder.advance(slots, rows[:, begin:begin + 7])
    assert decoder.best(slots) == [" ".join(vocab.decode(greedy_ids(r)).split()) for r in rows]


def test_batched_greedy_drops_leading_and_doubled_spaces_and_reports_growth():
    decoder = BatchedGreedy(CharVocab(), 2)
    slots = torch.tensor([0, 1])
    grew = decoder.advance(slots, torch.stack([frames(" _ a_  "), frames("______ ")]))
    assert grew.tolist() == [True, False] and decoder.best(slots) == ["a", ""]
    assert decoder.advance(slots, torch.stack([frames("_ b"), frames("c'd")])).tolist() == [True, True]
    assert decoder.best(slots) == ["a b", "c'd"]
    decoder.reset(torch.tensor([0]))  # a new segment: the old characters are not shown again
    assert decoder.advance(slots, torch.stack([frames("e__"), frames("___")])).tolist() == [True, False]
    assert decoder.finish(slots) == ["e", "c'd"]


def server_text(server: LockstepServer, audio: np.ndarray) -> tuple[str, list]:
    slot = server.open()
    updates = []
    for i in range(0, audio.size, server.tick_samples):
        updates += server.tick(slot, torch.from_numpy(audio[None, i:i + server.tick_samples]))
    updates += server.close(int(slot[0]))
    return "".join(" ".join(u.text for u in updates if u.final).split()), updates


@pytest.mark.parametrize("decoder", ["greedy", "beam"])
def test_server_finals_spell_what_the_model_hears(tiny_model, decoder):
    server = LockstepServer.load(tiny_model, decoder=decoder, lm_path=tiny_lm(tiny_model))
    audio = whole_ticks(server.engine, 4.0, 5)
    text, updates = server_text(server, audio)
    step_s = 0.03  # the last output step may start before the audio's end and end after it
    assert all(u.start <= u.end <= audio.size / 16000 + step_s + 1e-6 for u in updates)
    if decoder == "greedy":  # segmenting at silence only moves spaces
        expected = reference(tiny_model, audio, server.engine.chunks)
        assert text == "".join(CharVocab().decode(greedy_ids(expected)).split())
    assert [u.final for u in updates].count(True) >= 1


@requires_cuda
@pytest.mark.parametrize("decoder", ["greedy", "beam"])
def test_server_on_cuda_matches_cpu(tiny_model, monkeypatch, decoder):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # TF32 LSTMs could flip near-ties
    servers = [LockstepServer.load(tiny_model, decoder=decoder, lm_path=tiny_lm(tiny_model), device=device)
               for device in ("cpu", "cuda")]
    audio = whole_ticks(servers[0].engine, 3.0, 2)
    texts = [server_text(server, audio)[0] for server in servers]
    assert texts[0] == texts[1]
