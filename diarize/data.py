"""Voices for simulation and embedding training: utterances grouped by speaker, decoded once and cached.

Manifests are the shared data pack's TSVs (`path  text  speaker  duration`, paths relative to the manifest's
folder). Audio is kept as int16 at 16 kHz to halve memory; `Voices.take` returns float32."""
from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from acoustic.features import SAMPLE_RATE

log = logging.getLogger(__name__)


@dataclass
class Voices:
    """Utterances by speaker: `audio[i]` (int16) was spoken by `speakers[i]`."""
    audio: list[np.ndarray]
    speakers: list[str]

    def by_speaker(self) -> dict[str, list[int]]:
        """Speaker id -> indices of its utterances."""
        groups: dict[str, list[int]] = {}
        for i, spk in enumerate(self.speakers):
            groups.setdefault(spk, []).append(i)
        return groups

    def take(self, i: int) -> np.ndarray:
        """Utterance `i` as float32 in [-1, 1]."""
        return self.audio[i].astype(np.float32) / 32768.0


def read_manifest(path: Path, prefix: str = "", limit: int | None = None) -> list[tuple[Path, str]]:
    """(audio path, speaker id prefixed by `prefix`) rows of a data-pack manifest."""
    rows = []
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            rows.append((path.parent / row["path"], prefix + row["speaker"]))
    return rows[:limit]


def load_voices(manifests: list[tuple[Path, str, int | None]], cache: Path | None = None) -> Voices:
    """Decode every utterance of `manifests` ((manifest, speaker prefix, row limit) each), trimmed of
    leading/trailing silence; cached as an .npz in `cache` when given."""
    if cache is not None and cache.exists():
        z = np.load(cache, allow_pickle=False)
        lengths = z["lengths"]
        flat = np.split(z["audio"], np.cumsum(lengths)[:-1])
        return Voices(list(flat), [str(s) for s in z["speakers"]])
    audio, speakers = [], []
    for manifest, prefix, limit in manifests:
        for path, spk in read_manifest(manifest, prefix, limit):
            x, sr = sf.read(path, dtype="float32", always_2d=False)
            if sr != SAMPLE_RATE:
                raise ValueError(f"{path}: expected {SAMPLE_RATE} Hz, got {sr}")
            x = trim_silence(x)
            if len(x) >= SAMPLE_RATE // 2:
                audio.append((np.clip(x, -1, 1) * 32767).astype(np.int16))
                speakers.append(spk)
    log.info("loaded %d utterances of %d speakers", len(audio), len(set(speakers)))
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, audio=np.concatenate(audio), lengths=np.array([len(a) for a in audio]),
                 speakers=np.array(speakers))
    return Voices(audio, speakers)


def trim_silence(x: np.ndarray, frame: int = 320, rel_db: float = -40.0) -> np.ndarray:
    """Cut leading and trailing frames quieter than `rel_db` below the loudest frame."""
    n = len(x) // frame
    if n == 0:
        return x
    energy = (x[: n * frame].reshape(n, frame) ** 2).mean(axis=1) + 1e-12
    loud = np.flatnonzero(10 * np.log10(energy / energy.max()) > rel_db)
    return x[loud[0] * frame: (loud[-1] + 1) * frame]


def training_voices(data: Path, cache: Path | None = None) -> Voices:
    """Every training speaker we have: speechocean762 TRAIN (125), librispeech_speakers (251), LJSpeech (1).

    speechocean762 test is never used: meetings_dev/so762 is built from it."""
    return load_voices([
        (data / "speechocean762/manifest_train.tsv", "so762-", None),
        (data / "librispeech_speakers/manifest.tsv", "libri-", None),
        (data / "ljspeech/manifest.tsv", "lj-", 120),
    ], cache)


def heldout_voices(data: Path, cache: Path | None = None) -> Voices:
    """speechocean762 TEST speakers, for the embedding EER only (never trained on)."""
    return load_voices([(data / "speechocean762/manifest_test.tsv", "so762-", None)], cache)
