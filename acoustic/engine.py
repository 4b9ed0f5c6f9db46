"""Multi-stream acoustic engine: many audio streams through one LC-BLSTM, one batched step per chunk tick.

Each stream has a slot: its incremental log-mel buffer (acoustic.streaming.StreamingLogMel), the feature
frames not yet consumed, and its carried forward LSTM state, which lives with every other stream's state in
two batched tensors (layers, capacity, hidden) on the engine's device. `step()` computes the new feature
frames of all streams in one mel call per group of equal-sized windows, gathers every stream that has a
whole block (chunk + look-ahead) of features, runs them as one batch, scatters the new states back and
returns each stream's log-probs. Streams open and close at any time; a stream's numbers do not depend on
which others share its batches. `close(slot)` runs the rest of a stream with the shortened look-ahead of
its end, so a closed stream's log-probs equal `chunked_forward` over its whole audio.

Works on any torch device ("cpu", "cuda"); log-mel features are computed on that device too.

A Whisper-encoder model streams too, at a price: its encoder sees whole windows, so before each block the
audio heard so far (its last 30 s at most, ending where the block's look-ahead ends, zero-padded to 30 s as
in training) is encoded again and the block's states are taken from it (`_EncoderWindow`); about one encoder
call per stream per chunk (CTranslate2, CPU), measured in bench/RESULTS.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from acoustic.encoder import SAMPLES_PER_FRAME, WINDOW_SAMPLES, WhisperEncoder
from acoustic.features import FeatureConfig
from acoustic.model import BiLSTMCTC
from acoustic.streaming import (ChunkConfig, State, StreamingLogMel, batched_log_mel, frame_log_mel, initial_state,
                                run_tail, step)


class _EncoderWindow:
    """One stream's audio for the Whisper encoder: `window(steps)` is the audio (at most 30 s) that ends
    `steps` encoder frames after the frames consumed so far, and the absolute frame where it starts."""

    def __init__(self) -> None:
        self.audio = np.zeros(0, dtype=np.float32)
        self.offset = 0  # stream samples dropped from the front of `audio`
        self.ended = False
        self.complete = False  # the last window reached the end of the ended stream: its states are final

    def push(self, samples: np.ndarray) -> None:
        self.audio = np.concatenate([self.audio, np.asarray(samples, dtype=np.float32)])

    def window(self, consumed: int, steps: int) -> tuple[np.ndarray, int] | None:
        """None until the audio reaches the end of those frames (unless the stream ended)."""
        available = self.offset + self.audio.size
        end = (consumed + steps) * SAMPLES_PER_FRAME
        if end > available and not self.ended:
            return None
        # at the end: everything left, up to one whole window
        end = min(available, consumed * SAMPLES_PER_FRAME + WINDOW_SAMPLES) if self.ended else end
        self.complete = self.ended and end == available
        start = max(0, -(-(end - WINDOW_SAMPLES) // SAMPLES_PER_FRAME) * SAMPLES_PER_FRAME)
        self.audio, self.offset = self.audio[start - self.offset:], start  # older audio is never needed again
        return self.audio[:end - start], start // SAMPLES_PER_FRAME


@dataclass
class _Slot:
    mel: StreamingLogMel | _EncoderWindow
    frames: torch.Tensor  # feature frames (F, dim) not yet consumed by a chunk
    out: list[torch.Tensor] = field(default_factory=list)  # log-prob chunks not yet collected
    consumed: int = 0  # model steps run so far


class AcousticEngine:
    def __init__(self, model: BiLSTMCTC, features: FeatureConfig, chunks: ChunkConfig,
                 device: torch.device | str = "cpu", capacity: int = 8) -> None:
        self.model = model.to(device).eval()
        self.features, self.chunks, self.device = features, chunks, torch.device(device)
        self.stack = model.dims.stack
        self.state: State = initial_state(model, capacity, self.device)
        self.mel = frame_log_mel(features, self.device)  # shared by all streams
        self.encoder = WhisperEncoder(threads=torch.get_num_threads()) if features.kind == "whisper-encoder" else None
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
        mel = StreamingLogMel(self.features, self.device, self.mel) if self.encoder is None else _EncoderWindow()
        self.slots[slot] = _Slot(mel, torch.zeros(0, self.features.dim, device=self.device))
        return slot

    def push(self, slot: int, samples: np.ndarray) -> None:
        """Append 16 kHz float32 samples (n,) to a stream (features and the model run in step)."""
        self.slots[slot].mel.push(samples)

    @torch.inference_mode()
    def step(self) -> dict[int, torch.Tensor]:
        """Run every stream with a whole block ready, batched, until none is -> {slot: log-probs (T, V)}."""
        while True:
            self._features(list(self.slots))
            ready = [s for s, e in self.slots.items() if e.frames.shape[0] >= self.block_frames]
            if not ready:
                break
            self._run(ready)
        return self._collect()

    @torch.inference_mode()
    def close(self, slot: int) -> torch.Tensor:
        """End a stream: its remaining log-probs (T, V) (the look-ahead shrinks at the end); frees the slot."""
        entry = self.slots[slot]
        if isinstance(entry.mel, _EncoderWindow):
            entry.mel.ended = True
            entry.frames = entry.frames[:0]  # encode the rest once, with all the audio there is
        else:
            entry.mel.finish()
        while True:
            self._features([slot])
            if entry.frames.shape[0] < self.block_frames:
                break
            self._run([slot])
        if entry.frames.shape[0]:
            self._run_tail(slot)
        out = torch.cat(entry.out) if entry.out else torch.zeros(0, self.model.dims.n_vocab)
        del self.slots[slot]
        return out

    def _features(self, slots: list[int]) -> None:
        """New feature frames of these slots, batched."""
        if self.encoder is not None:
            return self._encode(slots)
        entries = [self.slots[s] for s in slots]
        for entry, frames in zip(entries, batched_log_mel(self.mel, [e.mel.take() for e in entries])):
            if frames.shape[0]:
                entry.frames = torch.cat([entry.frames, frames])

    def _encode(self, slots: list[int]) -> None:
        """Fresh encoder states for the next block of each slot whose audio reaches its end."""
        jobs = []
        for slot in slots:
            entry = self.slots[slot]
            # states left from the last block are stale, unless they were computed from the whole ended stream
            if entry.frames.shape[0] < self.block_frames and not entry.mel.complete:  # type: ignore[union-attr]
                found = entry.mel.window(entry.consumed, self.block_frames)  # type: ignore[union-attr]
                if found is not None and found[0].size:
                    jobs.append((entry, *found))
        states = self.encoder.encode([audio for _, audio, _ in jobs]) if jobs else []  # type: ignore[union-attr]
        for (entry, _, first), encoded in zip(jobs, states):
            entry.frames = encoded[entry.consumed - first:].to(self.device)

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
            entry.frames, entry.consumed = entry.frames[nc * self.stack:], entry.consumed + nc
            entry.out.append(log_probs[row])

    def _run_tail(self, slot: int) -> None:
        """The last, shorter blocks of a closing stream (fewer than block_frames frames left)."""
        entry = self.slots[slot]
        x = self.model.stack_frames(entry.frames[None])  # (1, steps, D), zero-padded to whole steps
        state = (self.state[0][:, slot:slot + 1], self.state[1][:, slot:slot + 1])
        entry.out += run_tail(self.model, x, state, self.chunks)
        entry.frames = entry.frames[:0]

    def _collect(self) -> dict[int, torch.Tensor]:
        out = {}
        for slot, entry in self.slots.items():
            if entry.out:
                out[slot] = torch.cat(entry.out)
                entry.out = []
        return out
