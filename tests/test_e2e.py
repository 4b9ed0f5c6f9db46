"""End to end: `minutes transcribe` of the bundled sample meeting with the shipped default model."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lm.metrics import error_rates
from minutes.cli import main
from minutes.pipeline import DEFAULT_MODEL

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
# Measured with the shipped default model and LM (see bench/RESULTS.md); the bound leaves a margin.
MAX_CER = 0.12  # measured 0.093 (WER 0.204) on 2026-11-26 with beam 16 + LM


@pytest.fixture(scope="module")
def sample_outputs(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out")
    assert main(["transcribe", str(SAMPLES / "meeting.opus"), "-o", str(out), "-f", "json,md", "--quiet"]) == 0
    return out


def reference_text() -> str:
    lines = (SAMPLES / "meeting.txt").read_text(encoding="utf-8").splitlines()
    return " ".join(line.split(":", 1)[1] for line in lines)


def test_shipped_model_exists():
    assert DEFAULT_MODEL.is_file()


def test_sample_transcript_is_close_to_the_reference(sample_outputs):
    minutes = json.loads((sample_outputs / "meeting.json").read_text(encoding="utf-8"))
    hypothesis = " ".join(segment["text"] for segment in minutes["segments"])
    wer, cer = error_rates([reference_text()], [hypothesis])
    assert cer <= MAX_CER, f"CER {cer:.3f} WER {wer:.3f}: {hypothesis}"


def test_sample_times_are_monotonic_and_inside_the_audio(sample_outputs):
    minutes = json.loads((sample_outputs / "meeting.json").read_text(encoding="utf-8"))
    assert minutes["duration"] == pytest.approx(73.56, abs=0.05)
    words = [w for segment in minutes["segments"] for w in segment["words"]]
    assert len(words) > 50
    starts = [w["start"] for w in words]
    assert starts == sorted(starts)
    assert all(0 <= w["start"] <= w["end"] <= minutes["duration"] and 0 <= w["confidence"] <= 1 for w in words)
    for segment in minutes["segments"]:
        assert segment["start"] == segment["words"][0]["start"] and segment["end"] == segment["words"][-1]["end"]


def test_sample_markdown_minutes(sample_outputs):
    text = (sample_outputs / "meeting.md").read_text(encoding="utf-8")
    assert text.startswith("# Minutes: meeting\n")
    assert "- **Duration:** 0:01:14" in text and "- **Source:** meeting.opus" in text
    assert "## Transcript" in text
    turns = re.findall(r"^\*\*\[(\d\d:\d\d:\d\d)\]\*\* \S", text, flags=re.M)
    assert len(turns) >= 5 and turns == sorted(turns) and turns[-1] <= "00:01:14"
