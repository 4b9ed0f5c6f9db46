"""Latency-controlled BiLSTM (LC-BLSTM, Zhang et al. 2016; Xue & Yan 2017) and incremental log-mel.

The model's output steps (one per `stack` feature frames) are cut into chunks of `chunk` steps, each seen
with `lookahead` more steps of the future. In every layer, for every block (chunk + look-ahead):

- the forward LSTM runs over the chunk from the state it had at the end of the previous chunk, and that
  state is carried on; it then continues over the look-ahead steps, but that state is thrown away;
- the backward LSTM runs over chunk + look-ahead from a zero state;
- the layer's outputs at the look-ahead steps (forward from the chunk's end, backward from the block's
  end) are the next layer's look-ahead inputs, so every layer sees exactly `lookahead` future steps and the
  latency does not grow with depth. Look-ahead outputs are recomputed as part of the next chunk.

`chunked_forward` runs whole (batches of) utterances this way, batching all blocks of a layer into one
backward call (training and offline evaluation); `step` advances many streams by one block each with
carried state (`StreamState`); both give the same numbers. With `chunk` >= the utterance length there is one
block, and the result equals the ordinary bidirectional forward.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torchaudio

from acoustic.features import HOP_LENGTH, FeatureConfig
from acoustic.model import BiLSTMCTC

State = tuple[torch.Tensor, torch.Tensor]  # (h, c), each (layers, streams, hidden)


@dataclass(frozen=True)
class ChunkConfig:
    """Chunk and look-ahead sizes in output steps of the model (stack * frame_hops * 10 ms each)."""

    chunk: int = 21  # 0.63 s for the log-mel model (30 ms steps)
    lookahead: int = 11  # 0.33 s

    def __post_init__(self) -> None:
        if isinstance(self.chunk, bool) or self.chunk < 1 or self.lookahead < 0:
            raise ValueError(f"chunk must be >= 1 and lookahead >= 0 steps; got {self.chunk}, {self.lookahead}")

    @classmethod
    def from_seconds(cls, step_s: float, chunk_s: float = 0.64, lookahead_s: float = 0.32) -> "ChunkConfig":
        """Nearest whole steps of `step_s` seconds (at least one step of chunk)."""
        if chunk_s <= 0 or lookahead_s < 0:
            raise ValueError("chunk_s must be positive and lookahead_s not negative")
        return cls(max(1, round(chunk_s / step_s)), round(lookahead_s / step_s))


def _weights(model: BiLSTMCTC, layer: int, reverse: bool) -> list[torch.Tensor]:
    suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    lstm = model.lstm
    return [getattr(lstm, f"{name}{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


def _run(weights: list[torch.Tensor], x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
    """One unidirectional LSTM layer: x (N, T, D), state (1, N, H) each -> outputs (N, T, H), final state."""
    out, h, c = torch.lstm(x, state, weights, True, 1, 0.0, torch.is_grad_enabled(), False, True)  # train: cuDNN keeps what backward needs
    return out, (h, c)


def _zeros(n: int, model: BiLSTMCTC, like: torch.Tensor) -> State:
    zero = like.new_zeros(1, n, model.dims.hidden)
    return zero, zero


def _reverse(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse the first lengths[i] steps of each row of x (N, T, D); padding stays at the end."""
    steps = torch.arange(x.shape[1], device=x.device)[None]  # (1, T)
    index = lengths.to(x.device)[:, None] - 1 - steps
    index = torch.where(index >= 0, index, steps)  # (N, T)
    return x.gather(1, index[..., None].expand_as(x))


def _backward(model: BiLSTMCTC, layer: int, blocks: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Backward direction over blocks (N, T, D) of lengths (N,) from a zero state -> (N, T, H)."""
    out, _ = _run(_weights(model, layer, True), _reverse(blocks, lengths), _zeros(blocks.shape[0], model, blocks))
    return _reverse(out, lengths)


def _dropout(model: BiLSTMCTC, x: torch.Tensor, layer: int) -> torch.Tensor:
    """nn.LSTM's dropout between layers (none after the last)."""
    if layer == model.dims.layers - 1 or not model.training:
        return x
    return torch.nn.functional.dropout(x, model.lstm.dropout, True)


def chunked_lstm(model: BiLSTMCTC, x: torch.Tensor, lengths: torch.Tensor, config: ChunkConfig) -> torch.Tensor:
    """LC-BLSTM over whole sequences: stacked inputs x (B, T, D), lengths (B,) in steps -> (B, T, 2H)."""
    batch, steps, _ = x.shape
    nc, nr = config.chunk, config.lookahead
    blocks = math.ceil(steps / nc)
    x = torch.nn.functional.pad(x, (0, 0, 0, blocks * nc + nr - steps))
    starts = torch.arange(blocks, device=x.device) * nc
    # real steps of each block (chunk + look-ahead), (B * blocks,): padding never enters a backward pass
    block_len = (lengths.to(x.device)[:, None] - starts[None]).clamp(0, nc + nr).reshape(-1)
    look_index = (starts + nc)[:, None] + torch.arange(nr, device=x.device)[None]  # (blocks, nr)
    chunk_in, look_in = x[:, :blocks * nc], x[:, look_index]  # (B, blocks*nc, D), (B, blocks, nr, D)
    for layer in range(model.dims.layers):
        forward = _weights(model, layer, False)
        state, outs, ends = _zeros(batch, model, x), [], []
        for k in range(blocks):  # the forward state is carried from chunk to chunk
            out, state = _run(forward, chunk_in[:, k * nc:(k + 1) * nc], state)
            outs.append(out)
            ends.append(state)
        hidden = outs[0].shape[-1]
        fwd_chunk = torch.cat(outs, 1).reshape(batch, blocks, nc, hidden)
        if nr:
            # every block's look-ahead, batched: (B * blocks, nr, D) from the state at its chunk's end
            carried = tuple(torch.stack([e[i][0] for e in ends], 1).reshape(1, batch * blocks, hidden) for i in (0, 1))
            fwd_look = _run(forward, look_in.reshape(batch * blocks, nr, -1), carried)[0]
            fwd_chunk = torch.cat([fwd_chunk, fwd_look.reshape(batch, blocks, nr, hidden)], 2)
        # (B, blocks, nc + nr, D) -> (B * blocks, nc + nr, D): every block is its own backward sequence
        block_in = torch.cat([chunk_in.reshape(batch, blocks, nc, -1), look_in], 2).reshape(batch * blocks, nc + nr, -1)
        bwd = _backward(model, layer, block_in, block_len).reshape(batch, blocks, nc + nr, hidden)
        out = _dropout(model, torch.cat([fwd_chunk, bwd], -1), layer)  # (B, blocks, nc + nr, 2H)
        chunk_in, look_in = out[:, :, :nc].reshape(batch, blocks * nc, 2 * hidden), out[:, :, nc:]
    return chunk_in[:, :steps]


def chunked_forward(model: BiLSTMCTC, features: torch.Tensor, lengths: torch.Tensor,
                    config: ChunkConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Like model(features, lengths) but with the LC-BLSTM: -> log-probs (B, T, V), output lengths (B,)."""
    out_lengths = model.output_lengths(lengths)
    hidden = chunked_lstm(model, model.stack_frames(features), out_lengths, config)
    return model.classify(hidden), out_lengths


def initial_state(model: BiLSTMCTC, streams: int, device: torch.device | str = "cpu") -> State:
    """Zero forward states for `streams` new streams: (h, c), each (layers, streams, hidden)."""
    zero = torch.zeros(model.dims.layers, streams, model.dims.hidden, device=device)
    return zero, zero.clone()


def step(model: BiLSTMCTC, chunk: torch.Tensor, look: torch.Tensor, look_len: torch.Tensor,
         state: State) -> tuple[torch.Tensor, State]:
    """Advance N streams by one block each.

    chunk (N, nc, D) and look (N, nr, D): stacked, normalized inputs (model.stack_frames); at the end of a
    stream the caller passes that stream alone, with a shorter chunk and look-ahead. look_len (N,): real
    look-ahead steps of each stream (padding after them never enters the backward pass). state: carried
    forward states (h, c) (layers, N, H).
    Returns log-probs (N, nc, V) of the chunk steps and the new carried state.
    """
    nc = chunk.shape[1]
    lengths = look_len.to(chunk.device) + nc
    h_out, c_out = [], []
    for layer in range(model.dims.layers):
        forward = _weights(model, layer, False)
        fwd, carried = _run(forward, chunk, (state[0][layer:layer + 1], state[1][layer:layer + 1]))
        h_out.append(carried[0])
        c_out.append(carried[1])
        if look.shape[1]:
            fwd = torch.cat([fwd, _run(forward, look, carried)[0]], 1)
        bwd = _backward(model, layer, torch.cat([chunk, look], 1), lengths)
        out = torch.cat([fwd, bwd], -1)  # (N, nc + nr, 2H)
        chunk, look = out[:, :nc], out[:, nc:]
    return model.classify(chunk), (torch.cat(h_out), torch.cat(c_out))


def run_tail(model: BiLSTMCTC, x: torch.Tensor, state: State, chunks: ChunkConfig) -> list[torch.Tensor]:
    """The last blocks of one stream: stacked steps x (1, S, D) with fewer than chunk + look-ahead steps left,
    from its carried state; the look-ahead shrinks at the end -> log-probs (nc or fewer, V) per block."""
    out = []
    for begin in range(0, x.shape[1], chunks.chunk):
        look = x[:, begin + chunks.chunk:begin + chunks.chunk + chunks.lookahead]
        log_probs, state = step(model, x[:, begin:begin + chunks.chunk], look, torch.tensor([look.shape[1]]), state)
        out.append(log_probs[0].float().cpu())
    return out


def frame_log_mel(config: FeatureConfig, device: torch.device | str = "cpu") -> torch.nn.Module:
    """LogMel's transform without centring: whole n_fft windows at hop spacing (batch, n) -> power mel."""
    return torchaudio.transforms.MelSpectrogram(
        sample_rate=config.sample_rate, n_fft=config.n_fft, hop_length=config.hop_length,
        n_mels=config.n_mels, power=2.0, center=False).to(device)


def batched_log_mel(mel: torch.nn.Module, windows: list[torch.Tensor]) -> list[torch.Tensor]:
    """Log-mel frames (k, n_mels) of each window (n,), one mel call per group of equal-length windows."""
    out: list[torch.Tensor | None] = [None] * len(windows)
    groups: dict[int, list[int]] = {}
    for index, window in enumerate(windows):
        groups.setdefault(window.numel(), []).append(index)
    for size, members in groups.items():
        if size == 0:
            for i in members:
                out[i] = windows[i].new_zeros(0, mel.n_mels)
            continue
        # (N, size) -> (N, n_mels, k) -> (N, k, n_mels)
        frames = torch.log(mel(torch.stack([windows[i] for i in members])) + 1e-6).transpose(1, 2)
        for row, i in enumerate(members):
            out[i] = frames[row]
    return out  # type: ignore[return-value]


class StreamingLogMel:
    """Log-mel frames of a growing signal, identical to acoustic.features.LogMel over the whole signal.

    LogMel centres frame t on sample t * hop with reflect padding at both ends; here frame t is ready as
    soon as samples up to t * hop + n_fft / 2 have arrived, and `finish` adds the end's reflect padding.
    `push` only buffers; `take` hands out the window of every ready frame, so that a multi-stream engine
    can compute many streams' frames in one call (batched_log_mel); `accept` and `flush` do it for one.
    """

    def __init__(self, config: FeatureConfig = FeatureConfig(), device: torch.device | str = "cpu",
                 mel: torch.nn.Module | None = None) -> None:
        self.config, self.half, self.device = config, config.n_fft // 2, device
        self.mel = mel if mel is not None else frame_log_mel(config, device)
        self.buffer = torch.zeros(0, device=device)  # samples from the next frame's window start on
        self.started = False  # the start's reflect padding is in the buffer

    def push(self, samples: np.ndarray | torch.Tensor) -> None:
        """Buffer new samples (n,)."""
        samples = torch.as_tensor(np.asarray(samples, dtype=np.float32), device=self.device)
        self.buffer = torch.cat([self.buffer, samples])
        if not self.started and self.buffer.numel() > self.half:  # the reflect padding needs half + 1 samples
            self.buffer = torch.cat([self.buffer[1:self.half + 1].flip(0), self.buffer])
            self.started = True

    def take(self) -> torch.Tensor:
        """The window (n,) of every frame now complete (empty if none); the buffer keeps the rest."""
        if not self.started or self.buffer.numel() < self.config.n_fft:
            return self.buffer[:0]
        count = (self.buffer.numel() - self.config.n_fft) // HOP_LENGTH + 1
        window = self.buffer[:(count - 1) * HOP_LENGTH + self.config.n_fft]
        self.buffer = self.buffer[count * HOP_LENGTH:]
        return window

    def finish(self) -> None:
        """End of signal: add the end's reflect padding (a signal of at most n_fft / 2 samples has no frames,
        as LogMel cannot frame it either); total frames then = samples // hop + 1."""
        if self.started:
            self.buffer = torch.cat([self.buffer, self.buffer[-self.half - 1:-1].flip(0)])
        else:
            self.buffer = self.buffer[:0]

    def accept(self, samples: np.ndarray | torch.Tensor) -> torch.Tensor:
        """New samples (n,) -> the frames (k, n_mels) they complete."""
        self.push(samples)
        return batched_log_mel(self.mel, [self.take()])[0]

    def flush(self) -> torch.Tensor:
        """The last frames."""
        self.finish()
        return batched_log_mel(self.mel, [self.take()])[0]
