"""The minutes model: construction, text, and the versioned JSON round trip."""
from __future__ import annotations

import io
import json

import pytest

from minutes.model import FORMAT_VERSION, Minutes, Segment, Word
from minutes.writers import write_json


def make_minutes() -> Minutes:
    return Minutes(
        source="/recordings/team_sync.wav",
        duration=3725.5,
        model="bilstm-ctc-small",
        title="Team sync",
        date="2024-05-01",
        speakers=("Anna", "Ben"),
        segments=(
            Segment(1.25, 3.5, "Hello everyone.", (Word("Hello", 1.25, 1.7, 0.93), Word("everyone.", 1.8, 3.5, 0.8)), "Anna"),
            Segment(4.0, 6.0, "Thanks, Anna.", (Word("Thanks,", 4.0, 4.6, 0.9), Word("Anna.", 4.7, 6.0, 0.75)), "Ben"),
            Segment(3600.0, 3725.5, "Bye.", (Word("Bye.", 3725.0, 3725.5, 0.5),)),
        ),
    )


def test_text_joins_segments_with_single_spaces() -> None:
    assert make_minutes().text == "Hello everyone. Thanks, Anna. Bye."


def test_to_dict_has_the_documented_shape() -> None:
    d = make_minutes().to_dict()
    assert list(d) == ["version", "source", "duration", "model", "title", "date", "speakers", "segments"]
    assert d["version"] == FORMAT_VERSION == 1
    assert d["speakers"] == ["Anna", "Ben"]
    assert d["segments"][0] == {
        "start": 1.25,
        "end": 3.5,
        "speaker": "Anna",
        "text": "Hello everyone.",
        "words": [
            {"word": "Hello", "start": 1.25, "end": 1.7, "confidence": 0.93},
            {"word": "everyone.", "start": 1.8, "end": 3.5, "confidence": 0.8},
        ],
    }
    assert d["segments"][2]["speaker"] is None


def test_json_round_trip_through_the_writer() -> None:
    m = make_minutes()
    buf = io.StringIO()
    write_json(m, buf)
    back = Minutes.from_dict(json.loads(buf.getvalue()))
    assert back == m
    assert isinstance(back.segments, tuple) and isinstance(back.segments[0].words, tuple)
    assert isinstance(back.speakers, tuple)
    assert back.segments[2].speaker is None
    assert back.segments[2].words[0].start == 3725.0


def test_round_trip_keeps_unicode_and_missing_metadata() -> None:
    m = Minutes(source="réunion.wav", duration=2.0, model="m", segments=(Segment(0.0, 2.0, "Grüße — 你好"),))
    assert Minutes.from_dict(json.loads(json.dumps(m.to_dict()))) == m
    assert m.title is None and m.date is None and m.speakers == ()


def test_lists_are_stored_as_tuples() -> None:
    seg = Segment(0.0, 1.0, "hi", [Word("hi", 0.0, 1.0, 1.0)])  # type: ignore[arg-type]
    m = Minutes("a.wav", 1.0, "m", [seg], ["Anna"])  # type: ignore[arg-type]
    assert isinstance(seg.words, tuple) and isinstance(m.segments, tuple) and m.speakers == ("Anna",)
    assert hash(m) == hash(Minutes.from_dict(m.to_dict()))


@pytest.mark.parametrize(
    ("version", "message"),
    [(2, "unsupported minutes JSON version 2"), ("1", "unsupported minutes JSON version '1'"), (None, "version")],
)
def test_from_dict_rejects_wrong_version(version: object, message: str) -> None:
    d = make_minutes().to_dict()
    d["version"] = version
    with pytest.raises(ValueError, match=message):
        Minutes.from_dict(d)


def test_from_dict_rejects_missing_version() -> None:
    d = make_minutes().to_dict()
    del d["version"]
    with pytest.raises(ValueError, match="no 'version' field"):
        Minutes.from_dict(d)


@pytest.mark.parametrize("key", ["source", "duration", "model", "segments"])
def test_from_dict_names_a_missing_top_level_key(key: str) -> None:
    d = make_minutes().to_dict()
    del d[key]
    with pytest.raises(ValueError, match=f"missing key '{key}'"):
        Minutes.from_dict(d)


def test_from_dict_names_where_a_nested_key_is_missing() -> None:
    d = make_minutes().to_dict()
    del d["segments"][1]["words"][0]["confidence"]
    with pytest.raises(ValueError, match=r"segments\[1\]: words\[0\]: missing key 'confidence'"):
        Minutes.from_dict(d)


def test_from_dict_rejects_non_objects_and_bad_numbers() -> None:
    with pytest.raises(ValueError, match="must be an object"):
        Minutes.from_dict([])  # type: ignore[arg-type]
    d = make_minutes().to_dict()
    d["segments"][0]["start"] = "soon"
    with pytest.raises(ValueError, match=r"segments\[0\]"):
        Minutes.from_dict(d)


def test_optional_keys_default_when_absent() -> None:
    d = {"version": 1, "source": "a.wav", "duration": 1, "model": "m", "segments": [{"start": 0, "end": 1, "text": "x"}]}
    m = Minutes.from_dict(d)
    assert m == Minutes("a.wav", 1.0, "m", (Segment(0.0, 1.0, "x"),))
    assert isinstance(m.duration, float) and m.segments[0].speaker is None and m.segments[0].words == ()


def test_notes_participants_round_trip_and_stay_out_of_the_json_when_empty() -> None:
    from dataclasses import replace

    from minutes.model import Note

    plain = make_minutes()
    assert not {"participants", "decisions", "actions", "notes"} & set(plain.to_dict())
    m = replace(plain, participants=("Anna Kowalski", "Ben"), decisions=[Note(4.0, "Ship on Friday")],
                actions=[Note(5.5, "Send the report", owner="Anna")], notes=[Note(60.0, "Coffee ran out")])
    d = json.loads(json.dumps(m.to_dict()))
    assert d["version"] == 1
    assert d["actions"] == [{"time": 5.5, "text": "Send the report", "owner": "Anna"}]
    assert d["decisions"] == [{"time": 4.0, "text": "Ship on Friday"}]
    assert Minutes.from_dict(d) == m and isinstance(m.notes, tuple)


def test_from_dict_names_a_bad_note() -> None:
    d = make_minutes().to_dict()
    d["actions"] = [{"text": "no time"}]
    with pytest.raises(ValueError, match=r"actions\[0\].*'time'"):
        Minutes.from_dict(d)
