"""Features, model shapes, checkpoint round trip and SpecAugment."""
from __future__ import annotations

import pytest
import torch

from acoustic.checkpoint import CheckpointError, load_model, save_model
from acoustic.features import FeatureConfig, LogMel, frames_to_seconds, spec_augment
from acoustic.model import BiLSTMCTC, ModelDims
from lm.vocab import CharVocab


def test_log_mel_shape_and_frame_rate():
    wave = torch.randn(2, 16000)  # 1 s
    feats = LogMel()(wave)
    assert feats.shape == (2, 101, 80)  # samples // hop + 1 frames, 80 mels
    assert torch.isfinite(feats).all()
    assert frames_to_seconds(100) == pytest.approx(1.0)
    assert frames_to_seconds(10, stride=3) == pytest.approx(0.3)


def test_feature_config_rejects_other_rates():
    with pytest.raises(ValueError, match="sample_rate=16000"):
        FeatureConfig(sample_rate=8000)


@pytest.mark.parametrize("frames", [30, 31, 32, 100])
def test_model_output_shapes(frames):
    torch.manual_seed(0)
    model = BiLSTMCTC(ModelDims(hidden=8, layers=2, stack=3)).eval()
    lengths = torch.tensor([frames, frames // 2 + 1])
    log_probs, out_lengths = model(torch.randn(2, frames, 80), lengths)
    assert log_probs.shape == (2, -(-frames // 3), 29)
    assert out_lengths.tolist() == [-(-frames // 3), -(-(frames // 2 + 1) // 3)]
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(2, log_probs.shape[1]), atol=1e-5)


def test_padding_does_not_change_a_shorter_utterance():
    torch.manual_seed(0)
    model = BiLSTMCTC(ModelDims(hidden=8, layers=2)).eval()
    short = torch.randn(1, 40, 80)
    alone, _ = model(short, torch.tensor([40]))
    padded = torch.cat([short, torch.zeros(1, 20, 80)], dim=1)
    batched, _ = model(torch.cat([padded, torch.randn(1, 60, 80)]), torch.tensor([40, 60]))
    assert torch.allclose(alone[0], batched[0, :14], atol=1e-5)


@pytest.mark.parametrize("half", [False, True])
def test_checkpoint_round_trip(tmp_path, half):
    torch.manual_seed(0)
    model = BiLSTMCTC(ModelDims(hidden=8, layers=1)).eval()
    model.feat_mean.fill_(1.5)
    path = tmp_path / "model.pt"
    save_model(path, model, CharVocab(), FeatureConfig(), extra={"training": {"epoch": 3}}, half=half)
    loaded, vocab, features, ckpt = load_model(path)
    assert loaded.dims == model.dims and vocab == CharVocab() and features == FeatureConfig()
    assert ckpt["format_version"] == 1 and ckpt["training"] == {"epoch": 3}
    x = torch.randn(1, 50, 80)
    tolerance = 1e-2 if half else 1e-6
    assert torch.allclose(loaded(x, torch.tensor([50]))[0], model(x, torch.tensor([50]))[0], atol=tolerance)


def test_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="not a minutes model"):
        load_model(tmp_path / "junk.pt")
    torch.save({"format_version": 99}, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="format_version 1"):
        load_model(tmp_path / "future.pt")


def test_spec_augment_is_seeded_and_masks():
    feats = torch.randn(200, 80) + 5
    a = spec_augment(feats, torch.Generator().manual_seed(1))
    b = spec_augment(feats, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert a.shape == feats.shape
    assert (a == 0).any() and not (feats == 0).any()
    assert torch.equal(feats[a != 0], a[a != 0])  # only zeroing, nothing else changes


def test_checkpoint_with_missing_or_mismatched_weights(tmp_path):
    model = BiLSTMCTC(ModelDims(hidden=8, layers=1))
    save_model(tmp_path / "m.pt", model, CharVocab(), FeatureConfig())
    ckpt = torch.load(tmp_path / "m.pt", weights_only=True)
    del ckpt["model_state_dict"]["output.weight"]
    torch.save(ckpt, tmp_path / "missing.pt")
    ckpt.pop("dims")
    torch.save(ckpt, tmp_path / "nodims.pt")
    for name in ("missing.pt", "nodims.pt"):
        with pytest.raises(CheckpointError, match="damaged model file"):
            load_model(tmp_path / name)
