"""Running a batch: the driver (`run_batch`: plan, run, journal and report) and the local backend (this
process for one job, else worker processes that each load the model once).

Every backend runs the same per-file job (`batch.process_file`); only the driver touches the journal and
the report, as each result arrives, so a run killed at any moment resumes where it stopped.
"""
from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
import sys
import threading
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from minutes.batch import Outcome, Settings, run_one, write_outputs
from minutes.files import Job
from minutes.pipeline import Hook
from minutes.resume import REPORT, Journal, Report, plan, remove_stale_temporaries

BACKENDS = ("local", "ray")
WORKER_MEMORY = 1.5e9  # bytes per worker process: measured peak ~1.0 GB on a 4-hour file (bench/RESULTS.md), + margin
OnResult = Callable[[Job, Outcome, dict[str, str]], None]


@dataclass(frozen=True)
class RunOptions:
    """How a batch runs (not what it produces). resume=False (one input file): no journal, report or skipping."""

    jobs: int | None = None  # worker processes (Ray: actors); None = default_jobs
    force: bool = False
    resume: bool = True
    backend: str = "local"
    address: str | None = None  # Ray cluster address; None starts a local Ray

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; choose one of: {', '.join(BACKENDS)}")
        if self.jobs is not None and self.jobs < 1:
            raise ValueError("--jobs must be at least 1")
        if self.address and self.backend != "ray":
            raise ValueError("--address is the Ray cluster's: use it with --backend ray")


def run_batch(jobs: list[Job], outdir: Path, settings: Settings, run: RunOptions, hook: Hook | None = None,
              on_outcome: Callable[[Outcome], None] | None = None,
              unusable: list[Outcome] | None = None) -> list[Outcome]:
    """Transcribe every job that is not up to date; returns one Outcome per job (done, skipped or failed),
    after the `unusable` inputs (failures found before the run, e.g. missing files), which go into the report.
    `hook("files", completed=, total=)` counts finished files, `hook("transcribe", ..., worker=, name=)`
    is per-file progress; `on_outcome` sees each outcome as it is settled. With run.resume the journal and
    `OUTDIR/report.json` are kept up to date (the report also when the run is cut short, marked interrupted)."""
    with Journal(outdir) if run.resume else nullcontext() as journal:
        todo, settled = plan(jobs, journal, settings, run.force)
        if journal:
            remove_stale_temporaries(todo, settings.formats)
        report = Report(settings, outcomes=[*(unusable or []), *settled])
        before = len(report.outcomes)
        for outcome in settled:
            _notify(on_outcome, outcome)
        fingerprint = settings.fingerprint() if journal else ""
        if hook:
            hook("files", completed=0, total=len(todo))

        def finish(job: Job, outcome: Outcome, texts: dict[str, str]) -> None:
            outcome = write_outputs(job, outcome, texts) if texts else outcome
            if journal:
                journal.record(job, outcome, fingerprint)
            report.outcomes.append(outcome)
            _notify(on_outcome, outcome)
            if hook:
                hook("files", completed=len(report.outcomes) - before, total=len(todo))

        try:
            _backend(todo, settings, run, finish, hook)
        except BaseException:  # Ctrl-C, a lost cluster: the report still says what was done
            if journal:
                report.write(outdir / REPORT, interrupted=True)
            raise
        if journal:
            report.write(outdir / REPORT)
    return report.outcomes


def _notify(on_outcome: Callable[[Outcome], None] | None, outcome: Outcome) -> None:
    if on_outcome:
        on_outcome(outcome)


def _backend(todo: list[Job], settings: Settings, run: RunOptions, finish: OnResult, hook: Hook | None) -> None:
    if run.backend == "ray":
        from minutes.cluster import run_ray

        run_ray(todo, settings, run.address, run.jobs, finish)
    else:
        run_local(todo, settings, run.jobs or default_jobs(len(todo)), finish, hook)


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def available_memory() -> float:
    """Bytes of memory available to new processes (MemAvailable), or total physical memory."""
    meminfo = Path("/proc/meminfo")  # Linux; elsewhere the total is the estimate
    lines = meminfo.read_text(encoding="ascii").splitlines() if meminfo.exists() else []
    for line in lines:
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024.0
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def default_jobs(files: int) -> int:
    """One worker per core, no more than memory allows (WORKER_MEMORY each) or than there are files."""
    return max(1, min(cores(), int(available_memory() // WORKER_MEMORY), files))


def run_local(todo: list[Job], settings: Settings, jobs: int, finish: OnResult, hook: Hook | None = None) -> None:
    """Run every job: in this process when jobs == 1, else in `jobs` spawned worker processes with
    cores // jobs torch threads each, longest files first. Each process loads the model once."""
    if not todo:
        return
    if jobs <= 1 or len(todo) <= 1:
        transcriber = settings.load()
        for job in todo:
            finish(job, run_one(job, transcriber, settings, _tagged(hook, 0, job.source.name)), {})
        return
    context = mp.get_context("spawn")  # no fork of a process that runs torch and tqdm threads
    messages = context.Queue()
    slots = context.Value("i", 0)
    threads = max(1, cores() // jobs)
    by_size = sorted(todo, key=lambda j: -_size(j.source))  # longest first: a shorter tail at the end
    with context.Pool(jobs, initializer=_init_worker, initargs=(settings, threads, messages, slots)) as pool:
        relay = threading.Thread(target=_relay, args=(messages, hook), daemon=True)
        relay.start()
        try:
            for job, outcome in pool.imap_unordered(_work, by_size):
                finish(job, outcome, {})
            pool.close()
            pool.join()
        except BaseException:
            pool.terminate()  # SIGTERM: workers unwind, write_atomic removes its temporary file
            raise
        finally:
            messages.put(None)
            relay.join(timeout=5)


def _tagged(hook: Hook | None, worker: int, name: str) -> Hook | None:
    if hook is None:
        return None
    return lambda step, completed, total: hook(step, completed=completed, total=total, worker=worker, name=name)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


_WORKER: dict = {}


def _init_worker(settings: Settings, threads: int, messages: mp.Queue, slots: mp.Value) -> None:
    """Once per worker process: load the model. Ctrl-C is the driver's to handle; die with the driver."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit)
    if sys.platform.startswith("linux"):  # SIGTERM when the driver dies, even by SIGKILL (no orphaned workers)
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    with slots.get_lock():
        slots.value += 1
        slot = slots.value
    _WORKER.update(settings=settings, transcriber=settings.load(threads), messages=messages, slot=slot)


def _exit(signum: int, frame: object) -> None:
    if _WORKER.get("busy"):
        raise SystemExit(128 + signum)  # unwinds through write_atomic, which removes its temporary file
    os._exit(128 + signum)


def _work(job: Job) -> tuple[Job, Outcome]:
    hook = _tagged(lambda step, **kw: _WORKER["messages"].put((step, kw)), _WORKER["slot"], job.source.name)
    _WORKER["busy"] = True
    try:
        return job, run_one(job, _WORKER["transcriber"], _WORKER["settings"], hook)
    finally:
        _WORKER["busy"] = False


def _relay(messages: mp.Queue, hook: Hook | None) -> None:
    """Driver thread: pass the workers' progress messages to the hook until the None sentinel."""
    for step, info in _iterate(messages):
        if hook:
            hook(step, **info)


def _iterate(messages: mp.Queue) -> Iterator[tuple]:
    while (message := messages.get()) is not None:
        yield message
