"""meetings_dev for diarization: recordings with reference RTTM (and UEM where given), and the fixed
tune/report split. Hyper-parameters are tuned on so762 meeting00-05 and ami_debug trn*; every other
recording (so762 meeting06-11, ami_debug dev*/tst*, pyannote_sample) is only ever reported on."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from pyannote.core import Annotation, Segment, Timeline

from acoustic.features import SAMPLE_RATE

TUNE = {f"so762/meeting{i:02d}" for i in range(6)} | {f"ami_debug/trn{i:02d}" for i in range(10)}


@dataclass
class Recording:
    """One dev recording: `key` is `<subset>/<uri>`."""
    key: str
    audio_path: Path
    reference: Annotation
    uem: Timeline
    duration: float

    @property
    def subset(self) -> str:
        return self.key.split("/")[0]

    @property
    def uri(self) -> str:
        return self.key.split("/")[1]

    def audio(self) -> np.ndarray:
        x, sr = sf.read(self.audio_path, dtype="float32", always_2d=False)
        if sr != SAMPLE_RATE or x.ndim != 1:
            raise ValueError(f"{self.audio_path}: expected mono {SAMPLE_RATE} Hz")
        return x


def read_rttm(path: Path, uri: str) -> Annotation:
    """Reference turns of an RTTM file as a pyannote Annotation."""
    ann = Annotation(uri=uri)
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        f = line.split()
        if f and f[0] == "SPEAKER":
            ann[Segment(float(f[3]), float(f[3]) + float(f[4])), i] = f[7]
    return ann


def read_uem(path: Path, uri: str, duration: float) -> Timeline:
    """Scored regions of a UEM file; the whole recording when there is none."""
    if not path.exists():
        return Timeline([Segment(0.0, duration)], uri=uri)
    return Timeline([Segment(float(f[2]), float(f[3])) for f in
                     (line.split() for line in path.read_text(encoding="utf-8").splitlines()) if f], uri=uri)


def load_devset(root: Path) -> list[Recording]:
    """Every recording of meetings_dev/manifest.tsv, sorted by key."""
    recordings = []
    with open(root / "manifest.tsv", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            audio = root / row["path"]
            key = f"{audio.parent.name}/{audio.stem}"
            duration = float(row["duration"])
            recordings.append(Recording(key, audio, read_rttm(root / row["rttm"], audio.stem),
                                        read_uem(audio.with_suffix(".uem"), audio.stem, duration), duration))
    return sorted(recordings, key=lambda r: r.key)


def part(recording: Recording) -> str:
    """'tune' or 'report'."""
    return "tune" if recording.key in TUNE else "report"
