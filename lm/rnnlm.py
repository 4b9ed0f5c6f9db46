"""Character RNN language model over the acoustic model's vocabulary (CharVocab), and its checkpoint.

Index 0 (the CTC blank, which never occurs in text) doubles as the sentence boundary: the model reads
<s> = 0 before the first character and predicts </s> = 0 after the last one.

State of every cell kind is a tuple of tensors shaped (layers, batch, hidden): (h, c) for "lstm" and
"peephole", (h,) for "gru". The beam decoder relies on this (it slices and concatenates on dim 1).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from lm.checkpoints import float_state, read_checkpoint
from lm.vocab import CharVocab

FORMAT_VERSION = 1
KIND = "char-rnnlm"
CELLS = ("lstm", "gru", "peephole")
State = tuple[torch.Tensor, ...]


@dataclass(frozen=True)
class LMDims:
    n_vocab: int = 29
    embed: int = 64
    hidden: int = 512
    layers: int = 1
    cell: str = "lstm"
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}; got {self.cell!r}")
        if min(self.n_vocab, self.embed, self.hidden, self.layers) < 1:
            raise ValueError("n_vocab, embed, hidden and layers must be positive")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {self.dropout}")


class PeepholeLSTMCell(nn.Module):
    """One layer of the Gers & Schmidhuber peephole LSTM with FULL peephole matrices (not diagonal).

    f_t = σ(W_f·[C_{t-1}, h_{t-1}, x_t] + b_f)     i_t = σ(W_i·[C_{t-1}, h_{t-1}, x_t] + b_i)
    C̃_t = tanh(W_C·[h_{t-1}, x_t] + b_C)          C_t = f_t*C_{t-1} + i_t*C̃_t
    o_t = σ(W_o·[C_t, h_{t-1}, x_t] + b_o)         h_t = o_t*tanh(C_t)
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        h, e = hidden_size, input_size
        self.hidden_size = h
        self.W_f = nn.Parameter(torch.empty(h, 2 * h + e))  # columns: [C_{t-1}, h_{t-1}, x_t]
        self.W_i = nn.Parameter(torch.empty(h, 2 * h + e))  # columns: [C_{t-1}, h_{t-1}, x_t]
        self.W_C = nn.Parameter(torch.empty(h, h + e))  # columns: [h_{t-1}, x_t]
        self.W_o = nn.Parameter(torch.empty(h, 2 * h + e))  # columns: [C_t, h_{t-1}, x_t]
        self.b_f, self.b_i, self.b_C, self.b_o = (nn.Parameter(torch.zeros(h)) for _ in range(4))
        bound = 1.0 / math.sqrt(h)
        for w in (self.W_f, self.W_i, self.W_C, self.W_o):
            nn.init.uniform_(w, -bound, bound)
        nn.init.ones_(self.b_f)  # remember by default early in training

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """x (B, T, E), state (h, c) each (B, H) -> outputs (B, T, H), (h_T, c_T)."""
        H = self.hidden_size
        # Split each gate's matrix by the block of the concatenation it multiplies; same math, fewer matmuls.
        w_x = torch.cat([self.W_f[:, 2 * H:], self.W_i[:, 2 * H:], self.W_C[:, H:], self.W_o[:, 2 * H:]])  # (4H, E)
        w_h = torch.cat([self.W_f[:, H:2 * H], self.W_i[:, H:2 * H], self.W_C[:, :H], self.W_o[:, H:2 * H]])  # (4H, H)
        w_c = torch.cat([self.W_f[:, :H], self.W_i[:, :H]])  # (2H, H): C_{t-1} into f and i
        w_co = self.W_o[:, :H]  # (H, H): C_t into o
        bias = torch.cat([self.b_f, self.b_i, self.b_C, self.b_o])
        x_proj = nn.functional.linear(x, w_x, bias)  # (B, T, 4H), all time steps at once
        h, c = state
        outputs = []
        # unbind, not x_proj[:, t]: indexing's backward would fill a whole (B, T, 4H) zero tensor per step.
        w_h, w_c, w_co = w_h.T.contiguous(), w_c.T.contiguous(), w_co.T.contiguous()  # right operands
        for x_t in x_proj.unbind(1):
            # chunk, not slices, for the same reason: its backward is one cat.
            g_f, g_i, g_C, g_o = (x_t + h @ w_h).chunk(4, dim=1)  # (B, H) each
            p_f, p_i = (c @ w_c).chunk(2, dim=1)
            f = torch.sigmoid(g_f + p_f)
            i = torch.sigmoid(g_i + p_i)
            c = f * c + i * torch.tanh(g_C)
            o = torch.sigmoid(g_o + c @ w_co)
            h = o * torch.tanh(c)
            outputs.append(h)
        return torch.stack(outputs, dim=1), (h, c)


class PeepholeLSTM(nn.Module):
    """A stack of PeepholeLSTMCell layers with nn.LSTM's batch_first interface and (h, c) state."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        sizes = [input_size] + [hidden_size] * (num_layers - 1)
        self.cells = nn.ModuleList(PeepholeLSTMCell(s, hidden_size) for s in sizes)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """x (B, T, E), state (h, c) each (layers, B, H) or None -> (B, T, H), (h, c)."""
        if state is None:
            zeros = x.new_zeros(len(self.cells), x.shape[0], self.cells[0].hidden_size)
            state = (zeros, zeros)
        hs, cs = [], []
        for layer, cell in enumerate(self.cells):
            if layer > 0:
                x = self.dropout(x)
            x, (h, c) = cell(x, (state[0][layer], state[1][layer]))
            hs.append(h)
            cs.append(c)
        return x, (torch.stack(hs), torch.stack(cs))


class CharRNNLM(nn.Module):
    """Embedding -> RNN (lstm | gru | peephole) -> dropout -> linear -> log-softmax over the vocabulary."""

    def __init__(self, dims: LMDims) -> None:
        super().__init__()
        self.dims = dims
        self.embedding = nn.Embedding(dims.n_vocab, dims.embed)
        between = dims.dropout if dims.layers > 1 else 0.0
        if dims.cell == "lstm":
            self.rnn = nn.LSTM(dims.embed, dims.hidden, dims.layers, batch_first=True, dropout=between)
        elif dims.cell == "gru":
            self.rnn = nn.GRU(dims.embed, dims.hidden, dims.layers, batch_first=True, dropout=between)
        else:
            self.rnn = PeepholeLSTM(dims.embed, dims.hidden, dims.layers, dropout=between)
        self.dropout = nn.Dropout(dims.dropout)
        self.output = nn.Linear(dims.hidden, dims.n_vocab)

    def forward(self, tokens: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """tokens (B, T) int64, state or None (zeros) -> log-probs of the next token (B, T, V), new state."""
        x = self.dropout(self.embedding(tokens))  # (B, T, E)
        if self.dims.cell == "gru":
            out, h = self.rnn(x, None if state is None else state[0])
            new_state: State = (h,)
        else:
            out, new_state = self.rnn(x, state)
            new_state = tuple(new_state)
        return self.output(self.dropout(out)).log_softmax(dim=-1), new_state

    def step(self, tokens: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """One decoding step: tokens (B,), state -> log-probs of the next token (B, V), new state."""
        log_probs, state = self(tokens[:, None], state)  # (B,) -> (B, 1): a length-one sequence
        return log_probs[:, 0], state

    @torch.no_grad()
    def score(self, text: str, vocab: CharVocab | None = None) -> float:
        """Total log-prob (nats) of one sentence, </s> included; text is cleaned with CharVocab.clean."""
        vocab = vocab or CharVocab()
        ids = vocab.encode(vocab.clean(text))
        tokens = torch.tensor([[0] + ids])  # <s> c1 ... cn
        targets = torch.tensor([ids + [0]])  # c1 ... cn </s>
        log_probs, _ = self(tokens)
        return float(log_probs.gather(-1, targets[..., None]).sum())


class LMCheckpointError(ValueError):
    """A language-model file that is missing, corrupt or of an unknown format."""


def save_lm(path: str | Path, model: CharRNNLM, vocab: CharVocab | None = None, half: bool = False,
            extra: dict | None = None) -> None:
    """Write {"format_version", "kind", "dims", "model_state_dict", "vocab", **extra}; `half` stores fp16."""
    vocab = vocab or CharVocab()
    state = {k: (v.half() if half and v.is_floating_point() else v) for k, v in model.state_dict().items()}
    torch.save({"format_version": FORMAT_VERSION, "kind": KIND, "dims": asdict(model.dims),
                "model_state_dict": state, "vocab": list(vocab.symbols), **(extra or {})}, str(path))


def load_lm(path: str | Path) -> tuple[CharRNNLM, CharVocab, dict]:
    """Read an LM file -> (model in eval mode, fp32; vocab; the whole checkpoint dict)."""
    path = Path(path)
    ckpt = read_checkpoint(path, LMCheckpointError, "language model")
    if ckpt.get("kind") != KIND:
        raise LMCheckpointError(f"not a minutes language model file: {path} (expected kind {KIND!r})")
    if ckpt.get("format_version") != FORMAT_VERSION:
        raise LMCheckpointError(f"unsupported LM format in {path}: expected format_version {FORMAT_VERSION}, "
                                f"got {ckpt.get('format_version')!r}")
    try:
        model = CharRNNLM(LMDims(**ckpt["dims"]))
        model.load_state_dict(float_state(ckpt["model_state_dict"]))
        vocab = CharVocab(tuple(ckpt["vocab"]))
    except (KeyError, TypeError, RuntimeError, ValueError) as error:
        raise LMCheckpointError(f"damaged LM file {path}: {type(error).__name__}: {error}".splitlines()[0]) from error
    if len(vocab) != model.dims.n_vocab:
        raise LMCheckpointError(f"damaged LM file {path}: vocabulary does not match the output layer")
    return model.eval(), vocab, ckpt
