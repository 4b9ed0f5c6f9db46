"""On-the-fly augmentation: shapes and dtypes, seeded determinism, SNR, speed factors, rooms, codecs, validation."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from acoustic.augment import (AugmentConfig, AugmentedFeatures, Augmenter, add_noise, babble, codec_round_trip,
                              coloured_noise, reverberate, room_impulse_response, speed_perturb, write_copy)
from acoustic.data import read_manifest
from acoustic.features import SAMPLE_RATE, FeatureConfig
from tests.conftest import make_speech_like

SMALL_ROOMS = dict(rooms=3, rt60=(0.15, 0.3))


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    return 10 * np.log10(np.sum(clean.astype(np.float64) ** 2) / np.sum((noisy - clean).astype(np.float64) ** 2))


@pytest.mark.parametrize("factor", [0.9, 1.0, 1.1])
def test_speed_perturbation_changes_length_by_the_factor(factor):
    audio = make_speech_like(2.0)
    out = speed_perturb(audio, factor)
    assert out.dtype == np.float32 and abs(out.size - audio.size / factor) <= 2


@pytest.mark.parametrize("target", [0.0, 10.0, 25.0])
def test_noise_is_added_at_the_requested_snr(target):
    rng = np.random.default_rng(0)
    clean = make_speech_like(2.0)
    for exponent in (0.0, 1.0, 2.0):
        noisy = add_noise(clean, coloured_noise(clean.size, exponent, rng), target)
        assert noisy.dtype == np.float32 and noisy.shape == clean.shape
        assert abs(snr_db(clean, noisy) - target) < 0.1


def test_babble_mixes_talkers_and_tiles_short_ones():
    talkers = [make_speech_like(1.0, seed=s) for s in range(3)]
    mixed = babble(SAMPLE_RATE * 2, talkers)
    assert mixed.shape == (SAMPLE_RATE * 2,) and mixed.dtype == np.float32
    assert np.sqrt(np.mean(mixed ** 2)) > 1.0  # three unit-RMS talkers


def test_room_impulse_responses_are_seeded_and_keep_level():
    first = [room_impulse_response(i, (0.2, 0.4), seed=5) for i in range(2)]
    second = [room_impulse_response(i, (0.2, 0.4), seed=5) for i in range(2)]
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert all(abs(np.sum(r ** 2) - 1.0) < 1e-4 and np.argmax(np.abs(r)) == 0 for r in first)
    audio = make_speech_like(1.0)
    wet = reverberate(audio, first[0])
    assert wet.shape == audio.shape and not np.allclose(wet, audio)
    assert np.sqrt(np.mean(wet ** 2)) == pytest.approx(np.sqrt(np.mean(audio ** 2)), rel=1e-3)


@pytest.mark.parametrize("codec", ["opus", "mulaw-8k"])
def test_codec_round_trip_keeps_length_and_degrades_a_little(codec):
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    out = codec_round_trip(tone, codec)
    assert out.shape == tone.shape and out.dtype == np.float32
    assert not np.array_equal(out, tone) and np.sqrt(np.mean(out ** 2)) > 0.1
    with pytest.raises(ValueError, match="unknown codec"):
        codec_round_trip(tone, "mp3")


def test_augmenter_is_deterministic_per_key():
    augmenter = Augmenter(AugmentConfig(room_prob=0.5, noise_prob=0.8, codec_prob=0.5, **SMALL_ROOMS),
                          talkers=lambda rng: [make_speech_like(1.0, seed=int(rng.integers(100)))])
    audio = make_speech_like(1.5)
    outputs = [augmenter(audio, key=(0, i)) for i in range(8)]
    assert all(o.dtype == np.float32 and o.ndim == 1 and np.abs(o).max() <= 1.0 for o in outputs)
    assert all(np.array_equal(augmenter(audio, key=(0, i)), outputs[i]) for i in range(8))
    assert len({o.tobytes() for o in outputs}) == 8  # different keys, different draws
    again = Augmenter(AugmentConfig(room_prob=0.5, noise_prob=0.8, codec_prob=0.5, **SMALL_ROOMS),
                      talkers=lambda rng: [make_speech_like(1.0, seed=int(rng.integers(100)))])
    assert np.array_equal(again(audio, key=(0, 3)), outputs[3])
    assert {o.size for o in outputs} <= {speed_perturb(audio, s).size for s in (0.9, 1.0, 1.1)}


def test_augment_config_validation():
    for bad, message in [(dict(speeds=()), "speeds"), (dict(noise_prob=1.5), "noise_prob"),
                         (dict(snr_db=(30.0, 10.0)), "snr_db"), (dict(rt60=(0.0, 0.5)), "rt60"),
                         (dict(rooms=0), "rooms")]:
        with pytest.raises(ValueError, match=message):
            AugmentConfig(**bad)


def test_augmented_features_for_training(tmp_path):
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"u{i}.flac")
        sf.write(paths[-1], make_speech_like(1.0, seed=i), SAMPLE_RATE)
    source = AugmentedFeatures(paths, FeatureConfig(), AugmentConfig(noise_prob=1.0, babble_share=1.0,
                                                                     **SMALL_ROOMS))
    feats = source.batch([0, 2], epoch=1)
    assert [f.dtype for f in feats] == [torch.float16] * 2 and all(f.shape[1] == 80 for f in feats)
    assert all(abs(f.shape[0] - 101) <= 12 for f in feats)  # 1 s at 100 frames/s, speed 0.9..1.1
    assert torch.equal(source.batch([2], epoch=1)[0], feats[1])
    assert not torch.equal(source.batch([2], epoch=2)[0], feats[1])


def test_a_fixed_augmented_copy_is_a_training_manifest(tmp_path):
    (tmp_path / "in").mkdir()
    for i in range(3):
        sf.write(tmp_path / "in" / f"u{i}.flac", make_speech_like(1.0, seed=i), SAMPLE_RATE)
    (tmp_path / "in" / "m.tsv").write_text("path\ttext\tspeaker\tduration\n"
                                           + "".join(f"u{i}.flac\t\"word\" {i}\ts{i}\t1.0\n" for i in range(3)))
    config = AugmentConfig(noise_prob=1.0, seed=3, **SMALL_ROOMS)
    assert write_copy([tmp_path / "in" / "m.tsv"], tmp_path / "a", config) == 3
    copy = read_manifest(tmp_path / "a" / "manifest.tsv")
    assert [(u.text, u.speaker) for u in copy] == [(f"\"word\" {i}", f"s{i}") for i in range(3)]
    audio = [sf.read(u.path, dtype="float32")[0] for u in copy]
    assert all(abs(u.duration - len(a) / SAMPLE_RATE) < 1e-3 and 0.85 < u.duration < 1.15 for u, a in zip(copy, audio))
    write_copy([tmp_path / "in" / "m.tsv"], tmp_path / "b", config)  # same seed, same copy
    again = [sf.read(tmp_path / "b" / u.path.name, dtype="float32")[0] for u in copy]
    assert all(np.array_equal(a, b) for a, b in zip(audio, again))


def test_training_with_augment_runs_and_is_resumable(tmp_path):
    from acoustic.train import main
    from tests.test_train import tone_utterance, write_manifest

    rows = []
    for i, text in enumerate(["abc", "cab", "ba ca", "cc ab"]):
        sf.write(tmp_path / f"u{i}.wav", tone_utterance(text), SAMPLE_RATE)
        rows.append((f"u{i}.wav", text, "spk", "1.0"))
    manifest = write_manifest(tmp_path, rows)
    exp = tmp_path / "exp"
    args = ["--train", str(manifest), "--dev", str(manifest), "--exp", str(exp), "--hidden", "16", "--layers", "1",
            "--max-frames", "400", "--threads", "1", "--augment"]
    main(args + ["--epochs", "1"])
    main(args + ["--epochs", "2"])
    state = torch.load(exp / "last.pt", weights_only=True)
    assert state["config"]["augment"] is True and [h["epoch"] for h in state["state"]["history"]] == [1, 2]
    assert all(np.isfinite(h["loss"]) for h in state["state"]["history"])


def test_ctc_min_frames_counts_blanks_between_repeats():
    from acoustic.train import ctc_min_frames

    assert ctc_min_frames([3, 4, 5]) == 3
    assert ctc_min_frames([3, 3, 4, 4, 4]) == 8
    assert ctc_min_frames([]) == 0
