"""On-the-fly waveform augmentation for training: speed perturbation, simulated rooms, noise and babble, and
lossy codec round trips (SpecAugment, on features, lives in acoustic.features).

Everything is seeded: `Augmenter(config)(audio, key)` returns the same audio for the same seed and key
(the trainer uses (epoch, utterance index)), so an interrupted and resumed run sees the same data.

Fixed augmented copies, for front ends too slow to augment anew every epoch (the Whisper encoder): their
features are computed and cached once, like any other training manifest's.
    python -m acoustic.augment --manifest ../shared/data/speechocean762/manifest_train.tsv --out exp/aug --seed 1
"""
from __future__ import annotations

import argparse
import io
from dataclasses import dataclass
from pathlib import Path
from functools import partial
from typing import Callable

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF
from scipy.signal import fftconvolve

from acoustic.data import audio_features, read_16k, read_manifest
from acoustic.features import SAMPLE_RATE, FeatureConfig

CODECS = ("opus", "mulaw-8k")


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations, how often and how strong; validated in one place."""

    speeds: tuple[float, ...] = (0.9, 1.0, 1.1)  # one is drawn per utterance (resampling: tempo and pitch)
    room_prob: float = 0.4  # convolve with a simulated room impulse response
    rooms: int = 64  # size of the seeded bank of room impulse responses
    rt60: tuple[float, float] = (0.15, 0.8)  # reverberation time range of the simulated rooms, seconds
    noise_prob: float = 0.5  # add coloured noise or babble
    babble_share: float = 0.3  # of the noisy utterances, the share with babble (needs a babble source)
    snr_db: tuple[float, float] = (0.0, 25.0)  # signal-to-noise ratio range
    codec_prob: float = 0.2  # Opus at a low bitrate, or 8 kHz mu-law, and back
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        if not self.speeds or not all(0.5 <= s <= 2.0 for s in self.speeds):
            problems.append("speeds must be a non-empty list of factors in 0.5..2")
        for name in ("room_prob", "noise_prob", "babble_share", "codec_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{name} must be in 0..1")
        if self.rooms < 1:
            problems.append("rooms must be >= 1")
        if not 0.05 <= self.rt60[0] <= self.rt60[1] <= 3.0:
            problems.append("rt60 must be (low, high) with 0.05 <= low <= high <= 3 seconds")
        if not -10.0 <= self.snr_db[0] <= self.snr_db[1] <= 60.0:
            problems.append("snr_db must be (low, high) with -10 <= low <= high <= 60 dB")
        if problems:
            raise ValueError("invalid AugmentConfig: " + "; ".join(problems))


def speed_perturb(audio: np.ndarray, factor: float) -> np.ndarray:
    """Play `factor` times faster (Kaldi-style speed perturbation): about len(audio) / factor samples."""
    if factor == 1.0:
        return audio
    wave = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    return AF.resample(wave, round(SAMPLE_RATE * factor), SAMPLE_RATE).numpy()


def room_impulse_response(index: int, rt60: tuple[float, float], seed: int) -> np.ndarray:
    """Impulse response number `index` of a seeded bank of random shoebox rooms (image source method,
    pyroomacoustics), starting at its direct path and scaled to unit energy."""
    import pyroomacoustics as pra

    rng = np.random.default_rng([seed, 7, index])
    dims = rng.uniform([3.0, 3.0, 2.4], [10.0, 8.0, 3.5])
    absorption, order = pra.inverse_sabine(float(rng.uniform(*rt60)), dims)
    room = pra.ShoeBox(dims, fs=SAMPLE_RATE, materials=pra.Material(absorption), max_order=min(order, 30))
    room.add_source(rng.uniform(0.5, dims - 0.5))
    room.add_microphone(rng.uniform(0.5, dims - 0.5))
    room.compute_rir()
    rir = np.asarray(room.rir[0][0], dtype=np.float32)
    rir = rir[int(np.argmax(np.abs(rir))):]  # no delay before the direct sound
    return rir / np.sqrt(np.sum(rir ** 2))


def reverberate(audio: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Convolve with an impulse response, keep the length and the RMS level."""
    wet = fftconvolve(audio, rir)[: audio.size].astype(np.float32)
    return wet * (_rms(audio) / max(_rms(wet), 1e-9))


def coloured_noise(samples: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Noise with power ~ 1 / f**exponent (0 white, 1 pink, 2 brown), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(samples))
    frequencies = np.fft.rfftfreq(samples)
    spectrum[1:] /= frequencies[1:] ** (exponent / 2)
    spectrum[0] = 0.0
    noise = np.fft.irfft(spectrum, n=samples)
    return (noise / max(_rms(noise), 1e-12)).astype(np.float32)


def add_noise(audio: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """`audio` plus `noise` (tiled or cut to length) scaled to the given signal-to-noise ratio."""
    noise = np.resize(noise, audio.size)
    scale = _rms(audio) / max(_rms(noise), 1e-12) / (10.0 ** (snr_db / 20.0))
    return (audio + scale * noise).astype(np.float32)


def babble(samples: int, speakers: list[np.ndarray]) -> np.ndarray:
    """Several talkers at once: each utterance at unit RMS, tiled to `samples`, summed."""
    return np.sum([np.resize(s, samples) / max(_rms(s), 1e-9) for s in speakers], axis=0).astype(np.float32)


def codec_round_trip(audio: np.ndarray, codec: str, level: float = 0.9) -> np.ndarray:
    """Encode and decode in memory: Opus (`level` 0..1, higher = lower bitrate) or 8 kHz mu-law telephone."""
    buffer = io.BytesIO()
    if codec == "opus":
        sf.write(buffer, np.clip(audio, -1, 1), SAMPLE_RATE, format="OGG", subtype="OPUS", compression_level=level)
        buffer.seek(0)
        decoded, _ = sf.read(buffer, dtype="float32")
    elif codec == "mulaw-8k":
        narrow = AF.resample(torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)), SAMPLE_RATE, 8000)
        sf.write(buffer, np.clip(narrow.numpy(), -1, 1), 8000, format="WAV", subtype="ULAW")
        buffer.seek(0)
        decoded = AF.resample(torch.from_numpy(sf.read(buffer, dtype="float32")[0]), 8000, SAMPLE_RATE).numpy()
    else:
        raise ValueError(f"unknown codec {codec!r}; choose one of: {', '.join(CODECS)}")
    return np.resize(decoded, audio.size) if decoded.size < audio.size else decoded[: audio.size]


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


class Augmenter:
    """The composed augmentation. `talkers(rng)` gives a few other utterances for babble (None: no babble)."""

    def __init__(self, config: AugmentConfig = AugmentConfig(),
                 talkers: Callable[[np.random.Generator], list[np.ndarray]] | None = None) -> None:
        self.config = config
        self.talkers = talkers
        self._rirs: dict[int, np.ndarray] = {}  # the bank, each room simulated when first drawn

    def rir(self, index: int) -> np.ndarray:
        if index not in self._rirs:
            self._rirs[index] = room_impulse_response(index, self.config.rt60, self.config.seed)
        return self._rirs[index]

    def __call__(self, audio: np.ndarray, key: tuple[int, ...] = ()) -> np.ndarray:
        """Augmented copy of float32 16 kHz `audio`; the same `key` (and seed) always gives the same result."""
        c = self.config
        rng = np.random.default_rng([c.seed, *key])
        out = speed_perturb(np.asarray(audio, dtype=np.float32), float(rng.choice(c.speeds)))
        if out.size == 0:
            return out
        if rng.random() < c.room_prob:
            out = reverberate(out, self.rir(int(rng.integers(c.rooms))))
        if rng.random() < c.noise_prob:
            if self.talkers is not None and rng.random() < c.babble_share:
                noise = babble(out.size, self.talkers(rng))
            else:
                noise = coloured_noise(out.size, float(rng.choice([0.0, 1.0, 2.0])), rng)
            out = add_noise(out, noise, float(rng.uniform(*c.snr_db)))
        if rng.random() < c.codec_prob:
            out = codec_round_trip(out, str(rng.choice(CODECS)), level=float(rng.uniform(0.6, 1.0)))
        peak = float(np.abs(out).max()) if out.size else 0.0
        return (out / peak * 0.99 if peak > 0.99 else out).astype(np.float32)


def talkers(paths: list[Path], rng: np.random.Generator) -> list[np.ndarray]:
    """3 to 6 random utterances of `paths`, for babble."""
    return [read_16k(paths[int(i)]) for i in rng.integers(len(paths), size=int(rng.integers(3, 7)))]


class AugmentedFeatures:
    """Training features computed per batch from freshly augmented audio: (epoch, utterance) keys the draw, and
    babble mixes 3 to 6 other training utterances."""

    def __init__(self, paths: list[Path], features: FeatureConfig, config: AugmentConfig = AugmentConfig(),
                 threads: int = 1) -> None:
        self.paths, self.features, self.threads = paths, features, threads
        self.augmenter = Augmenter(config, talkers=partial(talkers, paths))

    def batch(self, indices: list[int], epoch: int) -> list[torch.Tensor]:
        """Features (frames, dim) fp16 of the augmented utterances `indices` for this epoch."""
        audios = [self.augmenter(read_16k(self.paths[i]), key=(epoch, i)) for i in indices]
        return audio_features(audios, self.features, self.threads)


def write_copy(manifests: list[Path], out: Path, config: AugmentConfig) -> int:
    """One augmented copy of every utterance of `manifests` (babble from the same utterances), as FLAC files in
    `out` with `out/manifest.tsv` (same text and speaker, the new duration); returns the number written."""
    from tqdm import tqdm

    utterances = [u for manifest in manifests for u in read_manifest(manifest)]
    paths = [u.path for u in utterances]
    augmenter = Augmenter(config, talkers=partial(talkers, paths))
    out.mkdir(parents=True, exist_ok=True)
    with (out / "manifest.tsv").open("w", encoding="utf-8", newline="") as f:
        f.write("path\ttext\tspeaker\tduration\n")  # unquoted TSV, as read_manifest reads it (texts have quotes)
        for i, u in enumerate(tqdm(utterances, desc="augment", unit="utt")):
            audio = augmenter(read_16k(u.path), key=(i,))
            sf.write(out / f"{i:06d}.flac", audio, SAMPLE_RATE)
            f.write(f"{i:06d}.flac\t{u.text}\t{u.speaker}\t{len(audio) / SAMPLE_RATE:.3f}\n")
    return len(utterances)


def main() -> None:
    p = argparse.ArgumentParser(description="Write one seeded augmented copy of training manifests (speed, rooms, "
                                "noise and babble, codecs) as FLAC with its own manifest.")
    p.add_argument("--manifest", nargs="+", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    written = write_copy(args.manifest, args.out, AugmentConfig(seed=args.seed))
    print(f"{written} utterances -> {args.out / 'manifest.tsv'}")


if __name__ == "__main__":
    main()
