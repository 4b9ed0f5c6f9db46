"""Widening a trained BiLSTM-CTC (acoustic.widen): the wider model computes the same thing, then can learn more."""
from __future__ import annotations

import pytest
import torch

from acoustic.checkpoint import load_model, save_model
from acoustic.features import FeatureConfig
from acoustic.model import BiLSTMCTC, ModelDims
from acoustic.widen import main, widen
from lm.vocab import CharVocab


def trained_like(hidden: int = 8, layers: int = 2, stack: int = 2) -> BiLSTMCTC:
    """A small model with random (not initial) weights and CMVN, as a trained one would have."""
    torch.manual_seed(0)
    model = BiLSTMCTC(ModelDims(n_input=6, stack=stack, hidden=hidden, layers=layers))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.5)
        model.feat_mean.normal_()
        model.feat_std.uniform_(0.5, 2.0)
    return model.eval()


@pytest.mark.parametrize("layers", [1, 3])
def test_wider_model_gives_the_same_log_probs(layers):
    model = trained_like(layers=layers)
    wide = widen(model, 13)
    assert wide.dims.hidden == 13 and wide.lstm.weight_hh_l0.shape == (4 * 13, 13)
    x, lengths = torch.randn(3, 40, 6), torch.tensor([40, 31, 7])
    with torch.no_grad():
        for exact in (True, False):
            before, n1 = model(x, lengths, exact=exact)
            after, n2 = wide(x, lengths, exact=exact)
            assert torch.equal(n1, n2)
            torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)


def test_noise_moves_the_copies_apart_a_little():
    model = trained_like()
    exact, noisy = widen(model, 12), widen(model, 12, noise=0.01, seed=1)
    x, lengths = torch.randn(2, 30, 6), torch.tensor([30, 30])
    with torch.no_grad():
        a, b, c = model(x, lengths)[0], exact(x, lengths)[0], noisy(x, lengths)[0]
    assert 0 < (c - a).abs().max() < 0.5 and (b - a).abs().max() < 1e-5


def test_cannot_narrow():
    with pytest.raises(ValueError, match="narrower"):
        widen(trained_like(hidden=8), 6)


def test_command_writes_a_loadable_wider_model(tmp_path, capsys):
    source = tmp_path / "model.pt"
    save_model(source, trained_like(), CharVocab(), FeatureConfig())
    main([str(source), str(tmp_path / "wide.pt"), "--hidden", "10"])
    wide, _, features, _ = load_model(tmp_path / "wide.pt")
    assert wide.dims.hidden == 10 and wide.dims.stack == 2 and features == FeatureConfig()
    assert "8 -> 10 units" in capsys.readouterr().out
    with pytest.raises(SystemExit) as error:
        main([str(source), str(tmp_path / "narrow.pt"), "--hidden", "4"])
    assert error.value.code == 2 and "narrower" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(tmp_path / "missing.pt"), str(tmp_path / "x.pt"), "--hidden", "10"])
    assert "missing.pt" in capsys.readouterr().err and not (tmp_path / "x.pt").exists()
