"""Input discovery and atomic output writing (the CLI owns paths; writers only format)."""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TextIO

from minutes.audio import AUDIO_EXTENSIONS


@dataclass(frozen=True)
class Job:
    """One input file and the output stem (without extension) its formats are written to."""

    source: Path
    out_stem: Path

    def output(self, fmt: str) -> Path:
        """`OUT/team.sync` + md -> `OUT/team.sync.md` (with_suffix would replace `.sync`)."""
        return self.out_stem.with_name(f"{self.out_stem.name}.{fmt}")


def discover(inputs: list[str], outdir: Path, extensions: tuple[str, ...] = AUDIO_EXTENSIONS
             ) -> tuple[list[Job], list[tuple[str, str]]]:
    """Expand files and folders into jobs: folders are searched recursively for files with one of
    `extensions` (".wav", ...; case-insensitive, hidden files skipped) and keep their relative layout under
    outdir; files named directly are always taken. Returns (jobs, [(input, reason)] for unusable inputs)."""
    jobs, problems = [], []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in extensions and p.is_file()
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not found:
                problems.append((item, f"folder contains no audio files ({', '.join(extensions)})"))
            jobs.extend(Job(p, outdir / p.relative_to(path).with_suffix("")) for p in found)
        elif path.exists():
            jobs.append(Job(path, outdir / path.stem))
        else:
            problems.append((item, "no such file or folder"))
    return _without_collisions(jobs, problems)


def _without_collisions(jobs: list[Job], problems: list[tuple[str, str]]) -> tuple[list[Job], list[tuple[str, str]]]:
    """Drop (and report) inputs whose outputs would overwrite an earlier input's (`a/x.wav` and `b/x.wav`)."""
    first: dict[Path, Path] = {}
    kept = []
    for job in jobs:
        owner = first.setdefault(job.out_stem, job.source)
        if owner == job.source:
            kept.append(job)
        else:
            problems.append((str(job.source), f"outputs would overwrite those of {owner}; transcribe it separately"))
    return kept, problems


def parse_extensions(value: str) -> tuple[str, ...]:
    """`wav,.FLAC, mp3` -> (".wav", ".flac", ".mp3"); raises ValueError when nothing is left."""
    names = tuple(dict.fromkeys("." + v.strip().lstrip(".").lower() for v in value.split(",") if v.strip(" .")))
    if not names:
        raise ValueError(f"no file extensions in {value!r}; e.g. wav,flac,mp3")
    return names


def check_writable(folder: Path) -> str | None:
    """None if files can be created in `folder` (made if missing), else a one-line reason."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            return None
    except OSError as error:
        return f"cannot write to output folder {folder}: {error.strerror or error}"


def write_atomic(path: Path, render: Callable[[TextIO], None]) -> None:
    """Render into a temporary file beside `path`, then rename over it: never a half-written output."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as file:
            render(file)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual umask-based mode
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
