"""Train the PLDA that pyannote's VBx clustering reads (`xvec_transform.npz` + `plda.npz`, the VBx format):
centring and length-norm, LDA to `dim` dimensions, then a two-covariance PLDA, from embeddings of the training
speakers' crops. The layout and formulas follow pyannote.audio.utils.vbx.vbx_setup, which loads them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy.linalg import eigh

from acoustic.features import SAMPLE_RATE
from diarize.data import Voices


def l2_norm(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def scatter(x: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Within-class and between-class covariance of rows `x` grouped by `labels`."""
    classes = np.unique(labels)
    means = np.stack([x[labels == c].mean(axis=0) for c in classes])
    within = sum(np.cov((x[labels == c] - means[i]).T, bias=True) * (labels == c).sum()
                 for i, c in enumerate(classes)) / len(x)
    between = np.cov(means.T, bias=True)
    return within, between


def fit_plda(embeddings: np.ndarray, labels: np.ndarray, dim: int = 128) -> tuple[dict, dict]:
    """(xvec_transform arrays {mean1, mean2, lda}, plda arrays {mu, tr, psi}) for (n, D) embeddings."""
    mean1 = embeddings.mean(axis=0)
    x = np.sqrt(embeddings.shape[1]) * l2_norm(embeddings - mean1)
    within, between = scatter(x, labels)
    values, vectors = eigh(between, within + 1e-6 * np.eye(len(within)))
    lda = vectors[:, ::-1][:, :dim]                  # (D, dim) most discriminant directions first
    y = x @ lda
    mean2 = y.mean(axis=0)
    y = np.sqrt(dim) * l2_norm(y - mean2)
    within, between = scatter(y, labels)
    psi, v = eigh(between, within + 1e-6 * np.eye(dim))  # v.T W v = I, v.T B v = diag(psi)
    return ({"mean1": mean1, "mean2": mean2, "lda": lda},
            {"mu": y.mean(axis=0), "tr": v.T, "psi": np.maximum(psi, 1e-6)})


@torch.inference_mode()
def voice_embeddings(model: torch.nn.Module, voices: Voices, crops: int = 6, crop: float = 3.0,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Up to `crops` random `crop`-second crops per speaker -> (embeddings, speaker labels)."""
    rng = np.random.default_rng(seed)
    n = int(crop * SAMPLE_RATE)
    embs, labels = [], []
    model.eval()
    for spk, idx in sorted(voices.by_speaker().items()):
        for k in range(crops):
            x = voices.take(idx[k % len(idx)])
            start = rng.integers(0, max(1, len(x) - n))
            segment = np.pad(x[start: start + n], (0, max(0, n - len(x[start:]))))
            embs.append(model(torch.from_numpy(segment)[None, None]).numpy()[0])
            labels.append(spk)
    return np.stack(embs).astype(np.float64), np.array(labels)


def write_plda(folder: Path, transform: dict, plda: dict) -> None:
    """`folder/xvec_transform.npz` and `folder/plda.npz` (float32)."""
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "xvec_transform.npz", **{k: v.astype(np.float32) for k, v in transform.items()})
    np.savez(folder / "plda.npz", **{k: v.astype(np.float32) for k, v in plda.items()})
