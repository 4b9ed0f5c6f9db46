"""Greedy CTC decoding."""
from __future__ import annotations

import torch


def greedy_ids(log_probs: torch.Tensor, blank: int = 0) -> list[int]:
    """Best path of one utterance's log-probs (T, vocab): argmax, repeats merged, blanks removed."""
    best = log_probs.argmax(dim=-1).tolist()
    out, previous = [], blank
    for token in best:
        if token != previous and token != blank:
            out.append(token)
        previous = token
    return out
