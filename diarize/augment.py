"""Room acoustics and noise for simulated speech: a bank of pyroomacoustics shoebox impulse responses,
reverberation that keeps the direct path aligned with the dry signal, and coloured noise at a given SNR."""
from __future__ import annotations

import numpy as np
from pathlib import Path
from scipy.signal import fftconvolve

from acoustic.features import SAMPLE_RATE


def rir_bank(n: int = 64, seed: int = 0, cache: Path | None = None) -> list[np.ndarray]:
    """`n` room impulse responses (float32, peak-normalised) from random shoebox rooms with RT60 0.15-0.6 s,
    computed with the image source method (pyroomacoustics); cached as .npz when `cache` is given."""
    if cache is not None and cache.exists():
        z = np.load(cache)
        return [z[k] for k in sorted(z.files, key=int)]
    import pyroomacoustics as pra

    rng = np.random.default_rng(seed)
    rirs = []
    while len(rirs) < n:
        dims = rng.uniform([3.0, 3.0, 2.4], [9.0, 7.0, 3.5])
        rt60 = rng.uniform(0.15, 0.6)
        absorption, max_order = pra.inverse_sabine(rt60, dims)
        room = pra.ShoeBox(dims, fs=SAMPLE_RATE, materials=pra.Material(absorption), max_order=min(max_order, 10))
        room.add_source(rng.uniform(0.5, dims - 0.5))
        room.add_microphone(rng.uniform(0.5, dims - 0.5))
        room.compute_rir()
        rir = np.asarray(room.rir[0][0], dtype=np.float32)[: SAMPLE_RATE]
        rirs.append(rir / np.abs(rir).max())
    if cache is not None:
        save_rirs(rirs, cache)
    return rirs


def save_rirs(rirs: list[np.ndarray], path: Path) -> None:
    """The bank as the .npz `rir_bank(cache=path)` reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{str(i): r for i, r in enumerate(rirs)})


def reverberate(x: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """`x` convolved with `rir`, shifted so the direct path stays at time 0, same length and peak as `x`."""
    delay = int(np.argmax(np.abs(rir)))
    y = fftconvolve(x, rir)[delay: delay + len(x)]
    peak = np.abs(y).max()
    return (y * (np.abs(x).max() / peak) if peak > 0 else y).astype(np.float32)


def coloured_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS white, pink or brown noise of `n` samples."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spectrum), dtype=np.float64)
    f[0] = 1.0
    spectrum /= f ** (rng.choice([0.0, 0.5, 1.0]))
    noise = np.fft.irfft(spectrum, n)
    return (noise / (noise.std() + 1e-9)).astype(np.float32)


def add_noise(x: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """`x` plus coloured noise at `snr_db` relative to the RMS of its active part."""
    active = x[np.abs(x) > 1e-4]
    rms = np.sqrt(np.mean(active ** 2)) if len(active) else 1e-3
    return x + coloured_noise(len(x), rng) * rms * 10 ** (-snr_db / 20)
