"""The Ray backend: the same per-file job (`batch.process_file`) in actors on a Ray cluster.

Each actor (one CPU) loads the model once. Inputs travel to the actors through Ray's object store and the
rendered outputs come back, so the nodes need no shared filesystem, only the same Python environment
(minutes and its dependencies installed). The model and LM files are shipped to the actors too. The
driver writes the outputs, the journal and the report, exactly as for the local backend.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from minutes.batch import Outcome, Settings, file_date, process_file
from minutes.files import Job

OnResult = Callable[[Job, Outcome, dict[str, str]], None]


class BackendError(RuntimeError):
    """The cluster cannot be used (Ray missing, unreachable, no CPUs); one line for the user."""


class RayWorker:
    """One actor: the model files written to a private folder, loaded once; `run` transcribes one input."""

    def __init__(self, settings: Settings, files: dict[str, bytes]) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="minutes-ray-"))
        local = {}
        for key, data in files.items():  # keep the file names: the model name shown in the minutes comes from it
            path = self.folder / key / getattr(settings, key).name
            path.parent.mkdir()
            path.write_bytes(data)
            local[key] = path
        self.settings = replace(settings, **local)
        self.transcriber = self.settings.load(threads=1)

    def run(self, name: str, data: bytes, mtime_ns: int, date: str, out_stem: str) -> tuple[Outcome, dict[str, str]]:
        """Transcribe a copy of the input (same name, mtime and date, so the same minutes) -> (outcome, texts)."""
        copy = self.folder / "input" / name
        copy.parent.mkdir(exist_ok=True)
        copy.write_bytes(data)
        os.utime(copy, ns=(mtime_ns, mtime_ns))
        try:
            return process_file(Job(copy, Path(out_stem)), self.transcriber, self.settings, date=date)
        finally:
            copy.unlink()

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def run_ray(todo: list[Job], settings: Settings, address: str | None, jobs: int | None, finish: OnResult) -> None:
    """Run every job on the Ray cluster at `address` (None: a Ray started here), `jobs` actors (default: one
    per CPU of the cluster); at most one input per actor is in flight, so the driver's memory stays bounded."""
    if not todo:
        return
    ray = _connect(address, jobs)
    try:
        cpus = int(ray.cluster_resources().get("CPU", 0))
        if cpus < 1:
            raise BackendError("the Ray cluster has no CPUs to run on")
        files = {"model": settings.model.read_bytes()}
        if settings.options.decoder == "beam":
            files["lm"] = settings.lm.read_bytes()
        actor = ray.remote(num_cpus=1)(RayWorker)
        shipped = ray.put(files)
        actors = [actor.remote(settings, shipped) for _ in range(min(jobs or cpus, len(todo)))]
        _schedule(ray, todo, actors, finish)
        ray.get([a.close.remote() for a in actors])
    finally:
        ray.shutdown()


def _connect(address: str | None, jobs: int | None) -> Any:
    try:
        import ray
    except ImportError as error:
        raise BackendError(f"the ray backend needs Ray installed ({error})") from None
    try:
        if address:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        else:
            ray.init(num_cpus=jobs, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise BackendError(f"cannot start or reach Ray at {address or 'this machine'}: {error}") from None
    return ray


def _schedule(ray: Any, todo: list[Job], actors: list[Any], finish: OnResult) -> None:
    """Keep every live actor busy with one input; an actor that dies fails its input (retried next run)."""
    pending, running, idle = list(reversed(todo)), {}, list(actors)
    while pending or running:
        while pending and idle:
            job, actor = pending.pop(), idle.pop()
            try:
                running[_submit(actor, job)] = (job, actor)
            except OSError as error:
                finish(job, Outcome(str(job.source), "failed", f"cannot read: {error.strerror or error}"), {})
                idle.append(actor)
        if not running:
            break
        [ready], _ = ray.wait(list(running), num_returns=1)
        job, actor = running.pop(ready)
        try:
            outcome, texts = ray.get(ready)
            idle.append(actor)
        except ray.exceptions.RayError as error:
            outcome, texts = Outcome(str(job.source), "failed", f"Ray worker failed: {_first_line(error)}"), {}
            if not isinstance(error, ray.exceptions.RayActorError):
                idle.append(actor)
        finish(job, replace(outcome, source=str(job.source)), texts)
        if not idle and not running and pending:
            raise BackendError("every Ray worker died; the files left are retried on the next run")


def _submit(actor: Any, job: Job) -> Any:
    """Send one input (its bytes, mtime and date) to an actor -> the result's object ref. Raises OSError."""
    mtime_ns, date, data = job.source.stat().st_mtime_ns, file_date(job.source), job.source.read_bytes()
    return actor.run.remote(job.source.name, data, mtime_ns, date, str(job.out_stem))


def _first_line(error: Exception) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(error).__name__
