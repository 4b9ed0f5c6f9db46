"""Training: an overfit-one-batch test proves the model learns; the recipe runs, resumes and validates manifests."""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from acoustic.checkpoint import save_model
from acoustic.data import ManifestError, collate, read_manifest
from acoustic.features import FeatureConfig, LogMel
from acoustic.model import BiLSTMCTC, ModelDims
from acoustic.train import TrainConfig, autocast, compute_loss, main, mean_scores, parse_args
from lm.decode import greedy_ids
from lm.vocab import CharVocab

ROOT = Path(__file__).resolve().parents[1]

TONES = {"a": 300.0, "b": 700.0, "c": 1200.0, " ": None}


def tone_utterance(text: str, seconds_per_char: float = 0.2) -> np.ndarray:
    """A waveform with one tone per character (silence for space): a toy 'speech' with a known transcript."""
    t = np.arange(int(16000 * seconds_per_char)) / 16000
    parts = [np.zeros_like(t) if TONES[c] is None else 0.5 * np.sin(2 * np.pi * TONES[c] * t) for c in text]
    return np.concatenate([np.zeros(1600), *parts, np.zeros(1600)]).astype(np.float32)


def test_overfit_one_batch():
    torch.manual_seed(0)
    vocab = CharVocab()
    texts = ["abc", "cab", "ba ca"]
    feats = [LogMel()(torch.from_numpy(tone_utterance(t))[None])[0] for t in texts]
    x, lengths = collate(feats)
    model = BiLSTMCTC(ModelDims(hidden=32, layers=1, dropout=0.0))
    frames = torch.cat(feats)
    model.feat_mean.copy_(frames.mean(0))
    model.feat_std.copy_(frames.std(0))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    targets = [vocab.encode(t) for t in texts]
    losses = []
    for _ in range(150):
        loss = compute_loss(model, x, lengths, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
    model.eval()
    log_probs, out_lengths = model(x, lengths)
    decoded = [vocab.decode(greedy_ids(log_probs[i, :out_lengths[i]])) for i in range(len(texts))]
    assert decoded == texts


def write_manifest(folder, rows, header="path\ttext\tspeaker\tduration"):
    path = folder / "manifest.tsv"
    path.write_text(header + "\n" + "".join("\t".join(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def tone_manifest(tmp_path):
    rows = []
    for i, text in enumerate(["abc", "cab", "ba ca", "cc ab"] * 2):
        audio = tone_utterance(text)
        sf.write(tmp_path / f"u{i}.wav", audio, 16000)
        rows.append((f"u{i}.wav", text.upper(), "spk", f"{audio.size / 16000:.3f}"))
    return write_manifest(tmp_path, rows)


def test_recipe_trains_saves_and_resumes(tone_manifest, tmp_path):
    exp = tmp_path / "exp"
    args = ["--train", str(tone_manifest), "--dev", str(tone_manifest), "--exp", str(exp), "--hidden", "16",
            "--layers", "1", "--max-frames", "400", "--warmup-steps", "5", "--threads", "1"]
    main(args + ["--epochs", "1"])
    first = torch.load(exp / "last.pt", weights_only=True)["state"]
    assert first["epoch"] == 1 and first["step"] > 0 and (exp / "best.pt").is_file()
    main(args + ["--epochs", "2"])
    second = torch.load(exp / "last.pt", weights_only=True)["state"]
    assert second["epoch"] == 2 and second["step"] == 2 * first["step"]
    assert [h["epoch"] for h in second["history"]] == [1, 2]
    assert all(math.isfinite(h["loss"]) and 0 <= h["dev_cer"] for h in second["history"])
    assert "resumed from" in (exp / "train.log").read_text()


def first_two_rows(manifest, folder):
    """A second manifest, in its own folder, of the first two utterances of `manifest` (absolute paths)."""
    folder.mkdir()
    rows = [line.split("\t") for line in manifest.read_text(encoding="utf-8").splitlines()[1:3]]
    return write_manifest(folder, [(str(manifest.parent / path), *rest) for path, *rest in rows])


def test_each_dev_set_is_scored_and_best_is_chosen_on_their_mean_cer(tone_manifest, tmp_path):
    short = first_two_rows(tone_manifest, tmp_path / "short")
    exp = tmp_path / "exp"
    main(["--train", str(tone_manifest), "--dev", str(tone_manifest), "--dev", str(short), "--exp", str(exp),
          "--hidden", "16", "--layers", "1", "--max-frames", "400", "--warmup-steps", "5", "--threads", "1",
          "--epochs", "2"])
    state = torch.load(exp / "last.pt", weights_only=True)["state"]
    for h in state["history"]:
        assert set(h["dev"]) == {str(tone_manifest), str(short)}
        assert h["dev_cer"] == pytest.approx(sum(cer for _, cer in h["dev"].values()) / 2)
    assert state["best_cer"] == min(h["dev_cer"] for h in state["history"])
    assert (exp / "train.log").read_text().count(f"dev {short}: WER") == 2
    table = export_history_table(exp / "last.pt")
    assert "| short/manifest WER / CER |" in table and len(table.splitlines()) == 2 + 2 + 2


def test_features_are_cached_per_manifest(tone_manifest, tmp_path):
    """Adding a manifest to a recipe computes only that manifest's features; the others come from the cache."""
    more = first_two_rows(tone_manifest, tmp_path / "more")
    cache = tmp_path / "cache"
    common = ["--hidden", "16", "--layers", "1", "--max-frames", "400", "--threads", "1", "--epochs", "1",
              "--cache-dir", str(cache)]
    main(["--train", str(tone_manifest), "--exp", str(tmp_path / "a")] + common)
    (first,) = cache.glob("feats-*.pt")
    stamp = first.stat().st_mtime_ns
    main(["--train", str(tone_manifest), str(more), "--exp", str(tmp_path / "b")] + common)
    assert len(list(cache.glob("feats-*.pt"))) == 2 and first.stat().st_mtime_ns == stamp


def export_recipe():
    spec = importlib.util.spec_from_file_location("export_model", ROOT / "recipes" / "export_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def export_history_table(last):
    return export_recipe().history_table(last)


def test_export_averages_best_and_last_weights(tmp_path):
    best = {"model_state_dict": {"w": torch.tensor([1.0, 3.0], dtype=torch.float16), "n": torch.tensor(5)},
            "training": {"epoch": 11}}
    torch.save({"model": {"w": torch.tensor([3.0, 5.0]), "n": torch.tensor(7)}, "state": {"epoch": 15}},
               tmp_path / "last.pt")
    out = export_recipe().averaged(best, tmp_path / "last.pt")
    assert out["model_state_dict"]["w"].tolist() == [2.0, 4.0] and out["model_state_dict"]["w"].dtype == torch.float16
    assert out["model_state_dict"]["n"].item() == 5  # integer buffers are not averaged
    assert out["training"] == {"epoch": 11, "averaged_epochs": (11, 15)}


def test_mean_scores_weighs_each_dev_set_once():
    assert mean_scores({}) == (None, None)
    assert mean_scores({"a": (0.5, 0.2), "b": (0.1, 0.4)}) == pytest.approx((0.3, 0.3))


@pytest.mark.parametrize("chunk", [0, 4])
def test_bf16_mixed_precision_trains(tone_manifest, tmp_path, chunk):
    exp = tmp_path / "exp"
    main(["--train", str(tone_manifest), "--exp", str(exp), "--hidden", "16", "--layers", "1", "--max-frames", "400",
          "--warmup-steps", "5", "--threads", "1", "--epochs", "2", "--amp", "bf16", "--chunk", str(chunk),
          "--lookahead", "2" if chunk else "0"])
    history = torch.load(exp / "last.pt", weights_only=True)["state"]["history"]
    assert len(history) == 2 and all(math.isfinite(h["loss"]) for h in history)
    assert torch.load(exp / "last.pt", weights_only=True)["config"]["amp"] == "bf16"
    with autocast(TrainConfig(train=(str(tone_manifest),), dev=(), exp=str(exp), amp="bf16")):
        log_probs, _ = BiLSTMCTC(ModelDims(hidden=16, layers=1))(torch.randn(1, 30, 80), torch.tensor([30]))
    assert log_probs.dtype == torch.bfloat16  # the LSTM really ran in bfloat16


def test_recipe_reports_bad_input_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit, match="manifest not found"):
        main(["--train", str(tmp_path / "missing.tsv"), "--exp", str(tmp_path / "exp")])
    with pytest.raises(SystemExit):
        main(["--train", str(tmp_path / "missing.tsv"), "--exp", str(tmp_path / "exp"), "--amp", "fp16"])
    assert "--amp fp16 needs a CUDA device" in capsys.readouterr().err


def test_manifest_validation(tmp_path):
    sf.write(tmp_path / "a.wav", np.zeros(1600, np.float32), 16000)
    assert read_manifest(write_manifest(tmp_path, [("a.wav", "HI", "s", "0.1")]))[0].text == "HI"
    cases = {
        "audio file not found": [("missing.wav", "HI", "s", "0.1")],
        "empty text": [("a.wav", " ", "s", "0.1")],
        "duration is not a number": [("a.wav", "HI", "s", "long")],
        "expected 4 tab-separated columns": [("a.wav", "HI")],
        "no utterances": [],
    }
    for message, rows in cases.items():
        with pytest.raises(ManifestError, match=message):
            read_manifest(write_manifest(tmp_path, rows))
    with pytest.raises(ManifestError, match="header must be"):
        read_manifest(write_manifest(tmp_path, [("a.wav", "HI", "s", "0.1")], header="file\ttext"))
    with pytest.raises(ManifestError, match="manifest not found"):
        read_manifest(tmp_path / "nope.tsv")


def test_init_checkpoint_sets_the_model_shape(tmp_path):
    """--init's stacking, width and depth win over the defaults: the length filter must use the real stacking."""
    model = BiLSTMCTC(ModelDims(stack=1, hidden=12, layers=2))
    save_model(tmp_path / "init.pt", model, CharVocab(), FeatureConfig())
    config = parse_args(["--train", "t.tsv", "--exp", str(tmp_path / "exp"), "--init", str(tmp_path / "init.pt")])
    assert (config.stack, config.hidden, config.layers) == (1, 12, 2) and config.dims.stack == 1
    with pytest.raises(SystemExit):
        parse_args(["--train", "t.tsv", "--exp", str(tmp_path / "exp"), "--init", str(tmp_path / "missing.pt")])
