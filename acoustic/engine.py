"""Multi-stream acoustic engine: many audio streams through one LC-BLSTM, one batched step per chunk tick.

Each stream has a slot: its incremental log-mel buffer (acoustic.streaming.StreamingLogMel), the feature
frames not yet consumed, and its carried forward LSTM state, which lives with every other stream's state in
two batched tensors (layers, capacity, hidden) on the engine's device. `step()` computes the new feature
frames of all streams in one mel call per group of equal-sized windows, gathers every stream that has a
whole block (chunk + look-ahead) of features, runs them as one batch, scatters the new states back and
returns each stream's log-probs. Streams open and close at any time; a stream's numbers do not depend on
which others share its batches. `close(slot)` runs the rest of a stream with the shortened look-ahead of
its end, so a closed stream's log-probs equal `chunked_forward` over its whole audio.

Works on any torch device ("cpu", "cuda"); features are computed on that device too.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from acoustic.features import FeatureConfig
from acoustic.model import BiLSTMCTC
from acoustic.streaming import (ChunkConfig, State, StreamingLogMel, batched_log_mel, frame_log_mel, initial_state,
                                step)


@dataclass
class _Slot:
    mel: StreamingLogMel
    frames: torch.Tensor  # feature frames (F, n_mels) not yet consumed by a chunk
    out: list[torch.Tensor] = field(default_factory=list)  # log-prob chunks not yet collected


class AcousticEngine:
    def __init__(self, model: BiLSTMCTC, features: FeatureConfig, chunks: ChunkConfig,
                 device: torch.device | str = "cpu", capacity: int = 8) -> None:
        if features.kind != "logmel":
            raise ValueError(f"streaming needs a log-mel model; this one uses the {features.kind} front end")
        self.model = model.to(device).eval()
        self.features, self.chunks, self.device = features, chunks, torch.device(device)
        self.stack = model.dims.stack
        self.state: State = initial_state(model, capacity, self.device)
        self.mel = frame_log_mel(features, self.device)  # shared by all streams
        self.slots: dict[int, _Slot] = {}

    @property
    def block_frames(self) -> int:
        """Feature frames one step needs: chunk + look-ahead."""
        return (self.chunks.chunk + self.chunks.lookahead) * self.stack

    def open(self) -> int:
        """A new stream's slot id (its state starts at zero)."""
        slot = next(i for i in range(len(self.slots) + 1) if i not in self.slots)
        if slot >= self.state[0].shape[1]:  # grow the batched state: double the capacity
            self.state = tuple(torch.cat([s, torch.zeros_like(s)], 1) for s in self.state)  # type: ignore[assignment]
        for s in self.state:
            s[:, slot] = 0.0
        mel = StreamingLogMel(self.features, self.device, self.mel)
        self.slots[slot] = _Slot(mel, torch.zeros(0, self.features.n_mels, device=self.device))
        return slot

    def push(self, slot: int, samples: np.ndarray) -> None:
        """Append 16 kHz float32 samples (n,) to a stream (features and the model run in step)."""
        self.slots[slot].mel.push(samples)

    @torch.inference_mode()
    def step(self) -> dict[int, torch.Tensor]:
        """Run every stream with a whole block ready, batched, until none is -> {slot: log-probs (T, V)}."""
        self._features(list(self.slots))
        while True:
            ready = [s for s, e in self.slots.items() if e.frames.shape[0] >= self.block_frames]
            if not ready:
                break
            self._run(ready)
        return self._collect()

    @torch.inference_mode()
    def close(self, slot: int) -> torch.Tensor:
        """End a stream: its remaining log-probs (T, V) (the look-ahead shrinks at the end); frees the slot."""
        entry = self.slots[slot]
        entry.mel.finish()
        self._features([slot])
        while entry.frames.shape[0] >= self.block_frames:
            self._run([slot])
        if entry.frames.shape[0]:
            self._run_tail(slot)
        out = torch.cat(entry.out) if entry.out else torch.zeros(0, self.model.dims.n_vocab)
        del self.slots[slot]
        return out

    def _features(self, slots: list[int]) -> None:
        """New feature frames of these slots, batched."""
        entries = [self.slots[s] for s in slots]
        for entry, frames in zip(entries, batched_log_mel(self.mel, [e.mel.take() for e in entries])):
            if frames.shape[0]:
                entry.frames = torch.cat([entry.frames, frames])

    def _run(self, ready: list[int]) -> None:
        """One batched block for the `ready` slots (each has block_frames frames)."""
        nc = self.chunks.chunk
        x = torch.stack([self.slots[s].frames[:self.block_frames] for s in ready])
        x = self.model.stack_frames(x)  # (N, nc + nr, stack * n_mels)
        index = torch.tensor(ready, device=self.device)
        look_len = torch.full((len(ready),), self.chunks.lookahead)
        log_probs, new = step(self.model, x[:, :nc], x[:, nc:], look_len, (self.state[0][:, index],
                                                                          self.state[1][:, index]))
        for batched, part in zip(self.state, new):
            batched[:, index] = part
        log_probs = log_probs.float().cpu()  # one device -> host copy for the whole batch
        for row, s in enumerate(ready):
            entry = self.slots[s]
            entry.frames = entry.frames[nc * self.stack:]
            entry.out.append(log_probs[row])

    def _run_tail(self, slot: int) -> None:
        """The last, shorter blocks of a closing stream (fewer than block_frames frames left)."""
        entry, nc = self.slots[slot], self.chunks.chunk
        x = self.model.stack_frames(entry.frames[None])  # (1, steps, D), zero-padded to whole steps
        state = (self.state[0][:, slot:slot + 1], self.state[1][:, slot:slot + 1])
        for begin in range(0, x.shape[1], nc):
            look = x[:, begin + nc:begin + nc + self.chunks.lookahead]
            log_probs, state = step(self.model, x[:, begin:begin + nc], look, torch.tensor([look.shape[1]]), state)
            entry.out.append(log_probs[0].float().cpu())
        entry.frames = entry.frames[:0]

    def _collect(self) -> dict[int, torch.Tensor]:
        out = {}
        for slot, entry in self.slots.items():
            if entry.out:
                out[slot] = torch.cat(entry.out)
                entry.out = []
        return out
