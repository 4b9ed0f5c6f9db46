"""Streaming: LC-BLSTM exactness and state carry, incremental log-mel, the multi-stream engine (streams
joining and leaving), the streaming decoder's partial/final events and endpointing, and `--stream`."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from acoustic.checkpoint import load_model
from acoustic.engine import AcousticEngine
from acoustic.features import FeatureConfig, LogMel
from acoustic.model import BiLSTMCTC, ModelDims
from acoustic.streaming import ChunkConfig, StreamingLogMel, chunked_forward, initial_state, step
from acoustic.train import compute_loss
from lm.rnnlm import load_lm
from lm.stream_beam import EndpointOptions, StreamDecoder, accept_many
from lm.vocab import CharVocab
from minutes.cli import main
from minutes.streaming import StreamingEngine, StreamOptions, split_events
from tests.conftest import make_speech_like, tiny_lm

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def small_model(layers: int = 3, seed: int = 0) -> BiLSTMCTC:
    torch.manual_seed(seed)
    return BiLSTMCTC(ModelDims(hidden=8, layers=layers)).eval()


def stream_blocks(model: BiLSTMCTC, x: torch.Tensor, config: ChunkConfig) -> torch.Tensor:
    """Stacked inputs (1, T, D) through `step` one block at a time -> log-probs (T, V)."""
    state, out = initial_state(model, 1), []
    for begin in range(0, x.shape[1], config.chunk):
        look = x[:, begin + config.chunk:begin + config.chunk + config.lookahead]
        log_probs, state = step(model, x[:, begin:begin + config.chunk], look, torch.tensor([look.shape[1]]), state)
        out.append(log_probs[0])
    return torch.cat(out)


@pytest.mark.parametrize("layers", [1, 3])
def test_one_chunk_covering_the_utterance_equals_the_full_model(layers):
    model = small_model(layers)
    feats, lengths = torch.randn(2, 90, 80), torch.tensor([90, 50])
    full, out_lengths = model(feats, lengths)
    chunked, chunked_lengths = chunked_forward(model, feats, lengths, ChunkConfig(chunk=30, lookahead=5))
    assert torch.equal(out_lengths, chunked_lengths)
    assert torch.allclose(full[0], chunked[0], atol=1e-5)
    assert torch.allclose(full[1, :17], chunked[1, :17], atol=1e-5)  # the padded row too


@pytest.mark.parametrize("config", [ChunkConfig(4, 2), ChunkConfig(5, 0), ChunkConfig(7, 3)])
def test_streamed_blocks_equal_the_chunked_forward_and_differ_from_full(config):
    model = small_model()
    feats = torch.randn(1, 100, 80)
    chunked, _ = chunked_forward(model, feats, torch.tensor([100]), config)
    streamed = stream_blocks(model, model.stack_frames(feats), config)
    assert torch.allclose(chunked[0], streamed, atol=1e-5)
    full, _ = model(feats, torch.tensor([100]))
    assert not torch.allclose(full, chunked, atol=1e-3)  # a short chunk does lose future context


def test_chunked_rows_do_not_depend_on_batch_padding():
    model = small_model()
    short = torch.randn(1, 42, 80)  # 14 whole steps: the padding never shares a step with real frames
    alone, _ = chunked_forward(model, short, torch.tensor([42]), ChunkConfig(3, 2))
    batch = torch.cat([torch.cat([short, torch.randn(1, 48, 80)], 1), torch.randn(1, 90, 80)])
    batched, _ = chunked_forward(model, batch, torch.tensor([42, 90]), ChunkConfig(3, 2))
    assert torch.allclose(alone[0], batched[0, :14], atol=1e-5)


def test_chunked_training_loss_has_gradients():
    model = small_model().train()
    loss = compute_loss(model, torch.randn(2, 60, 80), torch.tensor([60, 45]), [[1, 2, 3], [4, 5]], ChunkConfig(4, 2))
    loss.backward()
    assert math.isfinite(loss.item())
    assert model.lstm.weight_hh_l2_reverse.grad.abs().sum() > 0


def test_chunk_config_from_seconds_and_validation():
    assert ChunkConfig.from_seconds(0.03) == ChunkConfig(21, 11)
    assert ChunkConfig.from_seconds(0.02, 0.64, 0.32) == ChunkConfig(32, 16)
    with pytest.raises(ValueError, match="chunk must be"):
        ChunkConfig(0, 1)


@pytest.mark.parametrize("blocks", [[160] * 200, [1, 7, 200, 3333, 5000, 40000], [32000]])
def test_streaming_log_mel_equals_log_mel(blocks):
    audio = make_speech_like(2.0, seed=1)
    expected = LogMel()(torch.from_numpy(audio)[None])[0]
    mel, frames, position = StreamingLogMel(), [], 0
    for size in blocks:
        frames.append(mel.accept(audio[position:position + size]))
        position += size
    frames += [mel.accept(audio[position:]), mel.flush()]
    got = torch.cat(frames)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-4)


def engine_log_probs(model_path, audio: np.ndarray, block: int, config: ChunkConfig) -> torch.Tensor:
    model, _, features, _ = load_model(model_path)
    engine = AcousticEngine(model, features, config)
    slot, out = engine.open(), []
    for begin in range(0, audio.size, block):
        engine.push(slot, audio[begin:begin + block])
        out += list(engine.step().values())
    return torch.cat(out + [engine.close(slot)])


def reference(model_path, audio: np.ndarray, config: ChunkConfig) -> torch.Tensor:
    model, _, features, _ = load_model(model_path)
    feats = LogMel(features)(torch.from_numpy(audio)[None])
    return chunked_forward(model, feats, torch.tensor([feats.shape[1]]), config)[0][0]


def test_engine_output_does_not_depend_on_block_size(tiny_model):
    audio, config = make_speech_like(2.5), ChunkConfig(5, 3)
    expected = reference(tiny_model, audio, config)
    for block in (160, 999, 16000, audio.size):
        assert torch.allclose(engine_log_probs(tiny_model, audio, block, config), expected, atol=1e-4)


def test_engine_streams_joining_and_leaving_match_each_stream_alone(tiny_model):
    model, _, features, _ = load_model(tiny_model)
    config = ChunkConfig(4, 2)
    engine = AcousticEngine(model, features, config, capacity=1)  # also grows its state tensors
    audios = [make_speech_like(s, seed=i) for i, s in enumerate((1.5, 3.0, 0.7, 2.2))]
    joins, blocks = (0, 0, 3, 6), (1600, 2400, 800, 4000)  # tick at which each stream opens, samples per tick
    slots, out, position = {}, {i: [] for i in range(4)}, [0] * 4
    for tick in range(40):
        for i in range(4):
            if tick == joins[i]:
                slots[i] = engine.open()
        for i, slot in slots.items():
            if position[i] < audios[i].size:
                engine.push(slot, audios[i][position[i]:position[i] + blocks[i]])
                position[i] += blocks[i]
        stepped = engine.step()
        for i, slot in list(slots.items()):
            if slot in stepped:
                out[i].append(stepped[slot])
            if position[i] >= audios[i].size:
                out[i].append(engine.close(slot))
                del slots[i]
    for i, audio in enumerate(audios):
        assert torch.allclose(torch.cat(out[i]), reference(tiny_model, audio, config), atol=1e-4)


def encoder_model(tmp_path) -> tuple[BiLSTMCTC, FeatureConfig]:
    torch.manual_seed(0)
    return BiLSTMCTC(ModelDims(n_input=384, hidden=8, layers=2, stack=1)).eval(), FeatureConfig(kind="whisper-encoder")


def encoder_engine_log_probs(model, features, audio: np.ndarray, config: ChunkConfig) -> torch.Tensor:
    engine = AcousticEngine(model, features, config)
    slot = engine.open()
    out = []
    for begin in range(0, audio.size, 4000):
        engine.push(slot, audio[begin:begin + 4000])
        out += list(engine.step().values())
    return torch.cat(out + [engine.close(slot)])


def test_encoder_engine_with_one_block_equals_the_offline_model(tmp_path):
    from acoustic.encoder import WhisperEncoder

    model, features = encoder_model(tmp_path)
    audio = make_speech_like(2.0)
    states = WhisperEncoder(threads=1).encode([audio])[0]
    expected = model(states[None], torch.tensor([states.shape[0]]))[0][0]
    got = encoder_engine_log_probs(model, features, audio, ChunkConfig(chunk=500, lookahead=0))
    assert torch.allclose(got, expected, atol=1e-4)


def test_encoder_engine_re_encodes_the_audio_heard_before_each_block(tmp_path):
    from acoustic.encoder import SAMPLES_PER_FRAME, WhisperEncoder

    model, features = encoder_model(tmp_path)
    audio, config, encoder = make_speech_like(1.6), ChunkConfig(chunk=25, lookahead=10), WhisperEncoder(threads=1)
    steps = -(-audio.size // SAMPLES_PER_FRAME)
    state, expected = initial_state(model, 1), []
    for begin in range(0, steps, config.chunk):
        end = begin + config.chunk + config.lookahead  # the states of this block, from the audio up to its end
        x = model.stack_frames(encoder.encode([audio[:end * SAMPLES_PER_FRAME]])[0][None, begin:end])
        log_probs, state = step(model, x[:, :config.chunk], x[:, config.chunk:],
                                torch.tensor([max(0, x.shape[1] - config.chunk)]), state)
        expected.append(log_probs[0])
    got = encoder_engine_log_probs(model, features, audio, config)
    assert got.shape == (steps, 29)
    assert torch.allclose(got, torch.cat(expected), atol=1e-4)


def spelled(vocab: CharVocab, text: str, silence_after: int) -> torch.Tensor:
    """Log-probs (T, V) that spell `text` (each character one frame, a blank between), then silence."""
    rows = []
    for char in text:
        rows += [vocab.symbols.index(char), vocab.blank]
    rows += [vocab.blank] * silence_after
    probs = torch.full((len(rows), len(vocab)), 0.001)
    probs[torch.arange(len(rows)), torch.tensor(rows)] = 1.0
    return (probs / probs.sum(1, keepdim=True)).log()


@pytest.mark.parametrize("greedy", [True, False])
def test_decoder_partials_then_a_final_at_the_endpoint(greedy):
    vocab = CharVocab()
    decoder = StreamDecoder(vocab, endpoint=EndpointOptions(endpoint_frames=6, max_frames=500), greedy=greedy)
    log_probs = torch.cat([spelled(vocab, "", 5), spelled(vocab, "hi yo", 10), spelled(vocab, "ok", 3)])
    events = [e for begin in range(0, len(log_probs), 4) for e in decoder.accept(log_probs[begin:begin + 4])]
    events += decoder.finish()
    finals = [e for e in events if e.final]
    assert [e.text for e in finals] == ["hi yo", "ok"]
    assert [w.word for w in finals[0].words] == ["hi", "yo"]
    assert finals[0].words[0].start_frame == 5  # leading silence skipped, frames counted from the stream start
    assert finals[1].words[0].start_frame == 5 + 10 + 10
    partials = [e.text for e in events if not e.final]
    assert partials[:3] == ["hi", "hi y", "hi yo"]  # one per 4-frame chunk once speech started


def test_decoder_events_do_not_depend_on_chunk_size(tiny_model):
    vocab, lm = CharVocab(), load_lm(tiny_lm(tiny_model))[0]
    torch.manual_seed(0)
    log_probs = torch.randn(120, len(vocab)).mul(3).log_softmax(-1)
    log_probs[40:70] = spelled(vocab, "", 30)  # a pause in the middle: an endpoint
    finals = []
    for size in (1, 7, 120):
        decoder = StreamDecoder(vocab, lm, endpoint=EndpointOptions(endpoint_frames=10, max_frames=500))
        events = [e for b in range(0, 120, size) for e in decoder.accept(log_probs[b:b + size])] + decoder.finish()
        finals.append([(e.text, e.words) for e in events if e.final])
    assert len(finals[0]) == 2 and finals[0] == finals[1] == finals[2]
    # the same streams decoded in lock-step, sharing LM calls: each stream's events as when alone
    decoders = [StreamDecoder(vocab, lm, endpoint=EndpointOptions(endpoint_frames=10, max_frames=500))
                for _ in range(3)]
    streams = [log_probs, log_probs[30:], log_probs.flip(0)]
    together = [[], [], []]
    for b in range(0, 120, 25):
        for i, found in enumerate(accept_many(decoders, [s[b:b + 25] for s in streams])):
            together[i] += found
    for i, stream in enumerate(streams):
        alone = StreamDecoder(vocab, lm, endpoint=EndpointOptions(endpoint_frames=10, max_frames=500))
        expected = [e for b in range(0, 120, 25) for e in alone.accept(stream[b:b + 25])]
        assert [(e.final, e.text, e.words) for e in together[i]] == [(e.final, e.text, e.words) for e in expected]


def test_streaming_engine_events_and_transcribe(tiny_model):
    engine = StreamingEngine.load(tiny_model, decoder="beam", lm_path=tiny_lm(tiny_model),
                                  options=StreamOptions(endpoint_s=0.3))
    audio = make_speech_like(3.0)
    stream = engine.open_stream()
    events = [e for b in range(0, audio.size, 4000) for e in stream.feed(audio[b:b + 4000])]
    closing = stream.close()
    assert all(e.final for e in closing) and stream.close() == []
    events += closing
    with pytest.raises(ValueError, match="closed"):
        stream.feed(audio[:100])
    with pytest.raises(ValueError, match="mono"):
        engine.open_stream().feed(np.zeros((100, 2), dtype=np.float32))
    finals, partial = split_events(events)
    assert list(finals) == [e.segment for e in events if e.final]
    assert partial == next((e.segment for e in reversed(events) if not e.final), None)
    words = [w for s in finals for w in s.words]
    assert all(0 <= w.start <= w.end <= 3.0 for w in words)
    minutes = engine.transcribe(audio, source="x.wav")
    assert [w.word for s in minutes.segments for w in s.words] == [w.word for w in words]


def test_feed_many_batches_streams_like_single_feeds(tiny_model):
    engine = StreamingEngine.load(tiny_model, decoder="greedy", options=StreamOptions(endpoint_s=0.3))
    audios = [make_speech_like(2.0, seed=s) for s in (3, 4)]
    alone = []
    for audio in audios:
        stream = engine.open_stream()
        alone.append([e for b in range(0, audio.size, 3200) for e in stream.feed(audio[b:b + 3200])] + stream.close())
    streams = [engine.open_stream() for _ in audios]
    together = [[], []]
    for b in range(0, audios[0].size, 3200):
        for i, events in enumerate(engine.feed_many({s: a[b:b + 3200] for s, a in zip(streams, audios)}).values()):
            together[i] += events
    together = [t + s.close() for t, s in zip(together, streams)]
    assert together == alone


def test_transcribe_stream_cli(tiny_model, speech_like_wav, tmp_path, capsys):
    code = main(["transcribe", str(speech_like_wav), "--stream", "--model", str(tiny_model), "--lm",
                 str(tiny_lm(tiny_model)), "-o", str(tmp_path), "-f", "md,json", "--quiet", "--jobs", "1"])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "speech.md").read_text().startswith("# Minutes: speech")
    assert (tmp_path / "speech.json").is_file()


def test_transcribe_stream_cli_bad_model_is_one_line(tmp_path, speech_like_wav, capsys):
    model = tmp_path / "broken.pt"
    model.write_bytes(b"not a model")
    code = main(["transcribe", str(speech_like_wav), "--stream", "--model", str(model), "-o", str(tmp_path),
                 "--quiet", "--no-diarize"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("minutes: error:") and "Traceback" not in err


@requires_cuda
def test_engine_on_cuda_matches_cpu(tiny_model, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # TF32 LSTMs differ by more than 1e-3
    model, _, features, _ = load_model(tiny_model)
    audio, config = make_speech_like(2.0), ChunkConfig(5, 3)
    outs = []
    for device in ("cpu", "cuda"):
        engine = AcousticEngine(load_model(tiny_model)[0], features, config, device=device)
        slot = engine.open()
        engine.push(slot, audio)
        outs.append(torch.cat(list(engine.step().values()) + [engine.close(slot)]))
    assert torch.allclose(outs[0], outs[1], atol=1e-3)
