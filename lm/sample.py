"""Generate text from a character RNN LM (a quick look at what it learned).

    python -m lm.sample --lm exp/lm/best.pt --prime "the meeting" --length 200 --temperature 0.8 --seed 0
"""
from __future__ import annotations

import argparse

import torch

from lm.rnnlm import CharRNNLM, load_lm
from lm.vocab import CharVocab


@torch.no_grad()
def generate(model: CharRNNLM, vocab: CharVocab, prime: str = "", length: int = 200, temperature: float = 0.8,
             generator: torch.Generator | None = None, stop_at_end: bool = False) -> str:
    """Continue `prime` (cleaned) by up to `length` characters; temperature 0 is greedy.

    A sampled sentence end (</s>) stops when `stop_at_end`, else becomes a newline and a new sentence starts.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0; got {temperature}")
    model.eval()
    prime = vocab.clean(prime)
    log_probs, state = model(torch.tensor([[0] + vocab.encode(prime)]))  # <s> + prime: (1, 1 + len)
    next_lp, out = log_probs[0, -1], [prime]
    for _ in range(length):
        if temperature == 0:
            token = int(next_lp.argmax())
        else:
            token = int(torch.multinomial((next_lp / temperature).softmax(-1), 1, generator=generator))
        if token == 0 and stop_at_end:
            break
        out.append("\n" if token == 0 else vocab.symbols[token])
        next_lp, state = model.step(torch.tensor([token]), state)
        next_lp = next_lp[0]
    return "".join(out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m lm.sample", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lm", required=True, help="language model file (best.pt from lm.train_lm)")
    p.add_argument("--prime", default="", help="text to continue (normalized like the training text)")
    p.add_argument("--length", type=int, default=200, help="characters to generate")
    p.add_argument("--temperature", type=float, default=0.8, help="0 = greedy; higher = more random")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    model, vocab, _ = load_lm(args.lm)
    generator = torch.Generator().manual_seed(args.seed)
    print(generate(model, vocab, args.prime, args.length, args.temperature, generator))


if __name__ == "__main__":
    main()
