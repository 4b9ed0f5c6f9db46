"""Copy an experiment's best checkpoint into models/NAME/model.pt and print its training history as
Markdown for the model card. With --average-last the weights are the mean of best.pt's and last.pt's (checkpoint
averaging, for a run whose dev score has plateaued; session 9's candidate, bench/RESULTS.md).

    python recipes/export_model.py exp/encoder models/default --name minutes-bilstm-whisperenc-v1
    python recipes/export_model.py exp/enc_wide7 exp/enc_wide7/avg --name minutes-bilstm-whisperenc-v5avg --average-last
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def history_table(last: Path) -> str:
    """One row per epoch: loss, the mean dev WER/CER and, with several dev sets, each set's WER / CER."""
    state = torch.load(str(last), weights_only=True)["state"]
    sets = list(state["history"][-1].get("dev", {}))
    sets = sets if len(sets) > 1 else []
    head = ["epoch", "train loss", "dev WER", "dev CER"] + [f"{Path(name).parent.name}/{Path(name).stem} WER / CER"
                                                            for name in sets]
    rows = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for h in state["history"]:
        cells = [str(h["epoch"]), f"{h['loss']:.3f}", percent(h["dev_wer"]), percent(h["dev_cer"])]
        cells += [" / ".join(map(percent, h["dev"][name])) if name in h.get("dev", {}) else "n/a" for name in sets]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + f"\n\nHours of audio seen: {state['hours_seen']:.1f} ({state['epoch']} epochs, {state['step']} steps)."


def averaged(best: dict, last: Path) -> dict:
    """`best` (an exported checkpoint) with its weights replaced by their mean with the run's `last.pt` model,
    stored in best's dtypes."""
    run = torch.load(str(last), weights_only=True)
    state = {k: ((v.float() + run["model"][k].float()) / 2).to(v.dtype) if v.is_floating_point() else v
             for k, v in best["model_state_dict"].items()}
    epochs = (best["training"]["epoch"], run["state"]["epoch"])
    return {**best, "model_state_dict": state, "training": {**best["training"], "averaged_epochs": epochs}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("exp", type=Path)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--name", required=True, help="model name shown in the minutes' header")
    parser.add_argument("--average-last", action="store_true", help="average best.pt's weights with last.pt's")
    args = parser.parse_args()
    args.dest.mkdir(parents=True, exist_ok=True)
    best = torch.load(str(args.exp / "best.pt"), weights_only=True)
    if args.average_last:
        best = averaged(best, args.exp / "last.pt")
    torch.save({**best, "name": args.name}, str(args.dest / "model.pt"))
    print(f"exported {args.exp / 'best.pt'} -> {args.dest / 'model.pt'}: {best['dims']}, front end "
          f"{best['features']['kind']}, best epoch {best['training']['epoch']}"
          f"{', averaged with last.pt' if args.average_last else ''}\n")
    print(history_table(args.exp / "last.pt"))


if __name__ == "__main__":
    main()
