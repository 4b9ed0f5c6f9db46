"""Write a pyannote.audio Model as the checkpoint `Model.from_pretrained` reads (`pytorch_model.bin`),
without a Lightning Trainer (parameters in float16 to keep the shipped pipeline small), and the pieces the
two time-boxed, resumable training recipes share (resume state, learning-rate schedule, command line).
Importable without pyannote.audio (the GPU trainer, diarize.train_twin, uses the schedule)."""
from __future__ import annotations

import argparse
import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from pyannote.audio import Model


def save_pyannote_model(model: Model, path: Path, half: bool = True) -> None:
    """Atomically write `model` (architecture, hyper-parameters, specifications, weights) to `path`."""
    import lightning

    params = {name for name, _ in model.named_parameters()}
    state = {k: (v.half() if half and k in params and v.is_floating_point() else v).clone()
             for k, v in model.state_dict().items()}
    ckpt = {"state_dict": state, "hyper_parameters": dict(model.hparams),
            "pytorch-lightning_version": lightning.__version__}
    model.on_save_checkpoint(ckpt)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, path)


def save_run(exp: Path, model: Model, step: int, **state: Any) -> None:
    """Resumable `exp/last.pt` ({"model", "step", **state}: state dicts of the rest, config) and the pyannote
    checkpoint `exp/pytorch_model.bin` (fp16)."""
    torch.save({"model": model.state_dict(), "step": step, **state}, exp / "last.tmp")
    (exp / "last.tmp").replace(exp / "last.pt")
    save_pyannote_model(model, exp / "pytorch_model.bin")


def resume_run(exp: Path, **modules: Any) -> int:
    """Load `exp/last.pt` (if any) into `modules` (name -> anything with load_state_dict, e.g. model=, opt=)
    and return the step it reached (0 for a fresh run)."""
    if not (exp / "last.pt").exists():
        return 0
    state = torch.load(exp / "last.pt", weights_only=False)
    for name, module in modules.items():
        module.load_state_dict(state[name])
    logging.getLogger(__name__).info("resumed at step %d", state["step"])
    return state["step"]


def cosine_lr(optimizer: torch.optim.Optimizer, base: float, step: float, total: float) -> None:
    """Set the learning rate of a cosine decay from `base` to 0 over `total` steps."""
    for group in optimizer.param_groups:
        group["lr"] = base * 0.5 * (1 + math.cos(math.pi * min(1.0, step / total)))


def run_args(doc: str, exp: str, anneal_steps: int, extra=None) -> argparse.Namespace:
    """Command line of a time-boxed, resumable training run (plus the options `extra(parser)` adds); sets torch
    threads and logging."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data")
    p.add_argument("--exp", default=exp)
    p.add_argument("--minutes", type=float, default=35.0, help="wall-clock budget of this run")
    p.add_argument("--anneal-steps", type=int, default=anneal_steps, help="cosine learning-rate decay length")
    p.add_argument("--threads", type=int, default=1)
    if extra is not None:
        extra(p)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    return args
