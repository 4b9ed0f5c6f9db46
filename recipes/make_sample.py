"""Build the bundled sample meeting (samples/meeting.*) from freely licensed clips in ../shared/data.

Voices: LJ (LJSpeech, public domain; clips LJ003-0079.., held out of training) and two adult
speechocean762 *test* speakers (Apache-2.0; the test split is never trained on). Writes a ~1 minute
Opus file, its reference RTTM, STM and plain-text transcript.

    python recipes/make_sample.py --data ../shared/data --out samples
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 16000
SO762_SPEAKERS = {"1037": "Chen", "0157": "Mei"}  # adult speakers of the test split; names are labels only


def read(manifest: Path) -> list[dict]:
    with manifest.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def turns(data: Path) -> list[tuple[str, Path, str]]:
    """(speaker label, audio path, text) in speaking order: LJ reads one clip, then each so762 voice two prompts."""
    lj = [r for r in read(data / "ljspeech/manifest.tsv") if r["path"] >= "wavs/LJ003-0079"][:3]
    so = read(data / "speechocean762/manifest_test.tsv")
    by_speaker = {s: [r for r in so if r["speaker"] == s and len(r["text"].split()) >= 4][:8] for s in SO762_SPEAKERS}
    out = []
    for i, clip in enumerate(lj):
        out.append(("Lee", data / "ljspeech" / clip["path"], clip["text"]))
        for speaker, name in SO762_SPEAKERS.items():
            for row in by_speaker[speaker][2 * i: 2 * i + 2]:
                out.append((name, data / "speechocean762" / row["path"], row["text"]))
    return out


def build(data: Path, out: Path, seed: int = 762) -> None:
    rng = np.random.default_rng(seed)
    pieces, rttm, stm, text = [], [], [], []
    position, previous = 0.5, None
    pieces.append(np.zeros(int(0.5 * RATE), np.float32))
    for speaker, path, words in turns(data):
        gap = rng.uniform(0.25, 0.4) if speaker == previous else rng.uniform(0.6, 1.0)
        if previous is not None:
            pieces.append(np.zeros(int(gap * RATE), np.float32))
            position += int(gap * RATE) / RATE
        audio, rate = sf.read(str(path), dtype="float32")
        assert rate == RATE, path
        audio = 0.5 * audio / max(1e-6, float(np.abs(audio).max()))
        pieces.append(audio)
        duration = audio.size / RATE
        rttm.append(f"SPEAKER meeting 1 {position:.3f} {duration:.3f} <NA> <NA> {speaker} <NA> <NA>")
        stm.append(f"meeting 1 {speaker} {position:.3f} {position + duration:.3f} {words}")
        text.append(f"{speaker}: {words}")
        position += duration
        previous = speaker
    pieces.append(np.zeros(int(0.5 * RATE), np.float32))
    out.mkdir(parents=True, exist_ok=True)
    sf.write(str(out / "meeting.opus"), np.concatenate(pieces), RATE, format="OGG", subtype="OPUS",
             compression_level=0.9)
    for suffix, lines in (("rttm", rttm), ("stm", stm), ("txt", text)):
        (out / f"meeting.{suffix}").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("samples"))
    args = parser.parse_args()
    build(args.data, args.out)
