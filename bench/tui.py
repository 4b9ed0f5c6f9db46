"""The terminal app under load: key-press latency while a file is transcribed, and the live text delay per
word while a known recording is fed in real time, per model.

    python -m bench.tui [--audio samples/meeting.opus] [--model PATH ...] [--decoder beam|greedy] [--threads N]
                        [--stream-model PATH ...]

Key latency: key events (as the terminal driver posts them) open and close a dialog (i, escape) every
50 ms, each timed until the screen has changed: with the app idle, while it transcribes `--audio` repeated
4 times (the offline pipeline in its worker thread), and while it records `--audio` live. Live delay:
`--audio` is played to the recording screen in 20 ms blocks at real-time pace; for each word, the time
from the block holding its last sample arriving to its first appearance on screen
(provisional or final line)."""
from __future__ import annotations

import argparse
import asyncio
import shlex
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf
import torch
from textual import events

from acoustic.features import SAMPLE_RATE
from bench.asr import machine
from minutes.audio import load_audio
from minutes.pipeline import Transcriber
from tui.app import AppConfig, MinutesApp, make_app
from tui.dialogs import FormScreen
from tui.live import ChunkedTranscriber, LiveTranscriber, streaming
from tui.recorder import FileSource

PRESSES = 100


def percentiles(values: list[float]) -> tuple[float, float, float]:
    """(median, 95th percentile, max) of seconds, in milliseconds."""
    ordered = sorted(values)
    return (statistics.median(ordered) * 1000, ordered[int(0.95 * (len(ordered) - 1))] * 1000, ordered[-1] * 1000)


async def timed_key(app: MinutesApp, key: str, character: str | None, handled: Callable[[], bool]) -> float:
    """Seconds from a key event arriving (posted as the terminal driver posts it) until `handled()` is true,
    polled every millisecond on the app's own event loop."""
    start = time.perf_counter()
    app.post_message(events.Key(key, character))
    while not handled():
        await asyncio.sleep(0.001)
    return time.perf_counter() - start


async def dialog_keys(app: MinutesApp, while_busy: bool) -> list[float]:
    """Open the title dialog (i) and close it (escape), timing each key, every 100 ms."""
    times: list[float] = []
    while len(times) < PRESSES and (app.busy or not while_busy):
        times.append(await timed_key(app, "i", "i", lambda: isinstance(app.screen, FormScreen)))
        await asyncio.sleep(0.05)
        times.append(await timed_key(app, "escape", None, lambda: not isinstance(app.screen, FormScreen)))
        await asyncio.sleep(0.05)
    return times


async def file_keys(transcriber: Transcriber, audio: Path, folder: Path) -> tuple[list[float], list[float]]:
    """Key latency with the app idle, then while `audio` is transcribed."""
    app = make_app(AppConfig(recordings_dir=folder), transcriber)
    async with app.run_test(size=(100, 30)):
        idle = await dialog_keys(app, while_busy=False)
        app.open_file(audio)
        busy = await dialog_keys(app, while_busy=True)
        await app.workers.wait_for_complete()
    return idle, busy


async def live_run(transcriber: Transcriber, audio: Path, folder: Path,
                   live: Callable[..., LiveTranscriber] = ChunkedTranscriber) -> tuple[list[float], list[float], int]:
    """`audio` recorded in real time: per-word delays, key latencies meanwhile, and the number of lines."""
    app = make_app(AppConfig(recordings_dir=folder), transcriber,
                   open_source=lambda device: FileSource(audio, block_s=0.02, realtime=True), live=live)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("r")
        keys = await dialog_keys(app, while_busy=True)
        await app.workers.wait_for_complete()
        await pilot.pause()
        return app.all_latencies, keys, len(app.draft.segments)


def ms(values: list[float]) -> str:
    """`p50/p95/max (n)` in milliseconds."""
    return "/".join(f"{v:.0f}" for v in percentiles(values)) + f" ({len(values)})" if values else "-"


def repeated(audio: Path, times: int, folder: Path) -> Path:
    """`audio` `times` over as one WAV (a file long enough to press keys through its transcription)."""
    path = folder / f"{audio.stem}-x{times}.wav"
    sf.write(path, np.tile(load_audio(audio), times), SAMPLE_RATE, subtype="PCM_16")
    return path


def row(name: str, idle: list[float], busy: list[float], delays: list[float], live_keys: list[float],
        lines: int) -> None:
    delay = " / ".join(f"{v / 1000:.2f}" for v in percentiles(delays)) if delays else "-"
    print(f"| {name} | {ms(idle)} | {ms(busy)} | {ms(live_keys)} | {len(delays)} | {delay} | {lines} |", flush=True)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m bench.tui", description=__doc__.splitlines()[0])
    p.add_argument("--audio", type=Path, default=Path("samples/meeting.opus"))
    p.add_argument("--model", type=Path, action="append")
    p.add_argument("--decoder", choices=("beam", "greedy"), default="beam")
    p.add_argument("--threads", type=int, default=2, help="torch threads of the transcription (default 2)")
    p.add_argument("--stream-model", type=Path, action="append", help="also record live through the streaming "
                   "engine with this model (its row has no file-transcription keys)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    models = args.model or [Path("models/default/model.pt"), Path("models/logmel/model.pt")]
    print(f"# python -m bench.tui {shlex.join(argv)}\n# {machine()}, {datetime.now():%Y-%m-%d %H:%M}\n")
    print("| model | keys idle ms | keys while transcribing a file ms | keys while recording live ms | "
          "live words | live delay p50 / p95 / max s | lines |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for model in models:
            transcriber = Transcriber.load(model, decoder=args.decoder)
            idle, busy = asyncio.run(file_keys(transcriber, repeated(args.audio, 4, Path(folder)), Path(folder)))
            row(str(model), idle, busy, *asyncio.run(live_run(transcriber, args.audio, Path(folder))))
        for model in args.stream_model or []:
            live = streaming(model, args.decoder)
            live()  # load the engine before the clock starts
            row(f"stream: {model}", [], [], *asyncio.run(live_run(transcriber, args.audio, Path(folder), live)))
    print("\nkeys: p50/p95/max (presses) of opening and closing a dialog (i, escape), timed until the screen "
          "changed; the file is the audio 4 times over")

if __name__ == "__main__":
    main()
