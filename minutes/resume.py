"""Resumable batch runs: what is already done (outputs complete and newer than input and model), a journal
appended once per finished file, a lock so two runs never share an output folder, and `report.json`.

The journal (`OUTDIR/.minutes-journal.jsonl`) holds one JSON line per finished input: its output stem, the
input's size and mtime, the settings fingerprint, and the outcome. A killed run loses at most the files in
flight; their outputs are either complete (atomic rename) or absent, and a rerun redoes only those.
"""
from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from minutes.batch import Outcome, Settings
from minutes.files import Job, write_atomic

JOURNAL = ".minutes-journal.jsonl"
REPORT = "report.json"
REPORT_VERSION = 1


class BusyError(RuntimeError):
    """Another minutes run holds the output folder."""


class Journal:
    """The output folder's journal: read at start (last entry per output wins), appended per finished file,
    compacted on open, and locked (flock) for the length of the run."""

    def __init__(self, outdir: Path) -> None:
        self.outdir = outdir
        self.path = outdir / JOURNAL
        self.entries: dict[str, dict[str, Any]] = {}
        self._file: IO[str] | None = None
        self._lock = -1

    def __enter__(self) -> "Journal":
        self._lock = os.open(self.outdir, os.O_RDONLY)  # flock on the folder itself: no extra lock file
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock)
            raise BusyError(f"another minutes run is writing to {self.outdir}; wait for it or use another -o") from None
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                    self.entries[entry["output"]] = entry
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a kill
        # compact: one line per output (reruns would otherwise grow it forever)
        text = "".join(json.dumps(e, sort_keys=True) + "\n" for e in self.entries.values())
        write_atomic(self.path, lambda file: file.write(text))
        self._file = open(self.path, "a", encoding="utf-8")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._file is not None
        self._file.close()
        os.close(self._lock)  # releases the lock

    def key(self, job: Job) -> str:
        return job.out_stem.relative_to(self.outdir).as_posix() if job.out_stem.is_relative_to(self.outdir) \
            else str(job.out_stem)

    def record(self, job: Job, outcome: Outcome, fingerprint: str) -> None:
        """Append one line (a single write of a whole line) and fsync it: it survives a kill right after."""
        assert self._file is not None
        entry = {"output": self.key(job), **_state(job.source), "settings": fingerprint, **asdict(outcome)}
        self.entries[entry["output"]] = entry
        self._file.write(json.dumps(entry, sort_keys=True) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())


def _state(source: Path) -> dict[str, int | None]:
    try:
        stat = source.stat()
    except OSError:  # removed while it was transcribed
        return {"size": None, "mtime_ns": None}
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def plan(jobs: list[Job], journal: Journal | None, settings: Settings, force: bool) -> tuple[list[Job], list[Outcome]]:
    """Split jobs into (to do, settled). Settled: 'skipped' when every requested output exists, is newer than
    the input and the model files, and was made with the same settings (when the journal knows); 'failed'
    when the journal holds a permanent failure of this very input (same size and mtime) with these settings."""
    if journal is None:
        return list(jobs), []
    fingerprint, model_mtime = settings.fingerprint(), max(p.stat().st_mtime for p in settings.model_files())
    todo, settled = [], []
    for job in jobs:
        if journal.outdir / REPORT in (job.output(fmt) for fmt in settings.formats):
            settled.append(Outcome(str(job.source), "failed", f"its output would overwrite the batch report "
                                   f"{journal.outdir / REPORT}; transcribe it alone or to another -o"))
            continue
        entry = journal.entries.get(journal.key(job))
        same_settings = entry is None or entry.get("settings") == fingerprint
        if force:
            todo.append(job)
        elif same_settings and _outputs_fresh(job, settings.formats, model_mtime):
            settled.append(Outcome(str(job.source), "skipped", "up to date",
                                   tuple(str(job.output(f)) for f in settings.formats)))
        elif entry and same_settings and entry.get("permanent") and _unchanged(job, entry):
            settled.append(Outcome(str(job.source), "failed", f"{entry['reason']} (as in the last run; --force retries)",
                                   permanent=True))
        else:
            todo.append(job)
    return todo, settled


def _outputs_fresh(job: Job, formats: tuple[str, ...], model_mtime: float) -> bool:
    try:
        oldest = min(job.output(fmt).stat().st_mtime for fmt in formats)
        return oldest >= max(job.source.stat().st_mtime, model_mtime)
    except OSError:  # an output is missing
        return False


def _unchanged(job: Job, entry: dict[str, Any]) -> bool:
    return _state(job.source) == {"size": entry.get("size"), "mtime_ns": entry.get("mtime_ns")}


def remove_stale_temporaries(jobs: list[Job], formats: tuple[str, ...]) -> None:
    """Delete temporary files a killed run left beside outputs (`.x.md.abc123.tmp`); safe under the lock."""
    for job in jobs:
        for fmt in formats:
            target = job.output(fmt)
            for stale in target.parent.glob(f".{_glob_escape(target.name)}.*.tmp"):
                stale.unlink(missing_ok=True)


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


@dataclass
class Report:
    """report.json: settings, totals and one row per input, sorted by source."""

    settings: Settings
    started: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    outcomes: list[Outcome] = field(default_factory=list)

    def write(self, path: Path, interrupted: bool = False) -> None:
        rows = sorted(self.outcomes, key=lambda o: o.source)
        totals = {status: sum(o.status == status for o in rows) for status in ("done", "skipped", "failed")}
        data = {
            "version": REPORT_VERSION,
            "started": self.started,
            "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "interrupted": interrupted,
            "settings": {"formats": list(self.settings.formats), "model": str(self.settings.model),
                         "lm": str(self.settings.lm) if self.settings.options.decoder == "beam" else None,
                         "decoder": self.settings.options.decoder, "fingerprint": self.settings.fingerprint()},
            "totals": {**totals, "audio_s": round(sum(o.audio_s for o in rows if o.status == "done"), 3),
                       "wall_s": round(sum(o.wall_s for o in rows if o.status == "done"), 3)},
            "files": [{**asdict(o), "audio_s": round(o.audio_s, 3), "wall_s": round(o.wall_s, 3),
                       "outputs": list(o.outputs)} for o in rows],
        }
        write_atomic(path, lambda file: file.write(json.dumps(data, indent=2) + "\n"))
