"""Character RNN LM: the peephole equations by hand, shapes, step == forward, checkpoints, overfitting, training."""
from __future__ import annotations

import gzip
import math

import pytest
import torch

from lm.rnnlm import CELLS, CharRNNLM, LMCheckpointError, LMDims, PeepholeLSTMCell, load_lm, save_lm
from lm.sample import generate
from lm.train_lm import TrainLMConfig, as_rows, compute_loss, evaluate, main, prepare_lines, to_stream
from lm.vocab import CharVocab

torch.set_num_threads(1)


def test_dims_validate_cell_names_the_choices():
    with pytest.raises(ValueError, match="lstm, gru, peephole"):
        LMDims(cell="transformer")
    assert LMDims() == LMDims(n_vocab=29, embed=64, hidden=512, layers=1, cell="lstm", dropout=0.1)


def peephole_by_hand(cell: PeepholeLSTMCell, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The cell's equations, one time step and one unit vector at a time: x (T, E), h, c (H,) -> (T, H), h, c."""
    expected = []
    for xt in x:
        f = torch.sigmoid(cell.W_f @ torch.cat([c, h, xt]) + cell.b_f)
        i = torch.sigmoid(cell.W_i @ torch.cat([c, h, xt]) + cell.b_i)
        c_tilde = torch.tanh(cell.W_C @ torch.cat([h, xt]) + cell.b_C)
        c = f * c + i * c_tilde
        o = torch.sigmoid(cell.W_o @ torch.cat([c, h, xt]) + cell.b_o)
        h = o * torch.tanh(c)
        expected.append(h)
    return torch.stack(expected), h, c


def small_peephole_cell() -> PeepholeLSTMCell:
    """E=2, H=3 with fixed small weights, different for every gate."""
    cell = PeepholeLSTMCell(2, 3)
    with torch.no_grad():
        for k, name in enumerate(("W_f", "W_i", "W_C", "W_o")):
            w = getattr(cell, name)
            w.copy_(torch.linspace(-0.6, 0.6, w.numel()).view_as(w) * (1 + 0.3 * k) + 0.05 * k)
        for k, name in enumerate(("b_f", "b_i", "b_C", "b_o")):
            getattr(cell, name).copy_(torch.tensor([0.1, -0.2, 0.3]) * (k + 1))
    return cell


def test_peephole_cell_matches_the_equations_by_hand():
    E, H = 2, 3
    cell = small_peephole_cell()
    x = torch.tensor([[[0.5, -1.0], [1.5, 0.25]]])  # (B=1, T=2, E)
    h0, c0 = torch.tensor([[0.2, -0.1, 0.05]]), torch.tensor([[-0.3, 0.4, 0.1]])
    out, (h_T, c_T) = cell(x, (h0, c0))
    expected, h, c = peephole_by_hand(cell, x[0], h0[0], c0[0])
    torch.testing.assert_close(out[0], expected)
    torch.testing.assert_close(h_T[0], h)
    torch.testing.assert_close(c_T[0], c)
    assert cell.W_f.shape == (H, 2 * H + E)  # full peephole matrices, not diagonal


def test_peephole_cell_gradients_match_the_equations_by_hand():
    """The fast loop (fused projections, unbind/chunk) back-propagates exactly like the plain equations."""
    cell = small_peephole_cell()
    torch.manual_seed(0)
    x, h0, c0 = torch.randn(1, 4, 2), torch.randn(1, 3), torch.randn(1, 3)
    weights = torch.randn(4, 3)  # a loss that weighs every output differently

    def grads(outputs: torch.Tensor) -> list[torch.Tensor]:
        return list(torch.autograd.grad((outputs * weights).sum(), list(cell.parameters())))

    fast = grads(cell(x, (h0, c0))[0][0])
    by_hand = grads(peephole_by_hand(cell, x[0], h0[0], c0[0])[0])
    for a, b in zip(fast, by_hand):
        torch.testing.assert_close(a, b)
    assert all(float(g.abs().sum()) > 0 for g in fast)


@pytest.mark.parametrize("cell", CELLS)
def test_shapes_and_step_equals_forward(cell):
    torch.manual_seed(0)
    model = CharRNNLM(LMDims(embed=8, hidden=12, layers=2, cell=cell)).eval()
    tokens = torch.randint(0, 29, (3, 6))
    log_probs, state = model(tokens)
    assert log_probs.shape == (3, 6, 29)
    assert all(s.shape == (2, 3, 12) for s in state) and len(state) == (1 if cell == "gru" else 2)
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(3, 6))
    step_state = None
    for t in range(6):
        step_lp, step_state = model.step(tokens[:, t], step_state)
        assert step_lp.shape == (3, 29)
        torch.testing.assert_close(step_lp, log_probs[:, t], atol=1e-5, rtol=1e-5)
    for a, b in zip(step_state, state):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_score_is_the_sum_of_next_character_log_probs():
    torch.manual_seed(0)
    model = CharRNNLM(LMDims(embed=8, hidden=12)).eval()
    vocab = CharVocab()
    ids = vocab.encode("hi there")
    with torch.no_grad():
        log_probs, _ = model(torch.tensor([[0] + ids]))
    expected = sum(float(log_probs[0, t, tok]) for t, tok in enumerate(ids + [0]))
    assert model.score("Hi, there!") == pytest.approx(expected, abs=1e-4)


def test_checkpoint_round_trip_and_fp16(tmp_path):
    torch.manual_seed(0)
    model = CharRNNLM(LMDims(embed=8, hidden=12, cell="peephole")).eval()
    tokens = torch.randint(0, 29, (2, 5))
    save_lm(tmp_path / "lm.pt", model, extra={"training": {"step": 7}})
    loaded, vocab, ckpt = load_lm(tmp_path / "lm.pt")
    assert loaded.dims == model.dims and vocab == CharVocab() and ckpt["training"]["step"] == 7
    assert ckpt["kind"] == "char-rnnlm" and ckpt["format_version"] == 1 and not loaded.training
    torch.testing.assert_close(loaded(tokens)[0], model(tokens)[0])
    save_lm(tmp_path / "half.pt", model, half=True)
    raw = torch.load(tmp_path / "half.pt", weights_only=True)
    assert raw["model_state_dict"]["output.weight"].dtype == torch.float16
    half, _, _ = load_lm(tmp_path / "half.pt")
    assert half.output.weight.dtype == torch.float32
    torch.testing.assert_close(half(tokens)[0], model(tokens)[0], atol=2e-2, rtol=0)


def test_bad_checkpoint_files_raise_value_error(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        load_lm(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file at all")
    with pytest.raises(LMCheckpointError, match="not a minutes language model"):
        load_lm(tmp_path / "junk.pt")
    model = CharRNNLM(LMDims(embed=4, hidden=4))
    save_lm(tmp_path / "lm.pt", model)
    ckpt = torch.load(tmp_path / "lm.pt", weights_only=True)
    torch.save({**ckpt, "format_version": 2}, tmp_path / "v2.pt")
    with pytest.raises(ValueError, match="format_version 1"):
        load_lm(tmp_path / "v2.pt")
    torch.save({**ckpt, "kind": None}, tmp_path / "acoustic.pt")
    with pytest.raises(ValueError, match="char-rnnlm"):
        load_lm(tmp_path / "acoustic.pt")
    torch.save({**ckpt, "dims": {**ckpt["dims"], "hidden": 8}}, tmp_path / "damaged.pt")
    with pytest.raises(ValueError, match="damaged"):
        load_lm(tmp_path / "damaged.pt")


SENTENCES = ["the cat sat on the mat", "we meet at noon today", "a dog ran in the park"]


def test_overfit_tiny_corpus_and_greedy_sample_reproduces_a_sentence():
    torch.manual_seed(0)
    vocab = CharVocab()
    # three rows, each starting with a different sentence: every sentence is seen from a fresh state
    stream = torch.stack([to_stream(SENTENCES[k:] + SENTENCES[:k], vocab).long() for k in range(3)])
    x, y = stream[:, :-1], stream[:, 1:]
    model = CharRNNLM(LMDims(embed=16, hidden=64, dropout=0.0))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        loss, _ = compute_loss(model, x, y, None)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        loss, _ = compute_loss(model, x, y, None)
    assert math.exp(loss.item()) < 1.3  # per-character perplexity (only sentence starts are uncertain)
    text = generate(model, vocab, length=60, temperature=0.0, stop_at_end=True)
    assert text in SENTENCES
    for sentence in SENTENCES:  # primed with its first word, greedy decoding completes each sentence
        assert generate(model, vocab, prime=sentence.split()[0].title(), length=60, temperature=0.0,
                        stop_at_end=True) == sentence
    sample = generate(model, vocab, length=40, temperature=0.8, generator=torch.Generator().manual_seed(0))
    assert len(sample) == 40 and set(sample) <= set("abcdefghijklmnopqrstuvwxyz' \n")
    assert model.score("the cat sat on the mat") > model.score("the mat sat on the cat") + 5


def test_prepare_lines_drops_digit_lines_and_cleans():
    lines = prepare_lines(iter(["Hello, World!\n", "I have 3 cats\n", "  \n", "Café—au lait\n"]), CharVocab())
    assert lines == ["hello world", "cafe au lait"]
    assert to_stream(lines[:1], CharVocab()).tolist() == [0, 10, 7, 14, 14, 17, 1, 25, 17, 20, 14, 6, 0]
    rows = as_rows(torch.arange(20), 3, 4)
    assert rows.tolist()[1] == [6, 7, 8, 9, 10, 11]
    with pytest.raises(ValueError, match="too small"):
        as_rows(torch.arange(20), 4, 5)


@pytest.mark.parametrize("bptt", [4, 64])
def test_evaluate_is_the_mean_next_character_nll(bptt):
    torch.manual_seed(0)
    model = CharRNNLM(LMDims(embed=8, hidden=12)).eval()
    heldout = to_stream(["we agreed", "ship it"], CharVocab())  # 19 tokens: 18 predictions
    config = TrainLMConfig(text=("unused",), exp="unused", bptt=bptt)
    ppl, bpc = evaluate(model, heldout, config)
    with torch.no_grad():
        stream = heldout.long()[None]
        log_probs, _ = model(stream[:, :-1])
        nats = -log_probs.gather(-1, stream[:, 1:, None]).mean().item()
    if bptt == 64:  # one window over the whole stream: exactly the same numbers
        assert ppl == pytest.approx(math.exp(nats), rel=1e-5) and bpc == pytest.approx(nats / math.log(2), rel=1e-5)
    else:  # 4 rows of 4 predictions (stream split, no context across rows): close, not equal
        assert ppl == pytest.approx(math.exp(nats), rel=0.1)
    assert not model.training


def test_train_lm_smoke_writes_checkpoints_and_resumes(tmp_path):
    corpus = tmp_path / "a.txt.gz"
    with gzip.open(corpus, "wt", encoding="utf-8") as f:
        f.write("\n".join(SENTENCES * 20 + ["Room 101 is here"]) + "\n")
    manifest = tmp_path / "m.tsv"
    manifest.write_text("path\ttext\tspeaker\tduration\na.wav\tThe \"minutes\" are ready\tS1\t1.5\n")
    exp = tmp_path / "exp"
    args = ["--text", str(corpus), "--extra-manifest", str(manifest), "--exp", str(exp), "--cell", "gru",
            "--embed", "8", "--hidden", "16", "--batch", "4", "--bptt", "16", "--eval-every", "2",
            "--heldout-every", "10", "--eval-chars", "500"]
    main(args + ["--steps", "3"])
    model, _, ckpt = load_lm(exp / "best.pt")
    assert model.dims.cell == "gru" and model.dims.hidden == 16
    assert ckpt["model_state_dict"]["output.weight"].dtype == torch.float16
    last = torch.load(exp / "last.pt", weights_only=True)
    assert last["state"]["step"] == 3 and [h["step"] for h in last["state"]["history"]] == [2, 3]
    assert all(h["heldout_ppl"] > 1 and h["heldout_bpc"] > 0 for h in last["state"]["history"])
    main(args + ["--steps", "5"])
    last = torch.load(exp / "last.pt", weights_only=True)
    assert last["state"]["step"] == 5 and [h["step"] for h in last["state"]["history"]] == [2, 3, 4, 5]
    log = (exp / "train.log").read_text()
    assert "resumed from" in log and "at step 3" in log and "held-out ppl" in log
    with pytest.raises(ValueError, match="other dimensions"):
        main(args + ["--hidden", "32", "--steps", "6"])  # argparse: the later --hidden wins


def test_train_lm_continues_from_an_lm_file(tmp_path):
    corpus = tmp_path / "a.txt"
    corpus.write_text("\n".join(SENTENCES * 20) + "\n")
    start = CharRNNLM(LMDims(n_vocab=len(CharVocab()), embed=8, hidden=16, cell="gru"))
    save_lm(tmp_path / "start.pt", start)
    args = ["--text", str(corpus), "--cell", "gru", "--embed", "8", "--hidden", "16", "--batch", "4", "--bptt",
            "16", "--eval-every", "1", "--heldout-every", "10", "--eval-chars", "200", "--steps", "1"]
    # a learning rate too small to move the weights: the run's model is the start file's
    main(args + ["--exp", str(tmp_path / "a"), "--init", str(tmp_path / "start.pt"), "--peak-lr", "1e-12"])
    trained, _, _ = load_lm(tmp_path / "a" / "best.pt")
    for name, value in start.state_dict().items():
        torch.testing.assert_close(trained.state_dict()[name], value.half().float())
    assert "weights from" in (tmp_path / "a" / "train.log").read_text()
    with pytest.raises(ValueError, match="other dimensions"):
        main(args + ["--exp", str(tmp_path / "b"), "--init", str(tmp_path / "start.pt"), "--hidden", "32"])


def test_lm_cells_bench_prints_a_row_per_cell(capsys):
    from bench.lm_cells import main as bench_main

    bench_main(["--batch", "2", "--bptt", "4", "--hidden", "8", "--repeats", "1"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "---" not in line]
    assert [row.split(" | ")[0].strip("| ") for row in rows[1:]] == list(CELLS)
    assert rows[1].endswith("| 1.00 |")  # the LSTM is the reference
