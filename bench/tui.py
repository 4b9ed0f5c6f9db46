"""The terminal app under load: key-press latency while a file is transcribed, and the live text delay per
word while a known recording is fed in real time, per model.

    python -m bench.tui [--audio samples/meeting.opus] [--model PATH ...] [--decoder beam|greedy]

Key latency: the pilot opens and closes a dialog (i, escape) every 100 ms, each key timed until the screen
has changed: with the app idle, while it transcribes `--audio` (the offline pipeline in its worker thread),
and while it records `--audio` live. Live delay: `--audio` is played to the recording screen in 20 ms blocks at real-time
pace; for each word, the time from the block holding its last sample arriving to its first appearance on
screen (provisional or final line)."""
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

import torch

from bench.asr import machine
from minutes.pipeline import Transcriber
from tui.app import AppConfig, MinutesApp, make_app
from tui.dialogs import FormScreen
from tui.recorder import FileSource

PRESSES = 40


def percentiles(values: list[float]) -> tuple[float, float, float]:
    """(median, 95th percentile, max) of seconds, in milliseconds."""
    ordered = sorted(values)
    return (statistics.median(ordered) * 1000, ordered[int(0.95 * (len(ordered) - 1))] * 1000, ordered[-1] * 1000)


async def timed_key(pilot, key: str, handled: Callable[[], bool]) -> float:  # type: ignore[no-untyped-def]
    """Seconds from pressing `key` until `handled()` is true, polled every millisecond on the app's own loop."""
    start = time.perf_counter()
    press = asyncio.ensure_future(pilot.press(key))
    while not handled():
        await asyncio.sleep(0.001)
    elapsed = time.perf_counter() - start
    await press
    return elapsed


async def dialog_keys(app: MinutesApp, pilot, while_busy: bool) -> list[float]:  # type: ignore[no-untyped-def]
    """Open the title dialog (i) and close it (escape), timing each key, every 100 ms."""
    times: list[float] = []
    while len(times) < PRESSES and (app.busy or not while_busy):
        times.append(await timed_key(pilot, "i", lambda: isinstance(app.screen, FormScreen)))
        await asyncio.sleep(0.05)
        times.append(await timed_key(pilot, "escape", lambda: not isinstance(app.screen, FormScreen)))
        await asyncio.sleep(0.05)
    return times


async def file_keys(transcriber: Transcriber, audio: Path, folder: Path) -> tuple[list[float], list[float]]:
    """Key latency with the app idle, then while `audio` is transcribed."""
    app = make_app(AppConfig(recordings_dir=folder), transcriber)
    async with app.run_test(size=(100, 30)) as pilot:
        idle = await dialog_keys(app, pilot, while_busy=False)
        app.open_file(audio)
        busy = await dialog_keys(app, pilot, while_busy=True)
        await app.workers.wait_for_complete()
    return idle, busy


async def live_run(transcriber: Transcriber, audio: Path, folder: Path) -> tuple[list[float], list[float], int]:
    """`audio` recorded in real time: per-word delays, key latencies meanwhile, and the number of lines."""
    app = make_app(AppConfig(recordings_dir=folder), transcriber,
                   open_source=lambda device: FileSource(audio, block_s=0.02, realtime=True))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("r")
        keys = await dialog_keys(app, pilot, while_busy=True)
        await app.workers.wait_for_complete()
        await pilot.pause()
        return app.all_latencies, keys, len(app.draft.segments)


def ms(values: list[float]) -> str:
    return "/".join(f"{v:.0f}" for v in percentiles(values)) if values else "-"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m bench.tui", description=__doc__.splitlines()[0])
    p.add_argument("--audio", type=Path, default=Path("samples/meeting.opus"))
    p.add_argument("--model", type=Path, action="append")
    p.add_argument("--decoder", choices=("beam", "greedy"), default="beam")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    models = args.model or [Path("models/default/model.pt"), Path("models/logmel/model.pt")]
    print(f"# python -m bench.tui {shlex.join(argv)}\n# {machine()}, {datetime.now():%Y-%m-%d %H:%M}\n")
    print("| model | keys idle ms | keys while transcribing a file ms | keys while recording live ms | "
          "live words | live delay p50 / p95 / max s | lines |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for model in models:
            transcriber = Transcriber.load(model, decoder=args.decoder)
            idle, busy = asyncio.run(file_keys(transcriber, args.audio, Path(folder)))
            delays, live_keys, lines = asyncio.run(live_run(transcriber, args.audio, Path(folder)))
            delay = " / ".join(f"{v / 1000:.2f}" for v in percentiles(delays)) if delays else "-"
            print(f"| {model} | {ms(idle)} | {ms(busy)} | {ms(live_keys)} | {len(delays)} | {delay} | {lines} |",
                  flush=True)
    print("\nkeys: p50/p95/max of opening and closing a dialog (i, escape), timed until the screen changed")

if __name__ == "__main__":
    main()
