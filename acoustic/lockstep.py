"""Lock-step multi-stream engine: thousands of live streams, each bringing one chunk of audio per tick.

acoustic.engine.AcousticEngine takes any amount of audio per stream and keeps Python objects per stream; at
thousands of streams its per-stream Python work, not the GPU, sets the limit. A real-time server has a
simpler shape: a fixed tick, and every live stream delivers exactly one chunk of PCM per tick (chunk =
the model's Nc steps of audio). Here every per-stream quantity is a row of a device tensor indexed by slot:

- `tail` (capacity, n_fft) and `kept` (capacity,): the samples carried into the next tick's first frames
  (frames overlap by n_fft - hop); a new stream instead gets the start's reflect padding, as LogMel centres;
- `ring` (capacity, R, n_mels), `begin`, `pending` (capacity,): log-mel frames not yet consumed (a ring);
- `state`: the LC-BLSTM's carried forward state (layers, capacity, hidden).

A tick is one host-to-device copy of the (N, chunk) PCM (int16 or float), one log-mel call per group of
streams at the same buffer position (two groups: new streams and the rest), a scatter into the ring and one
batched model step for every stream with a whole block (chunk + look-ahead): a few dozen kernel launches
and O(1) Python, whatever N is. A stream's log-probs equal AcousticEngine's (and so chunked_forward's) for
the same audio; `close` runs its last frames with the shortened look-ahead of the end. `half=True` runs the
model in float16 (CUDA).
"""
from __future__ import annotations

import torch

from acoustic.features import HOP_LENGTH, FeatureConfig
from acoustic.model import BiLSTMCTC
from acoustic.streaming import ChunkConfig, frame_log_mel, initial_state, run_tail, step


class LockstepEngine:
    def __init__(self, model: BiLSTMCTC, features: FeatureConfig, chunks: ChunkConfig,
                 device: torch.device | str = "cpu", capacity: int = 64, half: bool = False) -> None:
        if features.kind != "logmel":
            raise ValueError("the lock-step engine needs a log-mel model (the Whisper encoder works on windows)")
        self.device, self.chunks, self.features = torch.device(device), chunks, features
        self.dtype = torch.float16 if half else torch.float32
        self.model = model.to(self.device, self.dtype).eval()
        self.stack, self.half_fft = model.dims.stack, features.n_fft // 2
        self.tick_samples = chunks.chunk * self.stack * HOP_LENGTH
        self.block = (chunks.chunk + chunks.lookahead) * self.stack  # feature frames one step needs
        self.ring_size = self.block + self.tick_samples // HOP_LENGTH + 1
        self.mel = frame_log_mel(features, self.device)
        self.capacity = 0
        self._grow(capacity)

    def _grow(self, capacity: int) -> None:
        """Room for `capacity` slots (existing rows are kept)."""
        def rows(old: torch.Tensor | None, shape: tuple[int, ...], dtype: torch.dtype, dim: int = 0) -> torch.Tensor:
            new = torch.zeros(shape, dtype=dtype, device=self.device)
            if old is not None:
                new.narrow(dim, 0, old.shape[dim]).copy_(old)
            return new
        previous = self.capacity
        old = vars(self) if previous else {}
        self.tail = rows(old.get("tail"), (capacity, self.features.n_fft), torch.float32)
        self.kept = rows(old.get("kept"), (capacity,), torch.long)
        self.started = rows(old.get("started"), (capacity,), torch.bool)
        self.opened = rows(old.get("opened"), (capacity,), torch.bool)
        self.ring = rows(old.get("ring"), (capacity, self.ring_size, self.features.n_mels), torch.float32)
        self.begin = rows(old.get("begin"), (capacity,), torch.long)
        self.pending = rows(old.get("pending"), (capacity,), torch.long)
        state = initial_state(self.model, capacity, self.device)
        self.state = tuple(rows(old.get("state", (None, None))[i], tuple(state[i].shape), self.dtype, 1)
                           for i in (0, 1))
        self.free = list(range(capacity - 1, previous - 1, -1)) + (old.get("free") or [])
        self.capacity = capacity

    def open(self, count: int = 1) -> torch.Tensor:
        """Slots (count,) for new streams, zeroed; the capacity doubles when full."""
        while len(self.free) < count:
            self._grow(max(2 * self.capacity, self.capacity + count))
        slots = torch.tensor([self.free.pop() for _ in range(count)], device=self.device)
        for tensor in (self.kept, self.started, self.begin, self.pending):
            tensor[slots] = 0
        self.opened[slots] = True
        for s in self.state:
            s[:, slots] = 0
        return slots

    @torch.inference_mode()
    def tick(self, slots: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One chunk of audio (N, tick_samples) for each stream in `slots` (N,) -> (slots that stepped (R,),
        their log-probs (R, chunk, V)), both on the device. int16 audio is scaled to [-1, 1)."""
        if audio.ndim != 2 or audio.shape != (slots.numel(), self.tick_samples):
            raise ValueError(f"audio must be ({slots.numel()}, {self.tick_samples}); got {tuple(audio.shape)}")
        audio = audio.to(self.device, non_blocking=True)
        audio = audio.float() / 32768.0 if audio.dtype == torch.int16 else audio.float()
        slots = slots.to(self.device)
        if not bool(self.opened[slots].all()):
            raise ValueError("tick got a slot that is not open (closed, or never opened)")
        new = ~self.started[slots]
        if bool(new.any()):  # new streams: the start's reflect padding, then their audio
            fresh = audio[new]
            self._frames(slots[new], torch.cat([fresh[:, 1:self.half_fft + 1].flip(1), fresh], 1))
        old_kept = self.kept[slots]
        for kept in old_kept[~new].unique().tolist():  # the rest: each one's tail, then its audio
            member = ~new & (old_kept == kept)
            self._frames(slots[member], torch.cat([self.tail[slots[member], :kept], audio[member]], 1))
        self.started[slots] = True
        return self._steps(slots)

    def _frames(self, slots: torch.Tensor, signal: torch.Tensor) -> None:
        """Log-mel frames of every complete window of signal (G, L) into the ring; the rest becomes the tail."""
        n_fft, length = self.features.n_fft, signal.shape[1]
        count = (length - n_fft) // HOP_LENGTH + 1
        frames = torch.log(self.mel(signal[:, :(count - 1) * HOP_LENGTH + n_fft]) + 1e-6).transpose(1, 2)
        rest = signal[:, count * HOP_LENGTH:]
        self.tail[slots, :rest.shape[1]] = rest
        self.kept[slots] = rest.shape[1]
        where = (self.begin[slots] + self.pending[slots])[:, None] + torch.arange(count, device=self.device)
        self.ring[slots[:, None], where % self.ring_size] = frames
        self.pending[slots] += count

    def _steps(self, slots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Step every stream in `slots` with a whole block, until none has one (normally once per tick)."""
        stepped, outs = [], []
        while True:
            ready = slots[self.pending[slots] >= self.block]
            if not ready.numel():
                break
            stepped.append(ready)
            outs.append(self._step(ready, self.block))
        if not outs:
            return slots[:0], torch.zeros(0, self.chunks.chunk, self.model.dims.n_vocab, device=self.device)
        return torch.cat(stepped), torch.cat(outs)

    def _block(self, slots: torch.Tensor, frames: int) -> torch.Tensor:
        """The first `frames` pending frames of each slot, stacked and normalized (N, steps, D)."""
        where = (self.begin[slots][:, None] + torch.arange(frames, device=self.device)) % self.ring_size
        return self.model.stack_frames(self.ring[slots[:, None], where].to(self.dtype))

    def _step(self, ready: torch.Tensor, frames: int) -> torch.Tensor:
        nc = self.chunks.chunk
        x = self._block(ready, frames)
        look_len = torch.full((ready.numel(),), self.chunks.lookahead)
        log_probs, new = step(self.model, x[:, :nc], x[:, nc:], look_len, (self.state[0][:, ready],
                                                                          self.state[1][:, ready]))
        for batched, part in zip(self.state, new):
            batched[:, ready] = part
        self.begin[ready] = (self.begin[ready] + nc * self.stack) % self.ring_size
        self.pending[ready] -= nc * self.stack
        return log_probs.float()

    @torch.inference_mode()
    def close(self, slot: int) -> torch.Tensor:
        """End one stream: its remaining log-probs (T, V) on the CPU (the end's reflect padding and a shorter
        look-ahead, as AcousticEngine.close); frees the slot. Raises ValueError for a slot that is not open."""
        if not 0 <= slot < self.capacity or not bool(self.opened[slot]):
            raise ValueError(f"slot {slot} is not open")
        self.opened[slot] = False
        index = torch.tensor([slot], device=self.device)
        if bool(self.started[slot]):
            kept = int(self.kept[slot])
            tail = self.tail[slot, :kept]
            signal = torch.cat([tail, tail[-self.half_fft - 1:-1].flip(0)])[None]
            if signal.shape[1] >= self.features.n_fft:
                self._frames(index, signal)
        out = []
        while int(self.pending[slot]) >= self.block:
            out.append(self._step(index, self.block)[0].cpu())
        left = int(self.pending[slot])
        if left:
            state = (self.state[0][:, index], self.state[1][:, index])
            out += run_tail(self.model, self._block(index, left), state, self.chunks)
        self.free.append(slot)
        return torch.cat(out) if out else torch.zeros(0, self.model.dims.n_vocab)
