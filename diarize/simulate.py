"""Meeting simulator: synthetic multi-speaker recordings from real voices, with reference turns.

Speakers take turns (1-3 utterances each) separated by pauses; with probability `overlap` a turn starts
before the previous one ends (a short overlap or back-channel). Each speaker sits at a fixed place in one
simulated room (one pyroomacoustics impulse response per speaker), utterances are peak-normalised to a random
level, and coloured noise is added. The reference is per-speaker voice activity measured on the dry utterance
(20 ms frames), so the RTTM matches the audio.

What counts as "speech" in the reference (the label convention, `MeetingConfig.fill_gap` and `pad`): a speaker's
turn, not only its loud frames. Pauses under 0.5 s inside one speaker's speech (stop closures, breaths,
hesitations) belong to the turn, and each turn extends 0.1 s beyond the frames within 35 dB of the utterance's
peak (weak onsets, trailing fricatives and breath that the energy threshold misses). This is how human meeting
references are drawn: annotators mark who holds the floor, bridging short pauses (NIST RT and AMI practice), and
speechocean762's meeting references are whole utterance spans. A model trained on bare energy activity learns to
drop those frames and is counted as missing speech against such references.

    python -m diarize.simulate --data ../shared/data --out exp/diar/sim --count 20 --seed 1
writes `<uri>.wav`, `<uri>.rttm`, `<uri>.uem` and `manifest.tsv` (the meetings_dev layout); `simulate_meeting`
is what the segmentation trainer calls on the fly."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from acoustic.features import SAMPLE_RATE
from diarize.augment import add_noise, reverberate, rir_bank
from diarize.data import Voices, training_voices
from minutes.segmenting import true_runs

FRAME = 320  # 20 ms activity frames
CORPUS_WEIGHTS = {"so762": 0.5, "libri": 0.45, "lj": 0.05}  # speechocean762 voices resemble the dev meetings


@dataclass(frozen=True)
class MeetingConfig:
    """How meetings are drawn; validated on construction."""
    duration: float = 60.0          # seconds of audio (turns are cut at the end)
    speakers: tuple[int, int] = (2, 4)
    overlap: float = 0.2            # probability that a turn overlaps the previous one
    max_overlap: float = 2.0        # seconds
    pause: tuple[float, float] = (0.05, 1.5)
    turn: tuple[int, int] = (1, 3)  # utterances per turn
    max_utterance: float = 8.0      # long utterances (LibriSpeech clips) are cropped to this
    reverb: float = 0.5             # probability the meeting is reverberant
    noise: float = 0.7              # probability of background noise
    snr: tuple[float, float] = (5.0, 30.0)
    level: tuple[float, float] = (0.2, 0.8)  # per-utterance peak
    fill_gap: float = 0.5           # label convention (module docstring): a speaker's pauses under this are speech
    pad: float = 0.1                # and reference turns extend this far (s) around the voiced frames

    def __post_init__(self) -> None:
        if self.duration <= 0 or not 1 <= self.speakers[0] <= self.speakers[1]:
            raise ValueError("duration must be positive and speakers a (min, max) with 1 <= min <= max")
        if not (0 <= self.overlap <= 1 and 0 <= self.reverb <= 1 and 0 <= self.noise <= 1):
            raise ValueError("overlap, reverb and noise are probabilities in [0, 1]")
        if self.fill_gap < 0 or self.pad < 0:
            raise ValueError("fill_gap and pad are non-negative seconds")


@dataclass
class Meeting:
    """Mono float32 16 kHz audio and reference turns (start, end, speaker) in seconds."""
    audio: np.ndarray
    turns: list[tuple[float, float, str]]

    @property
    def duration(self) -> float:
        return len(self.audio) / SAMPLE_RATE


def activity(x: np.ndarray, fill_gap: float, rel_db: float = -35.0) -> list[tuple[int, int]]:
    """Voice-active (start, end) sample ranges of a dry utterance: 20 ms frames within `rel_db` of the loudest,
    with gaps shorter than `fill_gap` seconds filled."""
    n = len(x) // FRAME
    if n == 0:
        return []
    energy = (x[: n * FRAME].reshape(n, FRAME) ** 2).mean(axis=1) + 1e-12
    active = 10 * np.log10(energy / energy.max()) > rel_db
    spans: list[list[int]] = []
    for i in np.flatnonzero(active):
        if spans and (i - spans[-1][1]) * FRAME < fill_gap * SAMPLE_RATE:
            spans[-1][1] = i + 1
        else:
            spans.append([i, i + 1])
    return [(a * FRAME, b * FRAME) for a, b in spans if b - a >= 3]  # drop clicks under 60 ms


def pick_utterance(voices: Voices, idx: list[int], cfg: MeetingConfig, rng: np.random.Generator) -> np.ndarray:
    """A random utterance of one speaker, cropped to at most `max_utterance` seconds, at a random peak level."""
    x = voices.take(int(rng.choice(idx)))
    limit = int(cfg.max_utterance * SAMPLE_RATE)
    if len(x) > limit:
        n = int(rng.uniform(1.5, cfg.max_utterance) * SAMPLE_RATE)
        start = rng.integers(0, len(x) - n)
        x = x[start: start + n]
    return x * (rng.uniform(*cfg.level) / (np.abs(x).max() + 1e-6))


def schedule(voices: Voices, speakers: list[str], cfg: MeetingConfig, rng: np.random.Generator
             ) -> list[tuple[int, str, np.ndarray]]:
    """Turn-taking: (start sample, speaker, dry utterance) until the meeting is full."""
    groups = voices.by_speaker()
    total = int(cfg.duration * SAMPLE_RATE)
    placed, cursor, last = [], int(rng.uniform(0, 1.0) * SAMPLE_RATE), None
    while cursor < total:
        choices = [s for s in speakers if s != last] or speakers
        spk = choices[rng.integers(len(choices))]
        for _ in range(rng.integers(cfg.turn[0], cfg.turn[1] + 1)):
            x = pick_utterance(voices, groups[spk], cfg, rng)
            placed.append((cursor, spk, x))
            cursor += len(x) + int(rng.uniform(0.05, 0.4) * SAMPLE_RATE)
        if rng.random() < cfg.overlap:
            cursor -= int(rng.uniform(0.2, cfg.max_overlap) * SAMPLE_RATE)
            cursor = max(cursor, placed[-1][0] + SAMPLE_RATE // 4)
        else:
            cursor += int(rng.uniform(*cfg.pause) * SAMPLE_RATE)
        last = spk
    return placed


def draw_speakers(voices: Voices, k: int, rng: np.random.Generator) -> list[str]:
    """`k` distinct speakers (at most as many as there are), each first drawing a corpus (the id prefix before
    '-') by CORPUS_WEIGHTS."""
    pools: dict[str, list[str]] = {}
    for spk in sorted(voices.by_speaker()):
        pools.setdefault(spk.split("-")[0], []).append(spk)
    k = min(k, sum(len(pool) for pool in pools.values()))
    names = sorted(pools)
    weights = np.array([CORPUS_WEIGHTS.get(n, 0.1) for n in names])
    chosen: list[str] = []
    while len(chosen) < k:
        pool = pools[names[rng.choice(len(names), p=weights / weights.sum())]]
        spk = pool[rng.integers(len(pool))]
        if spk not in chosen:
            chosen.append(spk)
    return chosen


def simulate_meeting(voices: Voices, cfg: MeetingConfig, rng: np.random.Generator,
                     rirs: list[np.ndarray] | None = None, speakers: list[str] | None = None) -> Meeting:
    """One simulated meeting (see the module docstring); `speakers` defaults to a random draw."""
    if speakers is None:
        speakers = draw_speakers(voices, int(rng.integers(cfg.speakers[0], cfg.speakers[1] + 1)), rng)
    reverberant = rirs is not None and rng.random() < cfg.reverb
    room = {s: rirs[rng.integers(len(rirs))] for s in speakers} if reverberant else {}
    total = int(cfg.duration * SAMPLE_RATE)
    audio = np.zeros(total, dtype=np.float32)
    active: dict[str, np.ndarray] = {s: np.zeros(total // FRAME + 1, dtype=bool) for s in speakers}
    for start, spk, x in schedule(voices, speakers, cfg, rng):
        if start >= total:
            continue
        wet = reverberate(x, room[spk]) if spk in room else x
        n = min(len(wet), total - start)
        audio[start: start + n] += wet[:n]
        pad = int(cfg.pad * SAMPLE_RATE)
        for a, b in activity(x, cfg.fill_gap):
            a, b = min(max(start + a - pad, 0), total), min(start + b + pad, total)
            active[spk][a // FRAME: b // FRAME] = True
    if rng.random() < cfg.noise:
        audio = add_noise(audio, rng.uniform(*cfg.snr), rng)
    return Meeting(np.clip(audio, -1, 1).astype(np.float32), frames_to_turns(active, cfg.fill_gap))


def frames_to_turns(active: dict[str, np.ndarray], fill_gap: float) -> list[tuple[float, float, str]]:
    """Per-speaker 20 ms activity -> sorted (start, end, speaker) turns, gaps under `fill_gap` merged."""
    turns = []
    step = FRAME / SAMPLE_RATE
    for spk, frames in active.items():
        for a, b in true_runs(frames):
            if turns and turns[-1][2] == spk and a * step - turns[-1][1] < fill_gap:
                turns[-1] = (turns[-1][0], float(b * step), spk)
            else:
                turns.append((float(a * step), float(b * step), spk))
    return sorted(turns)


def write_meeting(meeting: Meeting, folder: Path, uri: str) -> None:
    """`<uri>.wav` (PCM 16), `<uri>.rttm` and `<uri>.uem` (the whole file) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    sf.write(folder / f"{uri}.wav", meeting.audio, SAMPLE_RATE, subtype="PCM_16")
    with open(folder / f"{uri}.rttm", "w", encoding="utf-8") as f:
        for start, end, spk in meeting.turns:
            f.write(f"SPEAKER {uri} 1 {start:.3f} {end - start:.3f} <NA> <NA> {spk} <NA> <NA>\n")
    (folder / f"{uri}.uem").write_text(f"{uri} NA 0.000 {meeting.duration:.3f}\n", encoding="utf-8")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--duration", type=float, default=120.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", default="exp/diar", help="folder for the decoded-voices and RIR caches")
    args = p.parse_args()
    voices = training_voices(Path(args.data), Path(args.cache) / "train_voices.npz")
    rirs = rir_bank(64, cache=Path(args.cache) / "rirs.npz")
    rng = np.random.default_rng(args.seed)
    out = Path(args.out)
    rows = []
    for i in range(args.count):
        uri = f"sim{args.seed:03d}_{i:03d}"
        meeting = simulate_meeting(voices, MeetingConfig(duration=args.duration), rng, rirs)
        write_meeting(meeting, out, uri)
        rows.append(f"{uri}.wav\t{uri}.rttm\t\t{meeting.duration:.3f}\n")
    (out / "manifest.tsv").write_text("path\trttm\tstm\tduration\n" + "".join(rows), encoding="utf-8")


if __name__ == "__main__":
    main()
