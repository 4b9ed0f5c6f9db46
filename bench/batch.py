"""Batch transcription at scale: throughput with 1 and 2 jobs, the Ray backend's overhead, and peak memory
and timestamp drift on a long recording. Every run is the real command line (`minutes transcribe`) in a
subprocess whose process tree is sampled for RSS.

    python -m bench.batch folder [--files 24] [--seconds 30] [--ray]    # files/min and x real time, jobs 1 vs 2 (vs Ray)
    python -m bench.batch long [--hours 4]                              # peak RSS, RSS curve, drift

Inputs are built in exp/bench-batch/ from LJSpeech clips (../shared/data) with known lengths, joined by
1 s of silence: folder files of about --seconds each, and one long FLAC whose clip offsets are known, so
the transcript's word times can be checked against them.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.asr import machine
from minutes.audio import SAMPLE_RATE, load_audio

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ljspeech"
WORK = Path("exp/bench-batch")
GAP = np.zeros(SAMPLE_RATE, dtype=np.float32)  # 1 s of silence between clips


def clips() -> list[np.ndarray]:
    """The LJSpeech clips in manifest order, decoded to 16 kHz float32 (cached as one .npz)."""
    cache = WORK / "ljspeech.npz"
    if not cache.exists():
        paths = [line.split("\t")[0] for line in (DATA / "manifest.tsv").read_text().splitlines()[1:]]
        audio = [load_audio(DATA / p) for p in paths]
        WORK.mkdir(parents=True, exist_ok=True)
        np.savez(cache, *audio)
    with np.load(cache) as data:
        return [data[f"arr_{i}"] for i in range(len(data.files))]


def build_folder(files: int, seconds: float) -> Path:
    """`files` WAVs of about `seconds` each, clips taken round-robin."""
    folder = WORK / f"folder-{files}x{seconds:g}"
    if folder.exists():
        return folder
    source, index = clips(), 0
    folder.mkdir(parents=True)
    for number in range(files):
        parts: list[np.ndarray] = []
        while sum(p.size for p in parts) < seconds * SAMPLE_RATE:
            parts += [source[index % len(source)], GAP]
            index += 1
        sf.write(folder / f"meeting-{number:03d}.wav", np.concatenate(parts), SAMPLE_RATE, subtype="PCM_16")
    return folder


def build_long(hours: float) -> tuple[Path, list[tuple[float, float]]]:
    """A FLAC of `hours` (clips repeated, 1 s gaps) written block by block, and each clip's (start, end) in s."""
    path = WORK / f"long-{hours:g}h.flac"
    spans_path = path.with_suffix(".json")
    if path.exists() and spans_path.exists():
        return path, [tuple(s) for s in json.loads(spans_path.read_text())]
    source, spans, position, index = clips(), [], 0, 0
    with sf.SoundFile(path, "w", SAMPLE_RATE, 1, subtype="PCM_16") as out:
        while position < hours * 3600 * SAMPLE_RATE:
            clip = source[index % len(source)]
            out.write(np.concatenate([clip, GAP]))
            spans.append((position / SAMPLE_RATE, (position + clip.size) / SAMPLE_RATE))
            position += clip.size + GAP.size
            index += 1
    spans_path.write_text(json.dumps(spans))
    return path, spans


def tree_usage(pid: int, cpu: dict[int, float]) -> int:
    """Resident bytes of `pid` and all its descendants (from /proc); records each one's CPU seconds in `cpu`."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/status") as status:
                total += next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))
            with open(f"/proc/{current}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
                cpu[current] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
            with open(f"/proc/{current}/task/{current}/children") as children:
                stack += [int(c) for c in children.read().split()]
        except (OSError, StopIteration):
            continue
    return total


def run(command: list[str], curve: list[tuple[float, int]] | None = None) -> tuple[float, int, int, float]:
    """Run a command, sampling its process tree every 0.5 s -> (wall seconds, peak RSS bytes, exit code, CPU
    seconds of the whole tree: local workers and Ray's processes too, as last seen)."""
    started = time.perf_counter()
    os.environ["BENCH_LOAD_BEFORE"] = f"{os.getloadavg()[0]:.1f}"
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak, cpu = 0, {}
    while process.poll() is None:
        rss = tree_usage(process.pid, cpu)
        peak = max(peak, rss)
        if curve is not None:
            curve.append((time.perf_counter() - started, rss))
        time.sleep(0.5)
    stderr = process.stderr.read() if process.stderr else ""
    if process.returncode not in (0, 1):
        print(stderr, file=sys.stderr)
    return time.perf_counter() - started, peak, process.returncode, sum(cpu.values())


def transcribe(inputs: list[str], out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "minutes", "transcribe", *inputs, "-o", str(out), "-f", "md,json", "--quiet",
            "--no-diarize", "--force", *extra]


def audio_seconds(folder: Path) -> float:
    return sum(sf.info(str(p)).duration for p in folder.glob("*.wav"))


def folder_bench(args: argparse.Namespace) -> None:
    folder = build_folder(args.files, args.seconds)
    seconds = audio_seconds(folder)
    print(f"Folder: {args.files} WAVs, {seconds / 60:.1f} min of audio ({folder})\n")
    print("| backend | jobs | wall s | files/min | x real time | CPU s (all processes) | peak RSS (all processes) "
          "| load avg before |\n|---|---:|---:|---:|---:|---:|---:|---:|")
    runs = [("local", 1), ("local", 2)] + ([("ray", 2)] if args.ray else [])
    walls = {}
    for backend, jobs in runs:
        out = WORK / f"out-{backend}-{jobs}"
        wall, peak, code, cpu = run(transcribe([str(folder)], out, "--jobs", str(jobs), "--backend", backend))
        assert code == 0, f"{backend} x{jobs} failed with exit code {code}"
        walls[(backend, jobs)] = wall
        print(f"| {backend} | {jobs} | {wall:.1f} | {args.files / wall * 60:.1f} | {seconds / wall:.1f} | "
              f"{cpu:.0f} | {peak / 2**20:.0f} MiB | {os.environ['BENCH_LOAD_BEFORE']} |")
    base = walls[("local", 2)]
    for key, wall in walls.items():
        print(f"\n{key[0]} x{key[1]}: {wall / base:.2f}x the wall time of local x2", end="")
    print()


def long_bench(args: argparse.Namespace) -> None:
    path, spans = build_long(args.hours)
    true_end = sf.info(str(path)).duration
    out = WORK / "out-long"
    curve: list[tuple[float, int]] = []
    wall, peak, code, cpu = run(transcribe([str(path)], out, "--jobs", "1"), curve)
    assert code == 0, f"exit code {code}"
    minutes = json.loads((out / f"{path.stem}.json").read_text())
    words = [w for seg in minutes["segments"] for w in seg["words"]]
    print(f"Long file: {path} ({true_end / 3600:.2f} h, {len(spans)} clips)\n")
    print(f"- wall {wall:.0f} s, {true_end / wall:.1f}x real time, {cpu:.0f} CPU s, peak RSS {peak / 2**20:.0f} MiB")
    print(f"- duration in the minutes {minutes['duration']:.3f} s vs true {true_end:.3f} s")
    print(f"- last word ends {words[-1]['end']:.2f} s; last clip's speech ends {spans[-1][1]:.2f} s "
          f"(difference {words[-1]['end'] - spans[-1][1]:+.2f} s)")
    print(drift_table(words, spans))
    print("\nRSS curve (MiB, every 10 % of the run): "
          + ", ".join(f"{curve[int(i * (len(curve) - 1) / 10)][1] / 2**20:.0f}" for i in range(11)))
    (WORK / "long-rss.json").write_text(json.dumps(curve))


def drift_table(words: list[dict], spans: list[tuple[float, float]]) -> str:
    """For each tenth of the file: mean and worst distance of a word's time to its clip's span (0 inside)."""
    starts = np.array([s for s, _ in spans])
    rows = ["\n| part of the file | words | mean offset s | worst offset s |", "|---|---:|---:|---:|"]
    offsets = []
    for word in words:
        clip = max(0, int(np.searchsorted(starts, word["start"], side="right")) - 1)
        begin, end = spans[clip]
        offsets.append(max(begin - word["start"], word["end"] - end, 0.0))
    offsets = np.array(offsets)
    for part in range(10):
        chunk = offsets[part * len(offsets) // 10:(part + 1) * len(offsets) // 10]
        rows.append(f"| {part * 10}-{part * 10 + 10} % | {chunk.size} | {chunk.mean():.3f} | {chunk.max():.2f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m bench.batch", description=__doc__.splitlines()[0])
    commands = p.add_subparsers(dest="command", required=True)
    f = commands.add_parser("folder")
    f.add_argument("--files", type=int, default=24)
    f.add_argument("--seconds", type=float, default=30.0)
    f.add_argument("--ray", action="store_true", help="also run the Ray backend (a local Ray, 2 actors)")
    g = commands.add_parser("long")
    g.add_argument("--hours", type=float, default=4.0)
    args = p.parse_args(argv)
    print(f"Command: python -m bench.batch {shlex.join(argv)}\nMachine: {machine()}; "
          f"{datetime.now():%Y-%m-%d %H:%M}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}\n")
    (folder_bench if args.command == "folder" else long_bench)(args)


if __name__ == "__main__":
    main()
