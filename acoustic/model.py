"""The BiLSTM-CTC acoustic model: CMVN -> frame stacking (subsampling) -> BiLSTM stack -> character logits."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ModelDims:
    n_input: int = 80
    n_vocab: int = 29
    stack: int = 3  # frames stacked into one step: subsampling factor
    hidden: int = 256
    layers: int = 3
    dropout: float = 0.2

    def __post_init__(self) -> None:
        if self.stack < 1 or self.hidden < 1 or self.layers < 1:
            raise ValueError("stack, hidden and layers must be positive")


class BiLSTMCTC(nn.Module):
    def __init__(self, dims: ModelDims) -> None:
        super().__init__()
        self.dims = dims
        # Global CMVN statistics, estimated from training data and saved with the weights.
        self.register_buffer("feat_mean", torch.zeros(dims.n_input))
        self.register_buffer("feat_std", torch.ones(dims.n_input))
        self.lstm = nn.LSTM(dims.n_input * dims.stack, dims.hidden, num_layers=dims.layers,
                            batch_first=True, bidirectional=True,
                            dropout=dims.dropout if dims.layers > 1 else 0.0)
        self.dropout = nn.Dropout(dims.dropout)
        self.output = nn.Linear(2 * dims.hidden, dims.n_vocab)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Output frames for input frame counts (ceil division by the stacking factor)."""
        return (lengths + self.dims.stack - 1) // self.dims.stack

    def forward(self, features: torch.Tensor, lengths: torch.Tensor,
                exact: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """features (batch, frames, n_input), lengths (batch,) -> log-probs (batch, T, n_vocab), T lengths.

        exact=True packs the batch so padding never reaches the backward LSTM direction; exact=False runs
        over the padding, several times faster to train on CPU (packed backward is slow) and harmless for
        length-bucketed batches.
        """
        x = self.stack_frames(features)
        out_lengths = self.output_lengths(lengths)
        if exact and bool((out_lengths != x.shape[1]).any()):
            packed = nn.utils.rnn.pack_padded_sequence(x, out_lengths.cpu(), batch_first=True, enforce_sorted=False)
            hidden, _ = nn.utils.rnn.pad_packed_sequence(self.lstm(packed)[0], batch_first=True,
                                                         total_length=x.shape[1])
        else:
            hidden, _ = self.lstm(x)
        return self.classify(hidden), out_lengths

    def stack_frames(self, features: torch.Tensor) -> torch.Tensor:
        """CMVN and stacking: features (batch, frames, n_input) -> (batch, ceil(frames / stack), stack * n_input)."""
        x = (features - self.feat_mean) / self.feat_std
        batch, frames, dim = x.shape
        pad = (-frames) % self.dims.stack
        x = nn.functional.pad(x, (0, 0, 0, pad))
        # (batch, frames, dim) -> (batch, frames / stack, stack * dim): consecutive frames side by side
        return x.reshape(batch, (frames + pad) // self.dims.stack, self.dims.stack * dim)

    def classify(self, hidden: torch.Tensor) -> torch.Tensor:
        """Top-layer LSTM outputs (batch, T, 2 * hidden) -> log-probs (batch, T, n_vocab)."""
        logits = self.output(self.dropout(hidden))  # (batch, T, n_vocab)
        return logits.log_softmax(dim=-1)
