"""Widen a trained BiLSTM-CTC without changing what it computes (Net2WiderNet, Chen et al. 2016).

    python -m acoustic.widen models/default/model.pt exp/wide/init.pt --hidden 384

Each new LSTM unit copies an existing unit's incoming weights (all four gates, input and recurrent, both
directions), so the copy's activations equal the original's at every step; every weight that reads those units
(the recurrent matrix, the next layer's input, the output layer) is shared out between the original and its
copies, so the sums they feed are unchanged. The wider model starts where the trained one stands, and further
training (`python -m acoustic.train --init OUT`) has more units to spend. `--noise` adds a little noise to every
LSTM weight matrix (relative to its spread) so that copies drift apart sooner (dropout parts them too).
"""
from __future__ import annotations

import argparse
from dataclasses import replace

import torch

from acoustic.checkpoint import CheckpointError, load_model, save_model
from acoustic.model import BiLSTMCTC

GATES = 4  # PyTorch's LSTM stacks the input, forget, cell and output gates' rows


def unit_map(old: int, new: int, generator: torch.Generator) -> torch.Tensor:
    """Old unit behind each new unit: the old units in order, then random picks among them."""
    extra = torch.randint(0, old, (new - old,), generator=generator)
    return torch.cat([torch.arange(old), extra])


def gate_rows(weight: torch.Tensor, mapping: torch.Tensor, old: int) -> torch.Tensor:
    """Rows of a (4 * old, ...) gate matrix or bias, gathered per gate -> (4 * new, ...)."""
    return torch.cat([weight[g * old: (g + 1) * old][mapping] for g in range(GATES)])


def shared_columns(weight: torch.Tensor, mapping: torch.Tensor, counts: torch.Tensor, blocks: int) -> torch.Tensor:
    """Columns that read hidden units, in `blocks` blocks of `old` (forward and backward outputs): each new
    column is its old unit's column divided by how many new units copy that unit."""
    old = counts.numel()
    parts = [weight[:, b * old: (b + 1) * old][:, mapping] / counts[mapping] for b in range(blocks)]
    return torch.cat(parts, dim=1)


def widen(model: BiLSTMCTC, hidden: int, noise: float = 0.0, seed: int = 0) -> BiLSTMCTC:
    """A copy of `model` with `hidden` units per direction and layer (at least the current number)."""
    old = model.dims.hidden
    if hidden < old:
        raise ValueError(f"--hidden {hidden} is narrower than the model's {old} units")
    generator = torch.Generator().manual_seed(seed)
    mapping = unit_map(old, hidden, generator)
    counts = torch.bincount(mapping, minlength=old).float()
    wide = BiLSTMCTC(replace(model.dims, hidden=hidden))
    source = model.state_dict()
    state = {"feat_mean": source["feat_mean"], "feat_std": source["feat_std"],
             "output.weight": shared_columns(source["output.weight"], mapping, counts, 2),
             "output.bias": source["output.bias"]}
    for name, value in source.items():
        if not name.startswith("lstm."):
            continue
        rows = gate_rows(value, mapping, old)
        if name.startswith("lstm.weight_hh"):
            rows = shared_columns(rows, mapping, counts, 1)
        elif name.startswith("lstm.weight_ih") and not name.startswith("lstm.weight_ih_l0"):  # layer 0 reads features
            rows = shared_columns(rows, mapping, counts, 2)
        if noise and name.startswith("lstm.weight"):
            rows = rows + noise * rows.std() * torch.randn(rows.shape, generator=generator)
        state[name] = rows
    wide.load_state_dict(state)
    return wide.eval()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m acoustic.widen", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="trained model file (as written by recipes/export_model.py)")
    p.add_argument("out", help="where to write the wider model (use it with acoustic.train --init)")
    p.add_argument("--hidden", type=int, required=True, help="LSTM units per direction and layer")
    p.add_argument("--noise", type=float, default=0.0,
                   help="std of the noise added to the weights, relative to each matrix's std (default 0: exact)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        model, vocab, features, _ = load_model(args.model)
        wide = widen(model, args.hidden, args.noise, args.seed)
    except (CheckpointError, ValueError) as error:
        p.error(str(error))
    save_model(args.out, wide, vocab, features)
    print(f"{args.model}: {model.dims.hidden} -> {args.hidden} units, "
          f"{sum(w.numel() for w in wide.parameters()) / 1e6:.2f}M parameters -> {args.out}")


if __name__ == "__main__":
    main()
