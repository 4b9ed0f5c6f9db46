"""Batch runs at small scale: bad files isolated and reported, resume (skip what is up to date, journal,
--force), kill at a random moment then rerun gives byte-identical outputs, parallel workers, the windowed
long-file path, and the Ray backend on a local cluster."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from minutes.batch import Settings, make_options, process_file
from minutes.files import Job
from minutes.pipeline import Transcriber
from minutes.resume import JOURNAL, REPORT, Journal
from minutes.speakers import SpeakerOptions
from minutes.windows import Windows
from tests.conftest import make_speech_like, tiny_lm
from tests.test_cli import BATCH_FILES, assert_no_tmp, error_lines, files_under, run, summary_counts

GOOD = 6


def make_folder(root: Path, bad: bool = True, seconds: float = 2.0) -> Path:
    """GOOD speech-like files in two levels (wav and flac), plus, if asked, one file of each bad kind."""
    folder = root / "in"
    for i in range(GOOD):
        path = folder / ("sub" if i % 2 else "") / f"talk{i}.{'flac' if i % 3 == 2 else 'wav'}"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, make_speech_like(seconds, seed=i), 16000)
    if bad:
        (folder / "empty.wav").write_bytes(b"")
        (folder / "notes.mp3").write_text("minutes of the last meeting\n" * 40)
        good = (folder / "talk0.wav").read_bytes()
        (folder / "cut.wav").write_bytes(good[: len(good) // 2])  # header promises more than is there
        flac = (folder / "talk2.flac").read_bytes()
        (folder / "cut-short.flac").write_bytes(flac[: len(flac) // 2])
        (folder / "phone.m4a").write_bytes(np.random.default_rng(1).bytes(5000))  # no decodable stream
        sf.write(folder / "silence.wav", np.zeros(16000, np.float32), 16000)
    return folder


BAD = {"empty.wav": "empty file", "notes.mp3": "not a readable audio file", "cut.wav": "truncated file",
       "cut-short.flac": "damaged audio", "phone.m4a": "not a readable audio file", "silence.wav": "silent"}


def outputs(folder: Path) -> dict[str, bytes]:
    """Every transcript file under folder (not the journal or report) -> its bytes."""
    return {name: (folder / name).read_bytes() for name in files_under(folder) - BATCH_FILES}


def batch(capsys, model: Path, out: Path, *args: str) -> tuple[int, str, str]:
    return run(capsys, "transcribe", *args, "-o", out, "--model", model, "--lm", tiny_lm(model), "--quiet",
               "--no-diarize")


def test_bad_files_are_reported_the_rest_transcribed_and_a_rerun_only_reports(capsys, tiny_model, tmp_path):
    folder = make_folder(tmp_path, seconds=2.0)
    out = tmp_path / "out"
    code, stdout, err = batch(capsys, tiny_model, out, folder, "-f", "md,json", "-j", "1")
    assert code == 1 and "Traceback" not in err
    expected = {f"{stem}.{fmt}" for stem in ("talk0", "sub/talk1", "talk2", "sub/talk3", "talk4", "sub/talk5")
                for fmt in ("md", "json")}
    assert files_under(out) == expected | BATCH_FILES
    lines = error_lines(err)
    assert len(lines) == len(BAD)
    for name, reason in BAD.items():
        assert any(line.startswith(f"minutes: error: {folder / name}: ") and reason in line for line in lines), err
    assert summary_counts(err) == (GOOD, 0, len(BAD))
    assert len(stdout.splitlines()) == GOOD

    report = json.loads((out / REPORT).read_text())
    assert report["totals"]["done"] == GOOD and report["totals"]["failed"] == len(BAD)
    assert report["interrupted"] is False and report["settings"]["formats"] == ["md", "json"]
    failed = {Path(f["source"]).name: f["reason"] for f in report["files"] if f["status"] == "failed"}
    assert set(failed) == set(BAD) and all(BAD[name] in reason for name, reason in failed.items())
    assert all(f["audio_s"] == pytest.approx(2.0) for f in report["files"] if f["status"] == "done")

    before = {name: (out / name).stat().st_mtime_ns for name in expected}
    code, stdout, err = batch(capsys, tiny_model, out, folder, "-f", "md,json", "-j", "1")
    assert code == 1 and stdout == ""
    assert summary_counts(err) == (0, GOOD, len(BAD))  # nothing transcribed again, the bad ones only reported
    assert all("as in the last run" in line for line in error_lines(err))
    assert {name: (out / name).stat().st_mtime_ns for name in expected} == before
    assert json.loads((out / REPORT).read_text())["totals"] == {**report["totals"], "done": 0, "skipped": GOOD,
                                                               "wall_s": 0.0, "audio_s": 0.0}


def test_resume_redoes_only_what_is_missing_stale_or_made_differently(capsys, tiny_model, tmp_path):
    folder = make_folder(tmp_path, bad=False, seconds=2.0)
    out = tmp_path / "out"
    assert batch(capsys, tiny_model, out, folder, "-f", "md,srt", "-j", "1")[0] == 0
    reference = outputs(out)

    (out / "talk0.srt").unlink()  # an output lost
    past = time.time() - 100
    for name in ("sub/talk1.md", "sub/talk1.srt"):  # the input was edited after these minutes were made
        os.utime(out / name, (past, past))
    code, stdout, err = batch(capsys, tiny_model, out, folder, "-f", "md,srt", "-j", "1")
    assert code == 0 and summary_counts(err) == (2, GOOD - 2, 0)
    assert sorted(Path(line.split(" -> ")[0]).name for line in stdout.splitlines()) == ["talk0.wav", "talk1.wav"]
    assert outputs(out).keys() == reference.keys()

    code, _, err = batch(capsys, tiny_model, out, folder, "-f", "md,srt,txt", "-j", "1")  # a new format
    assert code == 0 and summary_counts(err) == (GOOD, 0, 0)
    code, _, err = batch(capsys, tiny_model, out, folder, "-f", "md,srt", "-j", "1", "--decoder", "greedy")
    assert code == 0 and summary_counts(err) == (GOOD, 0, 0)  # other settings: the old outputs do not count
    code, _, err = batch(capsys, tiny_model, out, folder, "-f", "md,srt", "-j", "1", "--decoder", "greedy")
    assert code == 0 and summary_counts(err) == (0, GOOD, 0)
    code, _, err = batch(capsys, tiny_model, out, folder, "-f", "md", "-j", "1", "--decoder", "greedy", "--force")
    assert code == 0 and summary_counts(err) == (GOOD, 0, 0)
    journal = [json.loads(line) for line in (out / JOURNAL).read_text().splitlines()]
    # compacted when a run starts (one line per output stem), then one line per file this run finished
    assert len(journal) == 2 * GOOD and len({entry["output"] for entry in journal}) == GOOD


def test_newer_model_makes_outputs_stale(capsys, tiny_model, tmp_path):
    model = tmp_path / "tiny.pt"
    model.write_bytes(tiny_model.read_bytes())
    tiny_lm(model).write_bytes(tiny_lm(tiny_model).read_bytes())
    folder = make_folder(tmp_path, bad=False, seconds=1.0)
    out = tmp_path / "out"
    assert batch(capsys, model, out, folder, "-j", "1")[0] == 0
    for name in files_under(out) - BATCH_FILES:  # the model was replaced after these minutes were made
        os.utime(out / name, (time.time() - 100,) * 2)
    os.utime(model, (time.time() - 50,) * 2)
    code, _, err = batch(capsys, model, out, folder, "-j", "1")
    assert code == 0 and summary_counts(err) == (GOOD, 0, 0)


def test_extensions_option_and_hidden_files(capsys, tiny_model, tmp_path):
    folder = make_folder(tmp_path, bad=False, seconds=1.0)
    (folder / ".partial.wav").write_bytes((folder / "talk0.wav").read_bytes())  # hidden: skipped
    code, _, err = batch(capsys, tiny_model, tmp_path / "out", folder, "--ext", "FLAC", "-j", "1")
    assert code == 0 and summary_counts(err) == (2, 0, 0)
    assert files_under(tmp_path / "out") - BATCH_FILES == {"talk2.md", "sub/talk5.md"}
    for bad, message in ((["--ext", ","], "no file extensions"), (["-j", "0"], "--jobs must be at least 1"),
                         (["--address", "10.0.0.5:6379"], "use it with --backend ray")):
        code, _, err = batch(capsys, tiny_model, tmp_path / "out", folder, *bad)
        assert code == 2 and message in err and "Traceback" not in err


def test_a_second_run_on_the_same_output_folder_is_refused(capsys, tiny_model, tmp_path):
    folder = make_folder(tmp_path, bad=False, seconds=1.0)
    out = tmp_path / "out"
    out.mkdir()
    with Journal(out):
        code, stdout, err = batch(capsys, tiny_model, out, folder, "-j", "1")
    assert code == 2 and stdout == ""
    assert error_lines(err) == [f"minutes: error: another minutes run is writing to {out}; wait for it or use another -o"]


def test_killed_parallel_run_resumes_to_byte_identical_outputs(capsys, tiny_model, tmp_path):
    """SIGKILL a 2-worker run as soon as its first output appears, rerun: the same bytes as an uninterrupted
    run, no temporary file anywhere, and the killed run's workers do not outlive it."""
    folder = make_folder(tmp_path, bad=False, seconds=6.0)
    reference = tmp_path / "reference"
    assert batch(capsys, tiny_model, reference, folder, "-f", "md,json,srt", "-j", "1")[0] == 0

    out = tmp_path / "out"
    command = [sys.executable, "-m", "minutes", "transcribe", str(folder), "-o", str(out), "-f", "md,json,srt",
               "--model", str(tiny_model), "--lm", str(tiny_lm(tiny_model)), "--quiet", "--no-diarize", "-j", "2"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while not any(name.endswith(".md") for name in files_under(out)) and time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it could be killed"
        time.sleep(0.02)
    process.kill()
    process.wait()
    assert len(outputs(out)) < 3 * GOOD  # killed part-way
    _wait_for_workers_to_exit(out)

    code, _, err = batch(capsys, tiny_model, out, folder, "-f", "md,json,srt", "-j", "1")
    assert code == 0, err
    done, skipped, _ = summary_counts(err)
    assert done + skipped == GOOD and skipped >= 1
    assert outputs(out) == outputs(reference)
    assert_no_tmp(out)


def _wait_for_workers_to_exit(out: Path) -> None:
    """The journal lock is on the folder; once every worker died with the driver, nobody holds it."""
    deadline = time.monotonic() + 20
    while True:
        try:
            with Journal(out):
                return
        except RuntimeError:
            assert time.monotonic() < deadline, "workers outlived their killed driver"
            time.sleep(0.2)


def test_ctrl_c_stops_cleanly_and_marks_the_report(tiny_model, tmp_path):
    folder = make_folder(tmp_path, bad=False, seconds=6.0)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "minutes", "transcribe", str(folder), "-o", str(out), "--model", str(tiny_model),
               "--lm", str(tiny_lm(tiny_model)), "--quiet", "--no-diarize", "-j", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not any(name.endswith(".md") for name in files_under(out)) and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    if process.returncode == 0:
        pytest.skip("the run finished before Ctrl-C arrived")
    assert process.returncode == 130 and "Traceback" not in err
    assert "interrupted" in err and "run the same command again" in err
    assert json.loads((out / REPORT).read_text())["interrupted"] is True
    assert_no_tmp(out)


# ------------------------------------------------------------------------------------------- long files


def test_windows_are_contiguous_bounded_and_exact():
    rng = np.random.default_rng(0)
    audio = (0.3 * rng.standard_normal(16000 * 47)).astype(np.float32)
    audio[16000 * 20: 16000 * 21] = 0  # a pause where the first cut should go
    blocks = (audio[i:i + 3001] for i in range(0, audio.size, 3001))  # odd block size on purpose
    windows = Windows(blocks, 16000 * 24)
    spans = []
    for start, window in windows:
        assert window.size <= 16000 * 24 and windows.buffer.size <= 16000 * 24 + 3001
        assert np.array_equal(window, audio[start:start + window.size])
        spans.append((start, start + window.size))
    assert spans[0][0] == 0 and spans[-1][1] == audio.size == windows.samples
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert 20 * 16000 <= spans[0][1] <= 21 * 16000


def test_a_word_at_a_cut_is_carried_into_the_next_window(tiny_model, monkeypatch):
    """A fake decoder puts a word right at the end of each window: it is dropped there and decoded again
    at the start of the next window, so no word is cut in two or counted twice."""
    from minutes.model import Word

    transcriber = Transcriber(tiny_model, make_options("greedy", max_chunk_s=6.0), tiny_lm(tiny_model))
    seen = []

    def fake_decode(chunk: np.ndarray, offset: float, speech=None) -> list[Word]:  # type: ignore[no-untyped-def]
        seen.append((offset, chunk.size / 16000))
        end = offset + chunk.size / 16000
        return [Word("early", offset + 0.1, offset + 0.5, 1.0), Word("late", end - 0.6, end, 1.0)]

    monkeypatch.setattr(transcriber, "_decode_chunk", fake_decode)
    minutes = transcriber.transcribe(make_speech_like(15.0))
    words = [w for s in minutes.segments for w in s.words]
    assert seen[1][0] == pytest.approx(seen[0][0] + seen[0][1] - 0.6 - 0.25, abs=1e-3)  # carried from the word
    assert [w.word for w in words] == ["early"] * len(seen) + ["late"]  # the last window keeps its word
    assert [w.start for w in words] == sorted(w.start for w in words)


def test_long_file_streams_in_small_windows_without_drift(tiny_model, tmp_path):
    """Three minutes of tone bursts of known length, decoded from disk in 5 s windows: the same minutes as
    the whole array in memory, the exact duration, and every word inside it."""
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(16000 * 2) / 16000)).astype(np.float32)
    piece = np.concatenate([tone, np.zeros(8000, np.float32), make_speech_like(1.5)])
    audio = np.tile(piece, 48)  # 48 x 4.0 s = 192 s
    path = tmp_path / "long.flac"
    sf.write(path, audio, 16000, subtype="PCM_16")
    settings = Settings(("json",), tiny_model, tiny_lm(tiny_model), make_options("greedy", max_chunk_s=5.0))
    transcriber = settings.load()
    ticks = []
    outcome, texts = process_file(Job(path, tmp_path / "long"), transcriber, settings,
                                  lambda step, completed, total: ticks.append(completed))
    assert outcome.status == "done", outcome.reason
    minutes = json.loads(texts["json"])
    assert minutes["duration"] == 192.0 == outcome.audio_s
    assert len(ticks) >= 192 / 5 and ticks[-1] == 192.0 and ticks == sorted(ticks)
    words = [w for seg in minutes["segments"] for w in seg["words"]]
    assert words and all(0 <= w["start"] <= w["end"] <= 192.0 for w in words)
    pcm = sf.read(path, dtype="float32")[0]
    in_memory = transcriber.transcribe(pcm, source="long.flac", date=minutes["date"])
    assert in_memory.to_dict() == minutes


# ----------------------------------------------------------------------------------------------- Ray


@pytest.fixture
def ray_cluster():
    """A Ray head and one worker node on this machine (loopback), one CPU each; skipped where Ray cannot start."""
    cluster_utils = pytest.importorskip("ray.cluster_utils")
    try:
        cluster = cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
    except Exception as error:  # Ray's own start-up errors vary by version and sandbox
        pytest.skip(f"Ray cannot start here: {error}")
    yield cluster.address
    cluster.shutdown()


def test_ray_backend_gives_the_same_outputs_journal_and_report(capsys, tiny_model, tmp_path, ray_cluster):
    folder = make_folder(tmp_path, bad=False, seconds=2.0)
    (folder / "empty.wav").write_bytes(b"")
    local, remote = tmp_path / "local", tmp_path / "ray"
    assert batch(capsys, tiny_model, local, folder, "-f", "md,json", "-j", "1")[0] == 1
    code, stdout, err = batch(capsys, tiny_model, remote, folder, "-f", "md,json", "--backend", "ray",
                              "--address", ray_cluster)
    assert code == 1 and summary_counts(err) == (GOOD, 0, 1), err
    assert outputs(remote) == outputs(local)
    assert f"minutes: error: {folder / 'empty.wav'}: empty file (0 bytes)" in error_lines(err)
    report = json.loads((remote / REPORT).read_text())
    assert report["totals"]["done"] == GOOD and report["totals"]["failed"] == 1
    code, _, err = batch(capsys, tiny_model, remote, folder, "-f", "md,json", "--backend", "ray",
                         "--address", ray_cluster)
    assert code == 1 and summary_counts(err) == (0, GOOD, 1)  # resumes like the local backend


def test_an_input_whose_json_would_overwrite_the_report_is_refused(capsys, tiny_model, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    sf.write(folder / "report.wav", make_speech_like(1.0), 16000)
    sf.write(folder / "other.wav", make_speech_like(1.0), 16000)
    out = tmp_path / "out"
    code, _, err = batch(capsys, tiny_model, out, folder, "-f", "json", "-j", "1")
    assert code == 1 and summary_counts(err) == (1, 0, 1)
    assert f"minutes: error: {folder / 'report.wav'}: its output would overwrite the batch report" in err
    assert json.loads((out / REPORT).read_text())["version"] == 1


def test_diarization_model_files_count_as_model_files(tiny_model, tmp_path):
    diarization = tmp_path / "diarization"
    (diarization / "segmentation").mkdir(parents=True)
    (diarization / "config.yaml").write_text("pipeline: {}\n")
    (diarization / "segmentation" / "model.bin").write_bytes(b"x")
    (diarization / "MODEL_CARD.md").write_text("card")
    plain = Settings(("md",), tiny_model, tiny_lm(tiny_model))
    with_speakers = Settings(("md",), tiny_model, tiny_lm(tiny_model), speakers=SpeakerOptions(model=diarization))
    extra = set(with_speakers.model_files()) - set(plain.model_files())
    assert extra == {diarization / "config.yaml", diarization / "segmentation" / "model.bin"}
    before = with_speakers.fingerprint()
    (diarization / "segmentation" / "model.bin").write_bytes(b"retrained")
    assert with_speakers.fingerprint() != before  # a retrained diarizer redoes the files
