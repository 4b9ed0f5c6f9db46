"""Pack manifests' audio into one compact folder of low-bitrate Opus files, to carry training data to a GPU
machine (whose working tree is size-limited). The new manifests keep text, speaker and duration; paths are
relative to the pack folder. Opus at compression level 0.97 is about 12 kbit/s here (the shared data is
about 30 kbit/s): fine for ASR training, not for listening tests. Re-encoding lossy audio loses a little
more of it each time, so pack once from the original files.

    python recipes/pack_opus.py --out exp/pack --level 0.97 \
        --manifest train=../shared/data/speechocean762/manifest_train.tsv --manifest lj=exp/lj_train.tsv
    # -> exp/pack/train.tsv, exp/pack/lj.tsv, exp/pack/train/0000.opus, ...
    python recipes/pack_opus.py ... --dev-speakers train=10   # also train_dev.tsv: 10 whole speakers of train
"""
from __future__ import annotations

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import soundfile as sf
from tqdm import tqdm

from acoustic.data import COLUMNS, ManifestError, Utterance, read_manifest, write_tsv
from acoustic.features import SAMPLE_RATE


def pack_one(source: Path, target: Path, level: float) -> None:
    audio, rate = sf.read(str(source), dtype="float32")
    if rate != SAMPLE_RATE:
        raise ValueError(f"{source}: {rate} Hz; the packs hold {SAMPLE_RATE} Hz audio")
    sf.write(str(target), audio, SAMPLE_RATE, format="OGG", subtype="OPUS", compression_level=level)


def manifest_rows(rows: list[tuple[str, Utterance]]) -> list[tuple]:
    return [(rel, u.text, u.speaker, f"{u.duration:.3f}") for rel, u in rows]


def split_speakers(rows: list[tuple[str, Utterance]], count: int) -> tuple[list, list]:
    """(train rows, dev rows): every `len(speakers) // count`-th speaker, whole, goes to dev."""
    speakers = sorted({u.speaker for _, u in rows})
    held = set(speakers[::max(1, len(speakers) // count)][:count])
    return [r for r in rows if r[1].speaker not in held], [r for r in rows if r[1].speaker in held]


def pack(name: str, manifest: Path, out: Path, level: float, dev_speakers: int, workers: int) -> None:
    utts = read_manifest(manifest)
    (out / name).mkdir(parents=True, exist_ok=True)
    rows = [(f"{name}/{i:05d}.opus", u) for i, u in enumerate(utts)]
    with ThreadPoolExecutor(workers) as pool:
        jobs = [pool.submit(pack_one, u.path, out / rel, level) for rel, u in rows]
        for job in tqdm(jobs, desc=name):
            job.result()
    train, dev = split_speakers(rows, dev_speakers) if dev_speakers else (rows, [])
    write_tsv(out / f"{name}.tsv", COLUMNS, manifest_rows(train))
    if dev:
        write_tsv(out / f"{name}_dev.tsv", COLUMNS, manifest_rows(dev))
    size = sum(p.stat().st_size for p in (out / name).iterdir())
    print(f"{name}: {len(train)} train + {len(dev)} dev utterances, {size / 1e6:.1f} MB")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python recipes/pack_opus.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", action="append", required=True, metavar="NAME=TSV")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--level", type=float, default=0.97, help="Opus compression level 0..1 (default 0.97)")
    p.add_argument("--dev-speakers", metavar="NAME=N", help="hold N whole speakers of manifest NAME out as NAME_dev.tsv")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    dev_name, _, dev_count = (args.dev_speakers or "").partition("=")
    if args.dev_speakers and not dev_count.isdigit():
        p.error(f"--dev-speakers takes NAME=N; got {args.dev_speakers!r}")
    try:
        for spec in args.manifest:
            name, _, path = spec.partition("=")
            if not name.isidentifier() or not path:
                p.error(f"--manifest takes NAME=TSV with a plain NAME; got {spec!r}")
            held = int(dev_count) if name == dev_name else 0
            pack(name, Path(path), args.out, args.level, held, args.workers)
    except (ManifestError, ValueError, sf.LibsndfileError) as error:
        print(f"pack_opus: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
