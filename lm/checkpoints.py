"""Reading checkpoint files safely: one-line errors of the caller's type for missing or corrupt files."""
from __future__ import annotations

from pathlib import Path

import torch


def read_checkpoint(path: Path, error: type[ValueError], what: str) -> dict:
    """torch.load(weights_only=True) of `path` as a dict; raises `error` naming `what` ("model", ...)."""
    if not path.is_file():
        raise error(f"{what} file not found: {path}")
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as cause:  # torch raises many types for a corrupt file; report one line
        raise error(f"not a minutes {what} file: {path} ({type(cause).__name__})") from cause
    if not isinstance(ckpt, dict):
        raise error(f"not a minutes {what} file: {path} (no checkpoint dictionary inside)")
    return ckpt


def float_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict with floating tensors (possibly stored fp16) as fp32."""
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
