"""Pyannote-free twins of the segmentation and speaker-embedding models, for training where pyannote.audio is not
installed (the lent GPU machine has only torch, and its working tree is too small to carry pyannote's
dependencies).

`SegmentationTwin` is `PyanNet` with the frozen sinc filterbank of `diarize.train_segmentation.segmentation_model`
(its filters held as a fixed convolution) and the same parameter names, so weights move both ways
(`to_twin`, `from_twin`); `powerset_loss` is pyannote's permutation-invariant powerset NLL (the 6 speaker
same Hungarian assignment, batched). `EmbeddingTwin` is XVectorMFCC (torchaudio MFCC -> TDNN -> statistics
pooling -> 512-dim embedding) under the same parameter names: its state dict loads into pyannote's model as is.
Tests check them against pyannote."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import nn
from torchaudio.transforms import MFCC

# Powerset classes of 3 speakers, at most 2 at once, in pyannote's order: none, singles, pairs
MAPPING = torch.tensor([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]],
                       dtype=torch.float32)


class Frozen(nn.Module):
    """Tensors kept as buffers under their names (unused by the forward pass, carried in the state dict)."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        super().__init__()
        for name, tensor in tensors.items():
            self.register_buffer(name, tensor.clone())


class SegmentationTwin(nn.Module):
    """SincNet (fixed filters) -> BiLSTM -> linear -> 7 powerset log-probabilities per frame, as PyanNet.
    `filterbank` holds the pyannote sinc filterbank's own tensors (low_hz_, band_hz_, ...) that `sinc_filters`
    was computed from, so the state dict has every key of PyanNet's."""

    def __init__(self, sinc_filters: torch.Tensor, filterbank: dict[str, torch.Tensor], stride: int = 10,
                 lstm_hidden: int = 128, lstm_layers: int = 2, linear_hidden: int = 128,
                 linear_layers: int = 2) -> None:
        super().__init__()
        self.stride = stride
        self.register_buffer("sinc_filters", sinc_filters.clone())
        self.sincnet = nn.Module()
        self.sincnet.wav_norm1d = nn.InstanceNorm1d(1, affine=True)
        self.sincnet.wav_norm1d.requires_grad_(False)  # frozen in the pyannote model too
        sinc = nn.Module()
        sinc.filterbank = Frozen(filterbank)
        self.sincnet.conv1d = nn.ModuleList([sinc, nn.Conv1d(80, 60, 5), nn.Conv1d(60, 60, 5)])
        self.sincnet.norm1d = nn.ModuleList([nn.InstanceNorm1d(c, affine=True) for c in (80, 60, 60)])
        self.lstm = nn.LSTM(60, lstm_hidden, num_layers=lstm_layers, bidirectional=True, batch_first=True)
        sizes = [2 * lstm_hidden] + [linear_hidden] * linear_layers
        self.linear = nn.ModuleList([nn.Linear(a, b) for a, b in zip(sizes, sizes[1:])])
        self.classifier = nn.Linear(sizes[-1], len(MAPPING))

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        """(batch, 1, samples) -> (batch, frames, 7) log-probabilities."""
        x = self.sincnet.wav_norm1d(waveforms)
        for c, (conv, norm) in enumerate(zip(self.sincnet.conv1d, self.sincnet.norm1d)):
            x = torch.abs(F.conv1d(x, self.sinc_filters, stride=self.stride)) if c == 0 else conv(x)
            x = F.leaky_relu(norm(F.max_pool1d(x, 3, stride=3)))
        x, _ = self.lstm(x.transpose(1, 2))
        for linear in self.linear:
            x = F.leaky_relu(linear(x))
        return F.log_softmax(self.classifier(x), dim=-1)


def powerset_loss(log_probs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean NLL of the powerset class of the targets `y` (batch, frames, 3), its speakers permuted to best match
    the predicted speakers (Hungarian method on the mean squared error against the arg-max class's speakers,
    ties broken as pyannote's `permutate` breaks them), as pyannote trains."""
    mapping = MAPPING.to(log_probs.device)
    with torch.no_grad():
        predicted = mapping[log_probs.argmax(dim=-1)]  # (batch, frames, 3) hard multi-label
        costs = ((predicted[..., :, None] - y[..., None, :]) ** 2).mean(dim=1).cpu()  # (batch, 3, 3)
        order = torch.tensor(np.array([linear_sum_assignment(c)[1] for c in costs.numpy()]), device=y.device)
        permuted = torch.gather(y, 2, order[:, None, :].expand_as(y))
        target = torch.argmax(permuted @ mapping.T, dim=-1)
    return F.nll_loss(log_probs.reshape(-1, len(MAPPING)), target.reshape(-1))


class EmbeddingTwin(nn.Module):
    """pyannote's XVectorMFCC (default sizes): (batch, 1, samples) -> (batch, 512) embeddings."""

    def __init__(self, sample_rate: int = 16000, n_mfcc: int = 40, dimension: int = 512) -> None:
        super().__init__()
        self.mfcc = MFCC(sample_rate=sample_rate, n_mfcc=n_mfcc, dct_type=2, norm="ortho", log_mels=False)
        self.tdnns = nn.ModuleList()
        channels = [n_mfcc, 512, 512, 512, 512, 1500]
        for c_in, c_out, kernel, dilation in zip(channels, channels[1:], (5, 3, 3, 1, 1), (1, 2, 3, 1, 1)):
            self.tdnns.extend([nn.Conv1d(c_in, c_out, kernel, dilation=dilation), nn.LeakyReLU(),
                               nn.BatchNorm1d(c_out)])
        self.embedding = nn.Linear(2 * channels[-1], dimension)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        x = self.mfcc(waveforms).squeeze(dim=1)
        for block in self.tdnns:
            x = block(x)
        return self.embedding(torch.cat([x.mean(dim=-1), x.std(dim=-1, correction=1)], dim=-1))


def twin_config(model: Any) -> dict[str, int]:
    """The twin's constructor arguments (but the filters) for a pyannote PyanNet."""
    return {"stride": model.hparams.sincnet["stride"], "lstm_hidden": model.hparams.lstm["hidden_size"],
            "lstm_layers": model.hparams.lstm["num_layers"], "linear_hidden": model.hparams.linear["hidden_size"],
            "linear_layers": model.hparams.linear["num_layers"]}


FILTERBANK = "sincnet.conv1d.0.filterbank."


def to_twin(model: Any) -> SegmentationTwin:
    """A twin holding a pyannote PyanNet's weights (its sinc filterbank evaluated once)."""
    with torch.no_grad():
        filters = model.sincnet.conv1d[0].filterbank.filters().float()
    state = {k: v.float() for k, v in model.state_dict().items()}
    filterbank = {k[len(FILTERBANK):]: v for k, v in state.items() if k.startswith(FILTERBANK)}
    twin = SegmentationTwin(filters, filterbank, **twin_config(model))
    twin.load_state_dict({**state, "sinc_filters": filters})
    return twin


def from_twin(twin_state: dict[str, torch.Tensor], model: Any) -> Any:
    """Load a twin's weights into the pyannote PyanNet `model` of the same sizes, in place (raises on a mismatch)."""
    model.load_state_dict({k: v for k, v in twin_state.items() if k != "sinc_filters"})
    return model
