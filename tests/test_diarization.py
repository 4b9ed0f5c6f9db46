"""Diarization models and pipeline: the meeting simulator, the pyannote checkpoint/PLDA writers, and
minutes.diarization.Diarizer on a tiny randomly initialised pipeline written to a temporary folder."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["PYANNOTE_METRICS_ENABLED"] = "0"
pytest.importorskip("pyannote.audio")
pytest.importorskip("pyroomacoustics")

from acoustic.features import SAMPLE_RATE  # noqa: E402
from conftest import make_speech_like  # noqa: E402
from diarize.checkpoint import save_pyannote_model  # noqa: E402
from diarize.data import Voices  # noqa: E402
from diarize.package import assemble, write_config  # noqa: E402
from diarize.plda import fit_plda, write_plda  # noqa: E402
from diarize.simulate import FRAME, MeetingConfig, simulate_meeting, write_meeting  # noqa: E402
from diarize.crops import EmbeddingConfig, make_batch, speed_crop  # noqa: E402
from diarize.train_embedding import eer, embedding_model  # noqa: E402
from diarize.chunks import SegmentationConfig, chunk_targets  # noqa: E402
from diarize.chunks import make_batch as chunk_batch  # noqa: E402
from diarize.train_segmentation import compute_loss, frame_times, segmentation_model  # noqa: E402
from diarize.train_twin import unpack_voices, write_runs, write_voices  # noqa: E402
from diarize.twin import EmbeddingTwin, from_twin, powerset_loss, to_twin  # noqa: E402
from pyannote.audio.utils.permutation import permutate  # noqa: E402
from pyannote.audio.utils.powerset import Powerset  # noqa: E402
from minutes.diarization import (DEFAULT_DIARIZATION, DiarizationError, Diarizer, SpeakerHint, Turn,  # noqa: E402
                                 WindowClustering, cluster_windows, drop_quiet, first_appearance_labels,
                                 label_speech, merge_small_clusters, nearest_mean, pad_regions, speech_windows)
from minutes.speech import SpeechTrack  # noqa: E402

DRY = MeetingConfig(duration=30.0, speakers=(3, 3), reverb=0.0, noise=0.0)


@pytest.fixture(scope="module")
def voices() -> Voices:
    """Three 'speakers' of speech-like bursts, three utterances each (int16, as diarize.data stores them)."""
    audio = [(make_speech_like(2.5, seed=10 * s + u) * 32767).astype(np.int16) for s in range(3) for u in range(3)]
    return Voices(audio, [f"so762-{s}" for s in range(3) for _ in range(3)])


def frame_rms(audio: np.ndarray) -> np.ndarray:
    n = len(audio) // FRAME
    return np.sqrt((audio[: n * FRAME].reshape(n, FRAME) ** 2).mean(axis=1))


def test_simulated_turns_match_the_audio(voices: Voices) -> None:
    meeting = simulate_meeting(voices, DRY, np.random.default_rng(1))
    assert meeting.duration == DRY.duration and {t[2] for t in meeting.turns} == {"so762-0", "so762-1", "so762-2"}
    assert all(0 <= start < end <= DRY.duration for start, end, _ in meeting.turns)
    rms = frame_rms(meeting.audio)
    inside = np.zeros(len(rms), dtype=bool)
    for start, end, _ in meeting.turns:
        inside[int(start * SAMPLE_RATE) // FRAME: int(end * SAMPLE_RATE) // FRAME] = True
        assert rms[int(start * SAMPLE_RATE) // FRAME: int(end * SAMPLE_RATE) // FRAME].max() > 0.05
    near = inside | np.roll(inside, 1) | np.roll(inside, -1)  # utterances start off the 20 ms frame grid
    assert rms[~near].max() < 0.01  # no sound outside the reference turns (no noise, no reverb here)


def test_simulator_is_deterministic_with_a_seed(voices: Voices) -> None:
    a, b = (simulate_meeting(voices, MeetingConfig(duration=20.0), np.random.default_rng(7)) for _ in range(2))
    c = simulate_meeting(voices, MeetingConfig(duration=20.0), np.random.default_rng(8))
    assert np.array_equal(a.audio, b.audio) and a.turns == b.turns
    assert not np.array_equal(a.audio, c.audio)


def test_simulator_overlaps_speakers(voices: Voices) -> None:
    cfg = MeetingConfig(duration=60.0, speakers=(2, 2), overlap=1.0, reverb=0.0, noise=0.0)
    turns = simulate_meeting(voices, cfg, np.random.default_rng(3)).turns
    assert any(s2 < e1 and t1 != t2 for (s1, e1, t1), (s2, e2, t2) in zip(turns, turns[1:]))


def test_pad_widens_reference_turns(voices: Voices) -> None:
    tight, padded = (simulate_meeting(voices, MeetingConfig(duration=20.0, speakers=(1, 1), pad=pad, fill_gap=0.1,
                                                            reverb=0.0, noise=0.0), np.random.default_rng(4))
                     for pad in (0.0, 0.1))
    assert np.array_equal(tight.audio, padded.audio)
    assert sum(e - s for s, e, _ in padded.turns) > sum(e - s for s, e, _ in tight.turns)
    assert padded.turns[0][0] == pytest.approx(max(0.0, tight.turns[0][0] - 0.1), abs=0.021)


def test_written_meeting_has_rttm_and_uem(voices: Voices, tmp_path: Path) -> None:
    meeting = simulate_meeting(voices, DRY, np.random.default_rng(2))
    write_meeting(meeting, tmp_path, "m0")
    rows = [line.split() for line in (tmp_path / "m0.rttm").read_text().splitlines()]
    assert [(float(r[3]), r[7]) for r in rows] == [(round(s, 3), spk) for s, _, spk in meeting.turns]
    assert (tmp_path / "m0.uem").read_text() == "m0 NA 0.000 30.000\n"
    assert (tmp_path / "m0.wav").stat().st_size > 2 * 30 * SAMPLE_RATE


def test_meeting_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="speakers"):
        MeetingConfig(speakers=(3, 2))
    with pytest.raises(ValueError, match="probabilities"):
        MeetingConfig(overlap=1.5)
    with pytest.raises(ValueError, match="non-negative"):
        MeetingConfig(pad=-0.1)


def test_default_labels_bridge_a_speakers_short_pauses(voices: Voices) -> None:
    cfg = MeetingConfig(duration=30.0, speakers=(1, 1), reverb=0.0, noise=0.0, turn=(3, 3))
    turns = simulate_meeting(voices, cfg, np.random.default_rng(5)).turns
    gaps = [s2 - e1 for (_, e1, _), (s2, _, _) in zip(turns, turns[1:])]
    assert len(turns) >= 2 and min(gaps) >= cfg.fill_gap == 0.5


def test_chunk_targets_order_speakers_by_first_appearance() -> None:
    times = np.arange(0.0, 10.0, 0.5)
    y = chunk_targets([(11.0, 13.0, "b"), (12.0, 14.0, "a"), (30.0, 31.0, "c")], offset=10.0, times=times)
    assert y[:, 0].tolist() == [float(1.0 <= t < 3.0) for t in times]  # "b" first
    assert y[:, 1].tolist() == [float(2.0 <= t < 4.0) for t in times]
    assert not y[:, 2].any()


def test_eer_of_separable_and_inverted_scores() -> None:
    target = np.array([True, True, False, False])
    assert eer(np.array([0.9, 0.8, 0.1, 0.2]), target) == 0.0
    assert eer(np.array([0.1, 0.2, 0.9, 0.8]), target) == 100.0


@pytest.mark.parametrize("speed", [0.9, 1.0, 1.1])
def test_speed_crop_shifts_pitch_and_keeps_the_length(speed: float) -> None:
    t = np.arange(3 * SAMPLE_RATE) / SAMPLE_RATE
    tone = np.sin(2 * np.pi * 200.0 * t).astype(np.float32)
    crop = speed_crop(tone, SAMPLE_RATE, speed, np.random.default_rng(0))
    assert crop.shape == (SAMPLE_RATE,) and crop.dtype == np.float32
    assert np.argmax(np.abs(np.fft.rfft(crop))) == pytest.approx(200.0 * speed, abs=2)  # 1 Hz bins


def test_speed_classes_are_speaker_times_speed(voices: Voices) -> None:
    groups = list(voices.by_speaker().values())
    cfg = EmbeddingConfig(batch_size=256, speeds=(0.9, 1.0, 1.1))
    x, y = make_batch(voices, groups, cfg, [np.array([1.0], dtype=np.float32)], np.random.default_rng(0))
    assert x.shape == (256, 1, int(cfg.crop * SAMPLE_RATE))
    assert sorted(set(y.tolist())) == list(range(9))  # 3 speakers x 3 speeds, all drawn


def test_twin_computes_what_pyannote_computes(voices: Voices) -> None:
    torch.manual_seed(0)
    model = segmentation_model(SegmentationConfig(lstm_hidden=16, lstm_layers=1)).eval()
    twin = to_twin(model).eval()
    cfg = SegmentationConfig(batch_size=3, duration=3.0, lead=1.0, overlap=0.8)
    x, y = chunk_batch(voices, frame_times(model, cfg), cfg, [np.array([1.0], dtype=np.float32)],
                       np.random.default_rng(0))
    with torch.no_grad():
        assert torch.allclose(twin(x), model(x), atol=1e-5)
        assert powerset_loss(twin(x), y).item() == pytest.approx(
            compute_loss(model, Powerset(3, 2), x, y).item(), rel=1e-5)
        twin.classifier.bias += 1.0  # trained on elsewhere
        back = from_twin(twin.state_dict(), segmentation_model(SegmentationConfig(lstm_hidden=16, lstm_layers=1)))
        assert torch.allclose(back.eval()(x), twin(x), atol=1e-5)


def test_powerset_loss_breaks_ties_as_pyannote() -> None:
    log_probs = torch.full((1, 4, 7), -10.0)
    log_probs[0, :, 1] = 0.0  # only speaker 1 predicted; speakers 2 and 3 tie for the permutation
    log_probs[0, :, 3] = -1.0
    y = torch.tensor([[[1, 0, 0], [1, 0, 1], [1, 1, 0], [0, 0, 1]]], dtype=torch.float32)
    multilabel = Powerset(3, 2).to_multilabel(log_probs)
    permuted, _ = permutate(multilabel, y)
    target = torch.argmax(Powerset(3, 2).to_powerset(permuted), dim=-1)
    assert powerset_loss(log_probs, y).item() == pytest.approx(
        torch.nn.functional.nll_loss(log_probs[0], target[0]).item())


def test_first_appearance_labels() -> None:
    turns = [Turn(5.0, 6.0, "x"), Turn(1.0, 2.0, "y"), Turn(3.0, 4.0, "x")]
    assert first_appearance_labels(turns) == [Turn(1.0, 2.0, "SPEAKER_00"), Turn(3.0, 4.0, "SPEAKER_01"),
                                              Turn(5.0, 6.0, "SPEAKER_01")]


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random PyanNet + XVectorMFCC + PLDA pipeline folder, laid out as diarize.package writes it."""
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("diarization")
    seg = segmentation_model(SegmentationConfig(lstm_hidden=16, lstm_layers=1))
    save_pyannote_model(seg, root / "seg.bin")
    save_pyannote_model(embedding_model(2.0), root / "emb.bin")
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(40), 20)
    write_plda(root / "plda", *fit_plda(rng.standard_normal((40, 512))[labels] + rng.standard_normal((800, 512)),
                                        labels, dim=16))
    assemble(root / "pipeline", root / "seg.bin", root / "emb.bin", root / "plda",
             {"segmentation_step": 0.5, "embedding_exclude_overlap": True, "clustering": "VBxClustering"},
             {"segmentation": {"min_duration_off": 0.0}, "clustering": {"threshold": 0.6, "Fa": 0.07, "Fb": 0.8}})
    return root / "pipeline"


def test_diarizer_returns_well_formed_turns(tiny_pipeline: Path) -> None:
    audio = np.concatenate([make_speech_like(8.0, seed=s) for s in range(3)])
    progress = []
    turns = Diarizer.load(tiny_pipeline)(audio, SpeakerHint(), lambda step, completed, total:
                                         progress.append((step, completed, total)))
    assert turns and all(isinstance(t, Turn) and 0 <= t.start < t.end <= 24.0 for t in turns)
    assert turns == sorted(turns, key=lambda t: (t.start, t.end))
    labels = list(dict.fromkeys(t.speaker for t in turns))
    assert labels == [f"SPEAKER_{i:02d}" for i in range(len(labels))]
    assert progress[-1] == ("diarize", 24.0, 24.0) and [c for _, c, _ in progress] == sorted(c for _, c, _ in progress)


@pytest.mark.parametrize("num", [1, 2, 3])
def test_diarizer_honours_the_number_of_speakers(tiny_pipeline: Path, num: int) -> None:
    audio = np.concatenate([make_speech_like(8.0, seed=s) for s in range(3)])
    turns = Diarizer.load(tiny_pipeline)(audio, SpeakerHint(num=num))
    assert len({t.speaker for t in turns}) == num


def test_diarizer_rejects_multichannel_audio(tiny_pipeline: Path) -> None:
    with pytest.raises(ValueError, match="mono"):
        Diarizer.load(tiny_pipeline)(np.zeros((2, 16000), dtype=np.float32))


def test_load_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(DiarizationError, match="no diarization model in .*config.yaml is missing"):
        Diarizer.load(tmp_path / "missing")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.yaml").write_text("pipeline:\n  name: pyannote.audio.pipelines.SpeakerDiarization\n"
                                        "  params:\n    segmentation: $model/segmentation\n")
    with pytest.raises(DiarizationError, match="cannot load the diarization model") as error:
        Diarizer.load(broken)
    assert "\n" not in str(error.value)


@pytest.mark.skipif(not (DEFAULT_DIARIZATION / "config.yaml").exists(), reason="no shipped models/diarization")
def test_shipped_pipeline_on_a_short_clip() -> None:
    turns = Diarizer.load()(make_speech_like(10.0, seed=5), SpeakerHint(max=2))
    assert all(0 <= t.start < t.end <= 10.0 for t in turns) and len({t.speaker for t in turns}) <= 2


def grouped_embeddings(sizes: list[int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors scattered tightly around one random direction per group, and each vector's group."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((len(sizes), 64))
    groups = np.repeat(np.arange(len(sizes)), sizes)
    points = centres[groups] + 0.1 * rng.standard_normal((len(groups), 64))
    return points / np.linalg.norm(points, axis=1, keepdims=True), groups


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    return len(set(zip(a, b))) == len(set(a)) == len(set(b))


def test_window_clusters_follow_the_groups_and_the_hints() -> None:
    embeddings, groups = grouped_embeddings([8, 6, 5])
    labels = cluster_windows(embeddings, 0.5)
    assert same_partition(labels, groups) and sorted(set(labels)) == [0, 1, 2]
    assert len(set(cluster_windows(embeddings, 0.5, SpeakerHint(num=2)))) == 2
    assert len(set(cluster_windows(embeddings, 0.5, SpeakerHint(max=2)))) == 2
    assert len(set(cluster_windows(embeddings, 0.5, SpeakerHint(min=4)))) == 4
    assert len(set(cluster_windows(embeddings, 0.5, SpeakerHint(min=2, max=3)))) == 3
    assert list(cluster_windows(embeddings[:1], 0.5)) == [0]


def test_small_window_clusters_join_the_most_similar_large_one() -> None:
    embeddings, groups = grouped_embeddings([8, 6, 2])
    embeddings[-2:] = embeddings[8:10]  # the small group sounds like the second
    merged = merge_small_clusters(embeddings, groups, 3)
    assert list(merged) == [0] * 8 + [1] * 8
    assert list(merge_small_clusters(embeddings, groups, 1)) == list(groups)
    assert list(merge_small_clusters(embeddings, groups, 20)) == list(groups)  # nothing large: unchanged
    assert len(set(cluster_windows(embeddings, 0.5, min_cluster_size=3))) == 2


def test_speech_windows_cover_each_long_enough_region() -> None:
    spans = speech_windows([(0.0, 0.3), (1.0, 2.0), (3.0, 7.0)], window=2.0, hop=1.0)
    assert spans.tolist() == [[1.0, 2.0], [3.0, 5.0], [4.0, 6.0], [5.0, 7.0]]
    assert speech_windows([], 2.0, 1.0).shape == (0, 2)


def test_speech_frames_take_the_nearest_windows_label() -> None:
    turns = label_speech([(0.0, 4.0), (5.0, 5.5)], np.array([1.0, 3.0]), np.array([0, 1]))
    assert [(t.speaker, round(t.start, 2), round(t.end, 2)) for t in turns] == [("0", 0.0, 2.0), ("1", 2.0, 4.0),
                                                                               ("1", 5.0, 5.5)]
    assert label_speech([(0.0, 1.0)], np.zeros(0), np.zeros(0, dtype=int)) == [Turn(0.0, 1.0, "0")]


def test_overlapped_speech_gets_the_nearest_other_speaker() -> None:
    centres, labels = np.array([1.0, 3.0, 5.0, 9.0]), np.array([0, 0, 1, 2])
    turns = label_speech([(0.0, 6.0), (8.0, 10.0)], centres, labels, overlaps=[(2.5, 3.5), (9.2, 9.8), (12, 13)],
                         reach=1.6)
    second = [t for t in turns if (t.start, t.end) in ((2.5, 3.5), (9.2, 9.8))]
    assert second == [Turn(2.5, 3.5, "1")]  # 5.0 is 1.5 s from the span; nothing other than "2" near 9.5
    assert len(turns) == 4  # 0-2 "0" ... 4-6 "1", 8-10 "2", the second speaker; (12, 13) is outside the speech
    assert label_speech([(0.0, 6.0)], centres, labels, overlaps=[(2.5, 3.5)], reach=1.0) == \
        label_speech([(0.0, 6.0)], centres, labels)  # no other speaker within reach: one label


def test_quiet_speech_is_dropped() -> None:
    loud = make_speech_like(3.0, seed=1)
    audio = np.concatenate([loud, 0.001 * make_speech_like(3.0, seed=2), loud])  # the middle 60 dB down
    kept = drop_quiet([(0.0, 9.0)], audio, quiet_db=30.0)
    covered = lambda t: any(a <= t < b for a, b in kept)  # noqa: E731
    assert covered(1.5) and covered(7.5) and not covered(4.5)
    assert drop_quiet([(0.0, 9.0)], audio, quiet_db=80.0) == [(0.0, 9.0)]


@pytest.fixture(scope="module")
def window_pipeline(tiny_pipeline: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny pipeline with a `minutes` section: window clustering."""
    import shutil

    import yaml

    root = tmp_path_factory.mktemp("windows") / "pipeline"
    shutil.copytree(tiny_pipeline, root)
    config = yaml.safe_load((root / "config.yaml").read_text())
    write_config(root, {k: v for k, v in config["pipeline"]["params"].items() if not str(v).startswith("$model")},
                 config["params"], {"clustering": "windows", "window": 1.5, "hop": 0.75, "threshold": 0.3,
                                    "min_duration_off": 0.2, "min_cluster_size": 2, "quiet_db": 40.0})
    return root


def test_window_clustering_is_read_from_the_config(window_pipeline: Path, tiny_pipeline: Path) -> None:
    assert Diarizer.load(window_pipeline).windows == WindowClustering(1.5, 0.75, 0.3, 0.2, 2, 40.0)
    assert Diarizer.load(tiny_pipeline).windows is None


@pytest.mark.parametrize("num", [None, 1, 2])
def test_window_diarizer_returns_well_formed_turns(window_pipeline: Path, num: int | None) -> None:
    audio = np.concatenate([make_speech_like(8.0, seed=s) for s in range(3)])
    progress = []
    turns = Diarizer.load(window_pipeline)(audio, SpeakerHint(num=num), lambda step, completed, total:
                                           progress.append(completed))
    assert turns and all(0 <= t.start < t.end <= 24.0 for t in turns)
    assert turns == sorted(turns, key=lambda t: (t.start, t.end))
    assert all(a.end <= b.start + 1e-9 for a, b in zip(turns, turns[1:]))  # one speaker at a time
    if num is not None:
        assert len({t.speaker for t in turns}) == num
    assert progress == sorted(progress) and progress[-1] == 24.0


@pytest.fixture(scope="module")
def gated_pipeline(window_pipeline: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The window pipeline gated by the transcriber's speech track, regions padded 0.25 s."""
    import shutil

    import yaml

    root = tmp_path_factory.mktemp("gated") / "pipeline"
    shutil.copytree(window_pipeline, root)
    config = yaml.safe_load((root / "config.yaml").read_text())
    config["minutes"].update(quiet_db=None, speech_threshold=0.2, speech_smooth=0.5, speech_dilate=0.3, pad=0.25,
                             bridge=0.25)
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    return root


def test_speech_track_keeps_only_speech_the_transcriber_heard(gated_pipeline: Path) -> None:
    audio = np.concatenate([make_speech_like(8.0, seed=s) for s in range(3)])
    diarizer = Diarizer.load(gated_pipeline)
    track = SpeechTrack(step=0.02)
    heard = np.zeros(1200, dtype=np.float32)
    heard[400:800] = 1.0  # the acoustic model hears speech from 8 to 16 s only
    track.add(0.0, heard, 24.0)
    turns = diarizer(audio, SpeakerHint(), None, track)
    reach = 0.5 / 2 + 0.3 + 0.25 + 0.05  # half the smoothing, the dilation, the padding, a frame or two
    assert turns and all(8.0 - reach <= t.start and t.end <= 16.0 + reach for t in turns)
    ungated = diarizer(audio, SpeakerHint())  # no track (nothing transcribed): the segmentation's regions alone
    assert sum(t.end - t.start for t in ungated) > sum(t.end - t.start for t in turns) + 4.0
    silent = SpeechTrack(step=0.02)
    silent.add(0.0, np.zeros(1200, dtype=np.float32), 24.0)
    assert diarizer(audio, SpeakerHint(), None, silent) == []


def test_tuning_searches_the_speech_gate_on_the_tune_part(window_pipeline: Path, tiny_model: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """diarize.tune's gate step end to end on a one-meeting dev set: the transcriber fills each track, every
    grid point is scored against no gate, then the overlap labelling, and the best config keeps the window
    settings."""
    import soundfile as sf

    from diarize import tune
    from minutes.pipeline import Transcriber

    dev = tmp_path / "dev"
    (dev / "so762").mkdir(parents=True)
    sf.write(dev / "so762" / "meeting00.wav", np.concatenate([make_speech_like(6.0, seed=s) for s in range(2)]),
             16000, subtype="PCM_16")
    (dev / "so762" / "meeting00.rttm").write_text("SPEAKER meeting00 1 0.1 5.8 <NA> <NA> A <NA> <NA>\n"
                                                  "SPEAKER meeting00 1 6.1 5.8 <NA> <NA> B <NA> <NA>\n")
    (dev / "manifest.tsv").write_text("path\trttm\tduration\nso762/meeting00.wav\tso762/meeting00.rttm\t12.0\n")
    monkeypatch.setattr(tune, "GATE_GRID", {"speech_threshold": (0.01, 0.5), "pad": (0.0, 0.2)})
    start = Diarizer.load(window_pipeline).windows
    transcriber = Transcriber.load(tiny_model, decoder="greedy")
    pipeline, files = tune.tune_files(window_pipeline, dev)
    material = tune.gate_material(pipeline, files, start, transcriber)
    assert [f["uri"] for f in files] == ["meeting00"] and material[0][3].values().size == round(12.0 / material[0][3].step)
    best, score = tune.search_gate(pipeline, files, start, transcriber)
    assert 0.0 <= score <= tune.gate_score(files, material, start)  # never worse than no gate
    assert (best.window, best.hop, best.threshold) == (start.window, start.hop, start.threshold)
    assert best.speech_threshold in (None, 0.01, 0.5) and best.pad in (0.0, 0.2)
    assert best.overlap_reach in (None, *tune.OVERLAP_REACH)


def test_pad_regions_widens_merges_and_stays_inside_the_audio() -> None:
    regions = [(0.1, 1.0), (1.4, 2.0), (3.0, 3.5), (9.8, 9.9)]
    assert np.allclose(pad_regions(regions, 0.2, 0.0, 10.0), [(0.0, 2.2), (2.8, 3.7), (9.6, 10.0)])
    assert np.allclose(pad_regions(regions, 0.0, 0.5, 10.0), [(0.1, 2.0), (3.0, 3.5), (9.8, 9.9)])
    assert pad_regions([], 0.2, 0.5, 10.0) == []


def test_bad_minutes_section_is_a_one_line_error(window_pipeline: Path, tmp_path: Path) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(window_pipeline, broken)
    (broken / "config.yaml").write_text((window_pipeline / "config.yaml").read_text() + "  colour: red\n")
    with pytest.raises(DiarizationError, match="bad `minutes` section") as error:
        Diarizer.load(broken)
    assert "\n" not in str(error.value)


def test_resume_run_restores_what_save_left(tmp_path):
    import torch

    from diarize.checkpoint import resume_run
    model, other = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    assert resume_run(tmp_path, model=other) == 0  # fresh run
    torch.save({"model": model.state_dict(), "step": 7}, tmp_path / "last.pt")
    assert resume_run(tmp_path, model=other) == 7 and torch.equal(other.weight, model.weight)


def test_embedding_twin_is_xvector_mfcc() -> None:
    torch.manual_seed(0)
    model = embedding_model(2.0).eval()
    twin = EmbeddingTwin()
    twin.load_state_dict(model.state_dict())  # same names, same shapes
    x = torch.randn(2, 1, SAMPLE_RATE)
    with torch.no_grad():
        assert torch.allclose(twin.eval()(x), model(x), atol=1e-5)


@pytest.mark.parametrize("task", ["train", "embed"])
def test_twin_training_round_trip(voices: Voices, tmp_path: Path, task: str) -> None:
    """Pack tiny voices and a fresh 1 x 16 segmentation run, train a few CPU steps in this process (as on the GPU
    machine, without pyannote), export, and load the result with pyannote."""
    from pyannote.audio import Model

    from diarize import train_twin

    write_voices(voices, [np.array([1.0], dtype=np.float32)], tmp_path)
    write_runs({"tiny": "1x16"}, tmp_path)
    assert [len(a) for a in unpack_voices(tmp_path).audio] == [len(a) for a in voices.audio]
    common = ["--pack", str(tmp_path), "--exp", str(tmp_path / "exp"), "--weights-to", str(tmp_path / "w"),
              "--minutes", "0.005", "--device", "cpu", "--workers", "0", "--batch", "2", "--log-every", "1"]
    args = {"train": ["--valid-batches", "1"], "embed": ["--speeds", "1.0"]}[task]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.argv", ["train_twin", task, *common, *args])
        train_twin.main()
        name = {"train": "tiny", "embed": "emb"}[task]
        saved = torch.load(tmp_path / "w" / f"{name}.pt", weights_only=False)
        assert saved["step"] >= 1
        patch.setattr("sys.argv", ["train_twin", "export", str(tmp_path / "w" / f"{name}.pt"), str(tmp_path / "x")])
        train_twin.main()
    model = Model.from_pretrained(tmp_path / "x" / "pytorch_model.bin").float().eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 1, SAMPLE_RATE))
    assert out.shape[-1] == {"train": 7, "embed": 512}[task]


def test_refinement_moves_a_window_to_the_nearest_cluster_mean() -> None:
    embeddings = np.array([[1.0, 0.0], [0.98, 0.2], [0.6, 0.8], [0.0, 1.0], [0.2, 0.98]])
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    labels = np.array([0, 0, 0, 1, 1])  # window 2 is nearer the second cluster's mean than the first's
    assert nearest_mean(embeddings, labels).tolist() == [0, 0, 1, 1, 1]
    once = nearest_mean(embeddings, np.array([0, 0, 0, 0, 1]))  # one round moves window 3, the next window 2
    assert once.tolist() == [0, 0, 0, 1, 1] and nearest_mean(embeddings, once).tolist() == [0, 0, 1, 1, 1]
