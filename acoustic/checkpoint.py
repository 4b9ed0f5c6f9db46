"""Checkpoint format: dims, weights, vocabulary and feature config in one file (format_version 1)."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from acoustic.features import FeatureConfig
from acoustic.model import BiLSTMCTC, ModelDims
from lm.checkpoints import float_state, read_checkpoint
from lm.vocab import CharVocab

FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A model file that is missing, corrupt or of an unknown format."""


def save_model(path: str | Path, model: BiLSTMCTC, vocab: CharVocab, features: FeatureConfig,
               extra: dict | None = None, half: bool = False) -> None:
    """Write the model; `half` stores float weights as fp16 (loaded back as fp32)."""
    state = {k: (v.half() if half and v.is_floating_point() else v).cpu() for k, v in model.state_dict().items()}
    torch.save({"format_version": FORMAT_VERSION, "dims": asdict(model.dims), "model_state_dict": state,
                "vocab": list(vocab.symbols), "features": asdict(features), **(extra or {})}, str(path))


def load_model(path: str | Path) -> tuple[BiLSTMCTC, CharVocab, FeatureConfig, dict]:
    """Read a checkpoint -> (model in eval mode, vocab, feature config, the whole checkpoint dict)."""
    path = Path(path)
    ckpt = read_checkpoint(path, CheckpointError, "model")
    if ckpt.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"unsupported model format in {path}: expected format_version {FORMAT_VERSION}")
    try:
        model = BiLSTMCTC(ModelDims(**ckpt["dims"]))
        model.load_state_dict(float_state(ckpt["model_state_dict"]))
        vocab, features = CharVocab(tuple(ckpt["vocab"])), FeatureConfig(**ckpt["features"])
    except (KeyError, TypeError, RuntimeError, ValueError) as error:
        raise CheckpointError(f"damaged model file {path}: {type(error).__name__}: {error}".splitlines()[0]) from error
    if len(vocab) != model.dims.n_vocab:
        raise CheckpointError(f"damaged model file {path}: vocabulary does not match the output layer")
    return model.eval(), vocab, features, ckpt
