"""What `minutes transcribe` shows on the terminal: progress bars (stderr), one line per problem, and the
end-of-run summary table."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from minutes.batch import Outcome


class Bars:
    """A progress hook drawing tqdm bars on stderr: the files of the run (when there are several), and one
    bar per worker for the file it is on, in seconds of audio. Use as a context manager; quiet draws nothing."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.files: tqdm | None = None
        self.workers: dict[int, tqdm] = {}

    def __enter__(self) -> "Bars":
        return self

    def __exit__(self, *exc: object) -> None:
        for bar in [*self.workers.values(), *([self.files] if self.files else [])]:
            bar.close()

    def __call__(self, step: str, completed: float, total: float | None, worker: int = 0, name: str = "") -> None:
        if self.quiet:
            return
        if step == "files":
            self._files(completed, total or 0)
        else:
            self._worker(worker, f"{step} {name}", completed, total)

    def _files(self, completed: float, total: float) -> None:
        if total <= 1:
            return
        if self.files is None:
            self.files = tqdm(total=total, desc="files", unit="file", file=sys.stderr, position=0, leave=False)
        self.files.n = completed
        self.files.refresh()

    def _worker(self, worker: int, desc: str, completed: float, total: float | None) -> None:
        bar = self.workers.get(worker)
        if bar is None:
            position = len(self.workers) + (self.files is not None)  # below the files bar, if there is one
            bar = self.workers[worker] = tqdm(desc=desc, total=round(total) if total else None, unit="s",
                                              file=sys.stderr, leave=False, position=position, bar_format=_BAR)
        if bar.desc != desc:
            bar.reset()
            bar.set_description_str(desc, refresh=False)
        bar.total, bar.n = (round(total) if total else None), round(completed)
        bar.refresh()


_BAR = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} s of audio [{elapsed}<{remaining}]"


def problem_lines(outcome: Outcome, stream: TextIO | None = None) -> None:
    """One line per failure and per warning of a file, as it is settled."""
    stream = stream or sys.stderr
    if outcome.status == "failed":
        print(f"minutes: error: {outcome.source}: {outcome.reason}", file=stream)
    for warning in outcome.warnings:
        print(f"minutes: warning: {outcome.source}: {warning}", file=stream)


def print_summary(outcomes: list[Outcome], report: Path | None) -> None:
    """Each transcribed input and its outputs on stdout; on stderr, for a batch or when anything failed,
    a table of done / skipped / failed (with reasons) and where report.json is."""
    for outcome in outcomes:
        if outcome.status == "done":
            print(f"{outcome.source} -> {', '.join(outcome.outputs)}")
    failed = [o for o in outcomes if o.status == "failed"]
    if len(outcomes) <= 1 and not failed:
        return
    done = [o for o in outcomes if o.status == "done"]
    skipped = len(outcomes) - len(done) - len(failed)
    audio, wall = sum(o.audio_s for o in done), sum(o.wall_s for o in done)
    speed = f", {audio / wall:.1f}x real time per worker" if wall > 0 else ""
    rows = [("done", len(done), f"{_clock(audio)} of audio in {_clock(wall)}{speed}" if done else ""),
            ("skipped", skipped, "already up to date (--force redoes them)" if skipped else ""),
            ("failed", len(failed), "")]
    print("minutes: summary", file=sys.stderr)
    for status, count, note in rows:
        print(f"  {status:<8}{count:>6}  {note}".rstrip(), file=sys.stderr)
    for outcome in failed:
        print(f"    {outcome.source}: {outcome.reason}", file=sys.stderr)
    if report:
        print(f"  report: {report}", file=sys.stderr)


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
