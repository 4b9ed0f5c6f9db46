"""Copy an experiment's best checkpoint into models/NAME/model.pt and print its training history as
Markdown for the model card.

    python recipes/export_model.py exp/encoder models/default --name minutes-bilstm-whisperenc-v1
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch


def history_table(last: Path) -> str:
    state = torch.load(str(last), weights_only=True)["state"]
    rows = ["| epoch | train loss | dev WER | dev CER |", "|---:|---:|---:|---:|"]
    for h in state["history"]:
        wer = "n/a" if h["dev_wer"] is None else f"{h['dev_wer']:.1%}"
        cer = "n/a" if h["dev_cer"] is None else f"{h['dev_cer']:.1%}"
        rows.append(f"| {h['epoch']} | {h['loss']:.3f} | {wer} | {cer} |")
    return "\n".join(rows) + f"\n\nHours of audio seen: {state['hours_seen']:.1f} ({state['epoch']} epochs, {state['step']} steps)."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("exp", type=Path)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--name", required=True, help="model name shown in the minutes' header")
    args = parser.parse_args()
    args.dest.mkdir(parents=True, exist_ok=True)
    best = torch.load(str(args.exp / "best.pt"), weights_only=True)
    torch.save({**best, "name": args.name}, str(args.dest / "model.pt"))
    print(f"exported {args.exp / 'best.pt'} -> {args.dest / 'model.pt'}: {best['dims']}, front end "
          f"{best['features']['kind']}, best epoch {best['training']['epoch']}\n")
    print(history_table(args.exp / "last.pt"))


if __name__ == "__main__":
    main()
