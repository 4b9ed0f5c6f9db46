"""Manifests (path, text, speaker, duration TSVs), cached log-mel features and length-bucketed batches."""
from __future__ import annotations

import csv
import hashlib
import logging
import os
from dataclasses import asdict, dataclass
from functools import lru_cache
from multiprocessing import Pool
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf
import torch

from acoustic.features import SAMPLE_RATE, FeatureConfig, LogMel

log = logging.getLogger(__name__)
COLUMNS = ("path", "text", "speaker", "duration")


def write_tsv(path: Path, header: tuple[str, ...], rows: list[tuple]) -> None:
    """A TSV written atomically; fields must not contain tabs or newlines."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as f:
        for row in [header, *rows]:
            f.write("\t".join(str(v) for v in row) + "\n")
    os.replace(tmp, path)


class ManifestError(ValueError):
    """A manifest that cannot be used; the message names the file, line and problem."""


@dataclass(frozen=True)
class Utterance:
    path: Path
    text: str
    speaker: str
    duration: float


def read_manifest(manifest: str | Path, require_text: bool = True) -> list[Utterance]:
    """Parse and validate a manifest; audio paths are relative to the manifest's folder."""
    manifest = Path(manifest)
    if not manifest.is_file():
        raise ManifestError(f"manifest not found: {manifest}")
    with manifest.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or tuple(rows[0][:4]) != COLUMNS:
        raise ManifestError(f"{manifest}: header must be {' '.join(COLUMNS)} (tab-separated)")
    utterances = [_parse_row(manifest, number, row, require_text) for number, row in enumerate(rows[1:], start=2)]
    if not utterances:
        raise ManifestError(f"{manifest}: no utterances")
    return utterances


def _parse_row(manifest: Path, number: int, row: list[str], require_text: bool) -> Utterance:
    where = f"{manifest}:{number}"
    if len(row) < 4:
        raise ManifestError(f"{where}: expected 4 tab-separated columns, got {len(row)}")
    path = manifest.parent / row[0]
    if not path.is_file():
        raise ManifestError(f"{where}: audio file not found: {path}")
    if require_text and not row[1].strip():
        raise ManifestError(f"{where}: empty text")
    try:
        duration = float(row[3])
    except ValueError:
        raise ManifestError(f"{where}: duration is not a number: {row[3]!r}") from None
    if not duration >= 0:  # also rejects nan
        raise ManifestError(f"{where}: duration must be >= 0 seconds, got {row[3]!r}")
    return Utterance(path, row[1], row[2], duration)


def _features_of(args: tuple[str, dict]) -> torch.Tensor:
    path, config = args
    torch.set_num_threads(1)
    wave = torch.from_numpy(read_16k(Path(path)))
    return LogMel(FeatureConfig(**config))(wave[None])[0].half()


def load_features(utterances: list[Utterance], config: FeatureConfig, cache_dir: Path | None,
                  workers: int = 2) -> list[torch.Tensor]:
    """Features (frames, dim) fp16 per utterance, computed once and cached under `cache_dir`."""
    key = hashlib.sha1(repr((asdict(config), [(str(u.path), u.duration) for u in utterances])).encode())
    cache = cache_dir / f"feats-{key.hexdigest()[:16]}.pt" if cache_dir else None
    if cache and cache.is_file():
        return torch.load(str(cache), weights_only=True)
    if config.kind == "whisper-encoder":
        feats = _encoder_features((read_16k(u.path) for u in utterances), len(utterances), threads=workers)
    else:
        from tqdm import tqdm
        jobs = [(str(u.path), asdict(config)) for u in utterances]
        with Pool(workers) as pool:
            feats = list(tqdm(pool.imap(_features_of, jobs, chunksize=16), total=len(jobs), desc="features"))
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save(feats, str(cache))
    return feats


def audio_features(audios: list[np.ndarray], config: FeatureConfig, threads: int = 1) -> list[torch.Tensor]:
    """Features (frames, dim) fp16 of 16 kHz audio already in memory (on-the-fly augmented training audio)."""
    if config.kind == "whisper-encoder":
        return _encoder_features(iter(audios), len(audios), threads, progress=False)
    mel = LogMel(config)
    return [mel(torch.from_numpy(audio)[None])[0].half() for audio in audios]


@lru_cache(maxsize=2)
def _whisper_encoder(threads: int):
    from acoustic.encoder import WhisperEncoder

    return WhisperEncoder(threads=threads)


def _encoder_features(audios: Iterator[np.ndarray], count: int, threads: int,
                      progress: bool = True) -> list[torch.Tensor]:
    """Whisper-encoder states per utterance. Utterances are packed into 30 s windows, each starting on an
    encoder frame boundary and followed by 0.2 s of silence, so the encoder runs once per window."""
    from tqdm import tqdm

    from acoustic.encoder import SAMPLES_PER_FRAME, WINDOW_SAMPLES

    encoder, gap = _whisper_encoder(threads), 10 * SAMPLES_PER_FRAME
    feats: list[torch.Tensor] = [torch.empty(0)] * count
    packed: list[tuple[int, np.ndarray]] = []  # (utterance index, audio padded to whole frames + gap)

    def flush() -> None:
        states = encoder.encode([np.concatenate([audio for _, audio in packed])[:WINDOW_SAMPLES]])[0]
        frame = 0
        for index, audio in packed:
            frames = audio.size // SAMPLES_PER_FRAME
            feats[index] = states[frame: frame + frames - 10].half()  # drop the gap's 10 frames
            frame += frames
        packed.clear()

    for index, audio in enumerate(tqdm(audios, desc="encoder features", total=count, disable=not progress)):
        audio = audio[:WINDOW_SAMPLES - gap]
        audio = np.pad(audio, (0, -audio.size % SAMPLES_PER_FRAME + gap))
        if packed and sum(a.size for _, a in packed) + audio.size - gap > WINDOW_SAMPLES:
            flush()
        packed.append((index, audio))
    if packed:
        flush()
    return feats


def read_16k(path: Path) -> np.ndarray:
    """Mono float32 audio at SAMPLE_RATE."""
    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if rate != SAMPLE_RATE:
        import torchaudio.functional as F
        audio = F.resample(torch.from_numpy(audio), rate, SAMPLE_RATE).numpy()
    return audio


def make_batches(lengths: list[int], max_frames: int, rng: np.random.Generator | None) -> list[list[int]]:
    """Group indices of similar length so that batch_size * longest <= max_frames; shuffled if rng given."""
    order = np.argsort(lengths, kind="stable")
    batches, current, longest = [], [], 0
    for index in order:
        longest_if_added = max(longest, lengths[index])
        if current and longest_if_added * (len(current) + 1) > max_frames:
            batches.append(current)
            current, longest_if_added = [], lengths[index]
        current.append(int(index))
        longest = longest_if_added
    if current:
        batches.append(current)
    if rng is not None:
        rng.shuffle(batches)
    return batches


def collate(features: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """List of (frames, n_mels) -> padded float32 (batch, max_frames, n_mels) and lengths (batch,)."""
    lengths = torch.tensor([f.shape[0] for f in features])
    padded = torch.nn.utils.rnn.pad_sequence([f.float() for f in features], batch_first=True)
    return padded, lengths
