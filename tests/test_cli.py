"""The `minutes transcribe` command: outputs, per-input errors, exit codes, and the batch summary."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from minutes.cli import FORMATS, main
from tests.conftest import tiny_lm

ALL_FORMATS = ("md", "srt", "vtt", "json", "txt", "rttm", "ctm", "stm")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `minutes ARGS` in-process -> (exit code, stdout, stderr); argparse exits become codes."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def transcribe(capsys: pytest.CaptureFixture[str], model: Path, out: Path, *args: str) -> tuple[int, str, str]:
    return run(capsys, "transcribe", *args, "-o", str(out), "--model", str(model), "--lm", str(tiny_lm(model)),
               "--quiet", "--jobs", "1")


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("minutes: error:")]


BATCH_FILES = {".minutes-journal.jsonl", "report.json"}  # what a run over a folder or several inputs adds


def files_under(folder: Path) -> set[str]:
    """All files below `folder` (hidden ones included) as sorted relative POSIX paths."""
    if not folder.exists():
        return set()
    return {Path(root, name).relative_to(folder).as_posix()
            for root, _, names in os.walk(folder) for name in names}


def summary_counts(err: str) -> tuple[int, int, int]:
    """(done, skipped, failed) from the summary table on stderr."""
    counts = dict(re.findall(r"^  (done|skipped|failed) +(\d+)", err, re.MULTILINE))
    return int(counts["done"]), int(counts["skipped"]), int(counts["failed"])


def assert_no_tmp(folder: Path) -> None:
    leftovers = [name for name in files_under(folder) if name.endswith(".tmp")]
    assert leftovers == []


def write_wav(path: Path, audio: np.ndarray, rate: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, rate, subtype="PCM_16")
    return path


# ------------------------------------------------------------------------------------ good inputs


def test_all_formats_are_written_for_one_good_wav(capsys, tiny_model, speech_like_wav, tmp_path) -> None:
    out = tmp_path / "OUT"
    code, stdout, err = transcribe(capsys, tiny_model, out, str(speech_like_wav), "-f", "all")
    assert code == 0, err
    assert error_lines(err) == [] and "Traceback" not in err
    assert files_under(out) == {f"speech.{fmt}" for fmt in ALL_FORMATS}
    assert set(FORMATS) == set(ALL_FORMATS)
    # the summary names the input and every output
    assert stdout.strip() == f"{speech_like_wav} -> " + ", ".join(str(out / f"speech.{f}") for f in FORMATS)

    md = (out / "speech.md").read_text(encoding="utf-8")
    assert md.startswith("# Minutes: speech\n")
    assert "- **Duration:** 0:00:03\n" in md and "- **Source:** speech.wav\n" in md
    assert "- **Model:** tiny\n" in md and "## Transcript" in md

    srt = (out / "speech.srt").read_text(encoding="utf-8")
    assert re.match(r"1\n\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}\n\S", srt)
    vtt = (out / "speech.vtt").read_text(encoding="utf-8")
    assert vtt.startswith("WEBVTT\n\n") and re.search(r"\d\d:\d\d\.\d{3} --> \d\d:\d\d\.\d{3}\n", vtt)
    txt = (out / "speech.txt").read_text(encoding="utf-8")
    assert re.fullmatch(r"(\[\d\d:\d\d:\d\d\] \S.*\n)+", txt)
    # a random model emits some characters: every CTM line is `speech 1 begin dur word conf`
    ctm = (out / "speech.ctm").read_text(encoding="utf-8").splitlines()
    assert ctm and all(re.fullmatch(r"speech 1 \d+\.\d{3} \d+\.\d{3} \S+ \d\.\d\d", line) for line in ctm)
    stm = (out / "speech.stm").read_text(encoding="utf-8").splitlines()
    assert stm and all(line.startswith("speech 1 unknown ") for line in stm)
    # no speakers are identified, so the RTTM (speaker turns) is present but empty
    assert (out / "speech.rttm").read_text(encoding="utf-8") == ""
    assert_no_tmp(out)


def test_selected_formats_only(capsys, tiny_model, speech_like_wav, tmp_path) -> None:
    out = tmp_path / "OUT"
    code, stdout, err = transcribe(capsys, tiny_model, out, str(speech_like_wav), "-f", "md,json")
    assert code == 0, err
    assert files_under(out) == {"speech.md", "speech.json"}
    assert stdout.strip() == f"{speech_like_wav} -> {out / 'speech.md'}, {out / 'speech.json'}"


def test_default_format_is_markdown_only(capsys, tiny_model, speech_like_wav, tmp_path) -> None:
    out = tmp_path / "OUT"
    code, _, err = transcribe(capsys, tiny_model, out, str(speech_like_wav))
    assert code == 0, err
    assert files_under(out) == {"speech.md"}


def test_json_output(capsys, tiny_model, speech_like_wav, tmp_path) -> None:
    out = tmp_path / "OUT"
    code, _, err = transcribe(capsys, tiny_model, out, str(speech_like_wav), "-f", "json")
    assert code == 0, err
    data = json.loads((out / "speech.json").read_text(encoding="utf-8"))
    assert data["version"] == 1
    assert data["source"] == "speech.wav"
    assert data["duration"] == pytest.approx(3.0, abs=0.01)
    assert data["model"] == "tiny"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", data["date"])
    assert data["speakers"] == []
    assert isinstance(data["segments"], list) and data["segments"]
    for seg in data["segments"]:
        assert 0.0 <= seg["start"] <= seg["end"]
        assert seg["text"] == " ".join(w["word"] for w in seg["words"])
        for word in seg["words"]:
            assert seg["start"] <= word["start"] <= word["end"] <= seg["end"]
            assert 0.0 <= word["confidence"] <= 1.0


def test_dotted_file_name_keeps_its_whole_stem(capsys, tiny_model, speech_like_wav, tmp_path) -> None:
    """`team.sync.wav` -> `team.sync.md`, not `team.md` (Path.with_suffix would drop `.sync`)."""
    source = tmp_path / "team.sync.wav"
    source.write_bytes(speech_like_wav.read_bytes())
    out = tmp_path / "OUT"
    code, stdout, err = transcribe(capsys, tiny_model, out, str(source), "-f", "md,txt")
    assert code == 0, err
    assert files_under(out) == {"team.sync.md", "team.sync.txt"}
    assert str(out / "team.sync.md") in stdout


def test_outputs_get_normal_permissions(capsys, tiny_model, speech_like_wav, tmp_path) -> None:
    """Atomic writes go through mkstemp (mode 0600); the final outputs must follow the umask instead."""
    out = tmp_path / "OUT"
    old = os.umask(0o022)
    try:
        code, _, err = transcribe(capsys, tiny_model, out, str(speech_like_wav), "-f", "md,json")
    finally:
        os.umask(old)
    assert code == 0, err
    for name in ("speech.md", "speech.json"):
        assert (out / name).stat().st_mode & 0o777 == 0o644


def test_folder_input_mirrors_subfolders(capsys, tiny_model, speech_like_wav, tmp_path) -> None:
    inp = tmp_path / "in"
    (inp / "a").mkdir(parents=True)
    (inp / "b" / "c").mkdir(parents=True)
    (inp / "a" / "x.wav").write_bytes(speech_like_wav.read_bytes())
    audio, rate = sf.read(speech_like_wav, dtype="float32")
    sf.write(inp / "b" / "c" / "y.flac", audio[: rate * 2], rate)
    (inp / "top.wav").write_bytes(speech_like_wav.read_bytes())
    (inp / "a" / "notes.txt").write_text("not audio, ignored")
    out = tmp_path / "OUT"
    code, stdout, err = transcribe(capsys, tiny_model, out, str(inp), "-f", "md,json")
    assert code == 0, err
    assert files_under(out) == {"a/x.md", "a/x.json", "b/c/y.md", "b/c/y.json", "top.md", "top.json"} | BATCH_FILES
    y = json.loads((out / "b" / "c" / "y.json").read_text(encoding="utf-8"))
    assert y["source"] == "y.flac" and y["duration"] == pytest.approx(2.0, abs=0.01)
    assert len(stdout.strip().splitlines()) == 3
    assert_no_tmp(out)


# ------------------------------------------------------------------------------------- bad inputs


def _missing(tmp: Path) -> Path:
    return tmp / "nowhere" / "gone.wav"


def _empty(tmp: Path) -> Path:
    (tmp / "empty.wav").write_bytes(b"")
    return tmp / "empty.wav"


def _text(tmp: Path) -> Path:
    (tmp / "agenda.txt").write_text("1. budget\n2. hiring\n" * 50)
    return tmp / "agenda.txt"


def _zero_length(tmp: Path) -> Path:
    return write_wav(tmp / "header_only.wav", np.zeros(0, dtype=np.float32))


def _silent(tmp: Path) -> Path:
    return write_wav(tmp / "silence.wav", np.zeros(3 * 16000, dtype=np.float32))


def _garbage_m4a(tmp: Path) -> Path:
    (tmp / "broken.m4a").write_bytes(np.random.default_rng(3).bytes(8000))
    return tmp / "broken.m4a"


def _no_audio_folder(tmp: Path) -> Path:
    folder = tmp / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "readme.md").write_text("no recordings here")
    (folder / "sub" / "data.csv").write_text("a,b\n1,2\n")
    return folder


BAD_INPUTS = [
    pytest.param(_missing, "no such file or folder", id="missing"),
    pytest.param(_empty, "empty file (0 bytes)", id="empty-file"),
    pytest.param(_text, "not a readable audio file", id="non-audio"),
    pytest.param(_zero_length, "zero-length", id="zero-length-wav"),
    pytest.param(_silent, "silent", id="silent-wav"),
    pytest.param(_garbage_m4a, "not a readable audio file", id="unreadable-codec"),
    pytest.param(_no_audio_folder, "folder contains no audio files", id="folder-without-audio"),
]


@pytest.mark.parametrize(("make", "reason"), BAD_INPUTS)
def test_bad_input_gives_one_error_line_and_exit_1(capsys, tiny_model, tmp_path, make, reason) -> None:
    source = make(tmp_path)
    out = tmp_path / "OUT"
    code, stdout, err = transcribe(capsys, tiny_model, out, str(source), "-f", "all")
    assert code == 1
    assert "Traceback" not in err and "Traceback" not in stdout
    lines = error_lines(err)
    assert len(lines) == 1, err
    assert lines[0].startswith(f"minutes: error: {source}: ")
    assert reason in lines[0]
    assert lines[0].count(str(source)) == 1  # the decoder's own message does not repeat the path
    assert summary_counts(err) == (0, 0, 1)
    assert f"    {source}: " in err  # the summary lists the failure again
    assert stdout == ""
    assert files_under(out) - BATCH_FILES == set()


def test_batch_with_failures_still_writes_the_good_one(capsys, tiny_model, speech_like_wav, tmp_path) -> None:
    bad_empty, bad_silent = _empty(tmp_path), _silent(tmp_path)
    out = tmp_path / "OUT"
    code, stdout, err = transcribe(capsys, tiny_model, out, str(bad_empty), str(speech_like_wav), str(bad_silent),
                                   "-f", "md,srt,json")
    assert code == 1
    assert files_under(out) == {"speech.md", "speech.srt", "speech.json"} | BATCH_FILES
    assert json.loads((out / "speech.json").read_text(encoding="utf-8"))["source"] == "speech.wav"
    assert summary_counts(err) == (1, 0, 2)
    lines = error_lines(err)
    assert len(lines) == 2
    assert lines[0].startswith(f"minutes: error: {bad_empty}: ") and lines[1].startswith(f"minutes: error: {bad_silent}: ")
    assert stdout.startswith(f"{speech_like_wav} -> ")
    assert "Traceback" not in err
    assert_no_tmp(out)


def test_unwritable_output_folder_exits_2(capsys, tiny_model, speech_like_wav, tmp_path) -> None:
    blocker = tmp_path / "somefile.txt"
    blocker.write_text("a regular file where a folder should be")
    out = blocker / "out"
    code, stdout, err = transcribe(capsys, tiny_model, out, str(speech_like_wav))
    assert code == 2
    assert err.splitlines() == [err.strip()]  # exactly one line
    assert err.startswith(f"minutes: error: cannot write to output folder {out}: ")
    assert stdout == "" and "Traceback" not in err
    assert blocker.read_text() == "a regular file where a folder should be"


def test_bad_format_is_a_usage_error(capsys, tiny_model, speech_like_wav, tmp_path) -> None:
    code, stdout, err = transcribe(capsys, tiny_model, tmp_path / "OUT", str(speech_like_wav), "-f", "md,docx")
    assert code == 2
    assert err.startswith("usage: minutes transcribe")
    assert "argument -f/--formats: unknown format 'docx'" in err
    assert "choose from md, srt, vtt, json, txt, rttm, ctm, stm or all" in err
    assert stdout == "" and not (tmp_path / "OUT").exists()


@pytest.mark.parametrize("value", ["", ",", "MD"])
def test_empty_or_wrong_case_format_is_rejected(capsys, tiny_model, speech_like_wav, tmp_path, value) -> None:
    code, _, err = transcribe(capsys, tiny_model, tmp_path / "OUT", str(speech_like_wav), "-f", value)
    assert code == 2 and "unknown format" in err and "choose from" in err


def _corrupt_model(tmp: Path, tiny: Path) -> Path:
    (tmp / "corrupt.pt").write_bytes(np.random.default_rng(5).bytes(2000))
    return tmp / "corrupt.pt"


def _truncated_model(tmp: Path, tiny: Path) -> Path:
    data = tiny.read_bytes()
    (tmp / "truncated.pt").write_bytes(data[: len(data) // 2])
    return tmp / "truncated.pt"


def _wrong_version_model(tmp: Path, tiny: Path) -> Path:
    torch.save({"format_version": 99}, str(tmp / "future.pt"))
    return tmp / "future.pt"


@pytest.mark.parametrize(("make", "reason"), [
    pytest.param(lambda tmp, tiny: tmp / "no_model.pt", "model file not found", id="missing"),
    pytest.param(lambda tmp, tiny: tmp, "model file not found", id="folder"),
    pytest.param(_corrupt_model, "not a minutes model file", id="random-bytes"),
    pytest.param(_truncated_model, "not a minutes model file", id="truncated"),
    pytest.param(_wrong_version_model, "unsupported model format", id="wrong-version"),
])
def test_bad_model_gives_one_line_and_exit_2(capsys, tiny_model, speech_like_wav, tmp_path, make, reason) -> None:
    model = make(tmp_path, tiny_model)
    out = tmp_path / "OUT"
    code, stdout, err = transcribe(capsys, model, out, str(speech_like_wav))
    assert code == 2
    assert err.splitlines() == [err.strip()]
    assert err.startswith("minutes: error: ") and reason in err and str(model) in err
    assert "Traceback" not in err and stdout == ""
    assert files_under(out) == set()


def test_version_flag(capsys) -> None:
    code, stdout, _ = run(capsys, "--version")
    assert code == 0 and stdout.strip() == "minutes 0.1.0"


def test_no_command_is_a_usage_error(capsys) -> None:
    code, _, err = run(capsys)
    assert code == 2 and err.startswith("usage: minutes")


def test_python_dash_m_minutes(tiny_model, speech_like_wav, tmp_path) -> None:
    out = tmp_path / "OUT"
    missing = tmp_path / "missing.wav"
    result = subprocess.run(
        [sys.executable, "-m", "minutes", "transcribe", str(speech_like_wav), str(missing), "-o", str(out),
         "-f", "md,vtt", "--model", str(tiny_model), "--lm", str(tiny_lm(tiny_model)), "--quiet"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert files_under(out) == {"speech.md", "speech.vtt"} | BATCH_FILES
    assert (out / "speech.vtt").read_text(encoding="utf-8").startswith("WEBVTT")
    assert error_lines(result.stderr) == [f"minutes: error: {missing}: no such file or folder"]
    assert summary_counts(result.stderr) == (1, 0, 1)
    assert result.stdout.startswith(f"{speech_like_wav} -> ")


def test_inputs_whose_outputs_collide_are_reported_not_overwritten(tmp_path, tiny_model, capsys):
    from tests.conftest import make_speech_like

    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        sf.write(tmp_path / folder / "x.wav", make_speech_like(1.0), 16000)
    out = tmp_path / "out"
    code, _, err = transcribe(capsys, tiny_model, out, str(tmp_path / "a" / "x.wav"), str(tmp_path / "b" / "x.wav"))
    assert code == 1
    assert f"minutes: error: {tmp_path / 'b' / 'x.wav'}: outputs would overwrite those of {tmp_path / 'a' / 'x.wav'}" in err
    assert summary_counts(err) == (1, 0, 1)
    assert (out / "x.md").is_file()


@pytest.mark.parametrize("args, message", [
    (["--beam", "0"], "beam must be in the range 1..256"),
    (["--lm-weight", "9"], "lm_weight must be in the range 0.0..5.0"),
    (["--hotwords", "Kowalski", "--decoder", "greedy"], "hotwords need the beam decoder"),
    (["--hotwords-file", "missing-hotwords.txt"], "No such file"),
    (["--hotwords", "Q3"], "spelled in letters"),
    (["--hotwords", "Anna", "--hotword-bonus", "500"], "range -100..100"),
])
def test_bad_decoding_options_exit_2(capsys, tiny_model, speech_like_wav, tmp_path, args, message) -> None:
    code, _, err = transcribe(capsys, tiny_model, tmp_path / "out", str(speech_like_wav), *args)
    assert code == 2
    assert len(error_lines(err)) == 1 and message in err and "Traceback" not in err


def test_greedy_and_hotword_file_runs(capsys, tiny_model, speech_like_wav, tmp_path) -> None:
    words = tmp_path / "hotwords.txt"
    words.write_text("# names\nKowalski\nKubernetes  # the tool\n", encoding="utf-8")
    for extra in (["--decoder", "greedy"], ["--hotwords-file", str(words), "--hotwords", "Anna", "--beam", "4"]):
        code, _, err = transcribe(capsys, tiny_model, tmp_path / "out", str(speech_like_wav), *extra)
        assert code == 0, err
        assert (tmp_path / "out" / "speech.md").is_file()


def test_read_hotwords_splits_names_and_reads_the_file(tmp_path) -> None:
    from minutes.cli import build_parser, read_hotwords

    words = tmp_path / "words.txt"
    words.write_text("# team\nZhang Wei\n\nGrafana  # dashboards\n", encoding="utf-8")
    args = build_parser().parse_args(["transcribe", "x.wav", "--hotwords", "Anna Kowalski, Kubernetes",
                                      "--hotwords-file", str(words), "--hotword-bonus", "30"])
    assert read_hotwords(args) == {w: 30.0 for w in ("Anna", "Kowalski", "Kubernetes", "Zhang", "Wei", "Grafana")}


# ------------------------------------------------------------------------------------ render: outputs


def minutes_json(path: Path) -> Path:
    """A minutes JSON with one segment by SPEAKER_00 at `path` (folders made)."""
    from minutes.model import Minutes, Segment

    segment = Segment(0.0, 1.0, "hi", speaker="SPEAKER_00")
    minutes = Minutes(source="meet.wav", duration=2.0, model="m", segments=(segment,))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(minutes.to_dict()), encoding="utf-8")
    return path


def test_render_refuses_to_overwrite_outputs_without_force(capsys, tmp_path) -> None:
    source = minutes_json(tmp_path / "m.json")
    (tmp_path / "m.md").write_text("edited by hand", encoding="utf-8")
    code, stdout, err = run(capsys, "render", source, "-f", "srt,md", "--names", "Anna")
    assert code == 2 and stdout == ""
    assert err == (f"minutes: error: would overwrite {tmp_path / 'm.md'}; pass --force to overwrite, "
                   "or -o to write elsewhere\n")
    assert files_under(tmp_path) == {"m.json", "m.md"}  # nothing written, not even the srt
    assert (tmp_path / "m.md").read_text(encoding="utf-8") == "edited by hand"
    code, stdout, err = run(capsys, "render", source, "-f", "srt,md", "--names", "Anna", "--force")
    assert code == 0 and err == ""
    assert "**[00:00:00] Anna:** hi" in (tmp_path / "m.md").read_text(encoding="utf-8")
    assert files_under(tmp_path) == {"m.json", "m.md", "m.srt"}


def test_render_rewrites_its_input_json_only_with_force(capsys, tmp_path) -> None:
    source = minutes_json(tmp_path / "m.json")
    before = source.read_bytes()
    code, _, err = run(capsys, "render", source, "-f", "all", "--names", "Anna")
    assert code == 2
    assert err.startswith(f"minutes: error: would overwrite {tmp_path / 'm.json'} (the input); pass --force")
    assert source.read_bytes() == before and files_under(tmp_path) == {"m.json"}
    code, _, err = run(capsys, "render", source, "-f", "json", "--names", "Anna", "--force")
    assert code == 0 and err == ""
    data = json.loads(source.read_text(encoding="utf-8"))
    assert data["speakers"] == ["Anna"] and data["segments"][0]["speaker"] == "Anna"
    assert_no_tmp(tmp_path)


def test_render_lists_at_most_three_existing_outputs(capsys, tmp_path) -> None:
    source = minutes_json(tmp_path / "m.json")
    for fmt in ("md", "srt", "vtt", "txt"):
        (tmp_path / f"m.{fmt}").write_text("old", encoding="utf-8")
    code, _, err = run(capsys, "render", source, "-f", "md,srt,vtt,txt")
    shown = ", ".join(str(tmp_path / f"m.{fmt}") for fmt in ("md", "srt", "vtt"))
    assert code == 2 and err.startswith(f"minutes: error: would overwrite {shown} and 1 more; ")
    assert err.count("\n") == 1


def test_render_refuses_inputs_that_would_write_the_same_file(capsys, tmp_path) -> None:
    first, second = minutes_json(tmp_path / "a" / "x.json"), minutes_json(tmp_path / "b" / "x.json")
    out = tmp_path / "out"
    for extra in ([], ["--force"]):
        code, stdout, err = run(capsys, "render", first, second, "-f", "md,vtt", "-o", out, *extra)
        assert code == 2 and stdout == ""
        assert err == (f"minutes: error: {first} and {second} would both write {out / 'x.md'}; "
                       "render them one at a time into different -o folders\n")
        assert not out.exists()


def test_render_takes_a_file_named_twice_once(capsys, tmp_path) -> None:
    source = minutes_json(tmp_path / "a" / "m.json")
    (tmp_path / "link").symlink_to(tmp_path / "a")
    code, stdout, err = run(capsys, "render", source, tmp_path / "link" / "m.json", source, "-f", "txt")
    assert code == 0 and err == ""
    assert stdout == f"{source} -> {tmp_path / 'a' / 'm.txt'}\n"
    assert (tmp_path / "a" / "m.txt").read_text(encoding="utf-8") == "[00:00:00] SPEAKER_00: hi\n"


def test_render_help_explains_force(capsys) -> None:
    code, stdout, _ = run(capsys, "render", "--help")
    assert code == 0
    assert "--force" in stdout and "exit 2" in " ".join(stdout.split())
