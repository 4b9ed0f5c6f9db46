"""Synthetic training and dev speech: sentences spoken by many freely licensed TTS voices and pseudo-speakers.

    python -m acoustic.synth --out exp/synth/train --split train --sentences 20000 --seed 0 [--jobs 4]
    python -m acoustic.synth --out exp/synth/heldout --split heldout --sentences 200 --seed 0
    python -m acoustic.synth --list-voices

Writes OUT/audio/SPEAKER/UTT.flac (16 kHz mono; `--format opus` for compact files), OUT/manifest.tsv
(path text speaker duration) and OUT/voices.tsv (each pseudo-speaker's engine, voice, prosody, licence, split).
The `heldout` split uses only held-out voices and sentences (see acoustic/voices.py, acoustic/sentences.py).
Rerunning the same command reuses the audio already rendered; Ctrl-C still writes the manifest of what was
rendered (exit code 130). Engines take turns; the turns of engines that are
not installed are skipped with a warning (recipes/setup_synth.sh installs them), the other utterances stay the
same. Exit code 0, 1 if some sentences failed to render, 2 on bad options or when no voice can run.
"""
from __future__ import annotations

import argparse
import fnmatch
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from tqdm import tqdm

from acoustic.data import COLUMNS, ManifestError, read_manifest, write_tsv
from acoustic.features import SAMPLE_RATE
from acoustic.sentences import choose_sentences, corpus_split
from acoustic.voices import SPLITS, BaseVoice, Voice, catalogue, engine_missing, pseudo_speakers, render

DEFAULT_TEXT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "text"
FORMATS = {"flac": ("FLAC", "PCM_16"), "opus": ("OGG", "OPUS")}


@dataclass(frozen=True)
class SynthConfig:
    out: Path
    split: str = "train"
    sentences: int = 1000
    seed: int = 0
    voices: tuple[str, ...] = ()  # fnmatch patterns on base voice ids; () = every free voice of the split
    speakers_per_voice: int = 3
    text: tuple[Path, ...] = ()
    generated_share: float = 0.3
    format: str = "flac"
    exclude: tuple[Path, ...] = ()  # manifests whose sentences are not rendered (a dev set unseen in training)
    jobs: int = 1  # rendering processes

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"unknown split {self.split!r}; choose one of: {', '.join(SPLITS)}")
        if self.format not in FORMATS:
            raise ValueError(f"unknown format {self.format!r}; choose one of: {', '.join(FORMATS)}")
        counts = (self.sentences, self.speakers_per_voice, self.jobs)
        if min(counts) < 1 or not 0.0 <= self.generated_share <= 1.0:
            raise ValueError("--sentences, --speakers-per-voice and --jobs must be >= 1, --generated-share in 0..1")


def select_voices(config: SynthConfig) -> tuple[list[BaseVoice], dict[str, str]]:
    """(base voices of the split that --voices selects, {engine: why it cannot run here} for missing engines).
    Held-out voices serve only the heldout split; voices that are not free for training (Piper joe) are used in
    training only when named exactly. Missing engines keep their voices (and so their turns) in the list, so the
    utterances of the other engines do not depend on what is installed."""
    chosen = []
    for base in catalogue():
        named = any(fnmatch.fnmatch(base.id, p) for p in config.voices)
        if base.split != config.split or (config.voices and not named):
            continue
        if config.split == "train" and not base.free and base.id not in config.voices:
            continue
        chosen.append(base)
    reasons = {engine: engine_missing(engine) for engine in sorted({b.engine for b in chosen})}
    return chosen, {engine: reason for engine, reason in reasons.items() if reason}


def assign_speakers(bases: list[BaseVoice], config: SynthConfig) -> list[Voice]:
    """The speaker of each utterance: engines take turns, and each engine cycles through its pseudo-speakers."""
    rng = np.random.default_rng([config.seed, SPLITS.index(config.split), 1])
    by_engine: dict[str, list[Voice]] = {}
    for base in bases:
        by_engine.setdefault(base.engine, []).extend(pseudo_speakers(base, config.speakers_per_voice, rng))
    for speakers in by_engine.values():
        rng.shuffle(speakers)
    engines = sorted(by_engine)
    return [by_engine[engines[i % len(engines)]][(i // len(engines)) % len(by_engine[engines[i % len(engines)]])]
            for i in range(config.sentences)]


def render_one(voice: Voice, text: str, path: Path, config: SynthConfig) -> float:
    """Render (or reuse) one utterance's audio file -> its duration in seconds."""
    if path.is_file():
        return sf.info(str(path)).duration
    audio = render(voice, text)
    peak = float(np.abs(audio).max())
    audio = audio * (0.9 / peak) if peak > 0.9 else audio
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    container, subtype = FORMATS[config.format]
    sf.write(str(tmp), audio, SAMPLE_RATE, format=container, subtype=subtype)
    os.replace(tmp, path)
    return audio.size / SAMPLE_RATE


def synthesize(config: SynthConfig, sentences: list[str], speakers: list[Voice], missing: dict[str, str],
               hook=None, excluded: frozenset[str] = frozenset()) -> tuple[list[tuple], list[str]]:
    """Render every sentence with its speaker (skipping engines in `missing`); write manifest.tsv and voices.tsv,
    also when interrupted (Ctrl-C): then they list what was rendered so far. Returns (manifest rows, failures)."""
    rows, failures = [], []
    try:
        render_all(config, sentences, speakers, missing, rows, failures, hook, excluded)
    finally:
        write_manifests(config, speakers, rows)
    return rows, failures


def render_all(config, sentences, speakers, missing, rows: list, failures: list, hook, excluded) -> None:
    """Render in `config.jobs` processes; rows and failures come out in sentence order, also when interrupted."""
    extension = "opus" if config.format == "opus" else "flac"
    jobs = {index: (text, voice, Path("audio") / voice.id / f"{config.split}-{config.seed}-{index:06d}.{extension}")
            for index, (text, voice) in enumerate(zip(sentences, speakers))
            if voice.base.engine not in missing and text.lower() not in excluded}
    results = {}
    try:
        for index, result in _rendered(config, jobs):
            results[index] = result
            if hook:
                hook("synthesize", completed=len(results), total=len(jobs))
    finally:
        for index in sorted(results):
            ok, value = results[index]
            (rows if ok else failures).append(value)


def _rendered(config: SynthConfig, jobs: dict):
    """(index, result) of each job as it finishes: one by one here, or from a pool of config.jobs processes."""
    if config.jobs == 1:
        yield from ((index, render_item(config, *job)) for index, job in jobs.items())
        return
    pool = ProcessPoolExecutor(config.jobs, initializer=torch.set_num_threads, initargs=(1,))
    try:
        futures = {pool.submit(render_item, config, *job): index for index, job in jobs.items()}
        for future in as_completed(futures):
            yield futures[future], future.result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def render_item(config: SynthConfig, text: str, voice: Voice, relative: Path) -> tuple[bool, object]:
    """(True, manifest row) or (False, why it failed) for one sentence and its file under config.out."""
    try:
        duration = render_one(voice, text, config.out / relative, config)
    except (RuntimeError, OSError, ValueError) as error:
        return False, f"{relative}: {error}"
    return True, (relative.as_posix(), text, voice.id, f"{duration:.3f}")


def write_manifests(config: SynthConfig, speakers: list[Voice], rows: list) -> None:
    """manifest.tsv of the rendered rows, voices.tsv of the pseudo-speakers they use."""
    present = {row[2] for row in rows}
    used = {v.id: v for v in speakers if v.id in present}.values()
    write_tsv(config.out / "voices.tsv", ("speaker", "engine", "voice", "tempo", "warp", "pitch", "noise", "split",
                                          "licence"),
              [(v.id, v.base.engine, v.base.name, v.tempo, v.warp, v.pitch, v.noise, v.base.split, v.base.licence)
               for v in used])
    write_tsv(config.out / "manifest.tsv", COLUMNS, rows)


def list_voices() -> None:
    print("id\tsplit\tfree_for_training\tavailable\tlicence")
    for base in catalogue():
        missing = engine_missing(base.engine)
        print(f"{base.id}\t{base.split}\t{base.free}\t{'yes' if not missing else 'no: ' + missing}\t{base.licence}")


def parse_args(argv: list[str] | None) -> SynthConfig | None:
    p = argparse.ArgumentParser(prog="python -m acoustic.synth", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, help="output folder (audio/, manifest.tsv, voices.tsv)")
    p.add_argument("--split", choices=SPLITS, default="train", help="train voices and sentences, or held-out ones")
    p.add_argument("--sentences", type=int, default=1000, help="utterances to render (default 1000); the turns "
                   "of engines not installed here are skipped, so fewer may come out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--voices", default="", help="comma-separated patterns on voice ids (see --list-voices), "
                   "e.g. 'espeak-ng_en-us+*,flite_*'; default: every free voice of the split")
    p.add_argument("--speakers-per-voice", type=int, default=3, help="pseudo-speakers per voice (default 3)")
    p.add_argument("--text", type=Path, nargs="+", help="corpus .txt(.gz) files, in the LM recipe's order "
                   f"(default: {DEFAULT_TEXT}/*.txt.gz)")
    p.add_argument("--generated-share", type=float, default=0.3, help="share of generated meeting sentences")
    p.add_argument("--format", choices=FORMATS, default="flac")
    p.add_argument("--exclude", type=Path, nargs="+", default=[], metavar="MANIFEST",
                   help="skip sentences that these manifests already hold (e.g. a dev set of the training "
                   "voices that repeats no training sentence); the other utterances stay the same")
    p.add_argument("--jobs", type=int, default=1, help="rendering processes (default 1); the output is the "
                   "same for any number")
    p.add_argument("--list-voices", action="store_true", help="print the voice catalogue and exit")
    args = p.parse_args(argv)
    if args.list_voices:
        return None
    if args.out is None:
        p.error("--out is required")
    text = tuple(args.text) if args.text else tuple(sorted(DEFAULT_TEXT.glob("*.txt.gz")))
    try:
        return SynthConfig(out=args.out, split=args.split, sentences=args.sentences, seed=args.seed,
                           voices=tuple(v.strip() for v in args.voices.split(",") if v.strip()),
                           speakers_per_voice=args.speakers_per_voice, text=text,
                           generated_share=args.generated_share, format=args.format,
                           exclude=tuple(args.exclude), jobs=args.jobs)
    except ValueError as error:
        p.error(str(error))


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    if config is None:
        list_voices()
        return 0
    bases, missing = select_voices(config)
    for engine, reason in missing.items():
        print(f"acoustic.synth: skipping the {engine} voices' utterances: {reason}", file=sys.stderr)
    if not [b for b in bases if b.engine not in missing]:
        print("acoustic.synth: no voice can run for this split and --voices (see --list-voices)", file=sys.stderr)
        return 2
    missing_text = [str(p) for p in config.text if not p.is_file()]
    if missing_text:
        print(f"acoustic.synth: text file not found: {', '.join(missing_text)}", file=sys.stderr)
        return 2
    if not config.text:
        print(f"acoustic.synth: no corpus text in {DEFAULT_TEXT}: generated meeting sentences only", file=sys.stderr)
    try:
        excluded = frozenset(u.text.lower() for manifest in config.exclude for u in read_manifest(manifest))
    except ManifestError as error:
        print(f"acoustic.synth: --exclude: {error}", file=sys.stderr)
        return 2
    train_lines, heldout_lines = corpus_split(list(config.text))
    rng = np.random.default_rng([config.seed, SPLITS.index(config.split), 0])
    sentences = choose_sentences(train_lines if config.split == "train" else heldout_lines, config.sentences,
                                 config.generated_share, config.split, rng)
    speakers = assign_speakers(bases, config)
    config.out.mkdir(parents=True, exist_ok=True)
    bar = tqdm(desc=f"synthesize {config.split}", unit="utt")

    def advance(step: str, completed: int, total: int) -> None:
        bar.total = total
        bar.update(1)

    try:
        rows, failures = synthesize(config, sentences, speakers, missing, hook=advance, excluded=excluded)
    except KeyboardInterrupt:
        bar.close()
        print(f"acoustic.synth: interrupted; {config.out / 'manifest.tsv'} lists what was rendered so far "
              "(rerun the same command to go on)", file=sys.stderr)
        return 130
    bar.close()
    for failure in failures:
        print(f"acoustic.synth: failed: {failure}", file=sys.stderr)
    used = {row[2] for row in rows}
    skipped = sum(text.lower() in excluded for text in sentences)
    print(f"{len(rows)} utterances by {len(used)} speakers "
          f"({len({v.base.id for v in speakers if v.id in used})} voices) in {config.out / 'manifest.tsv'}"
          + (f"; {skipped} sentences skipped: already in --exclude manifests" if skipped else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
