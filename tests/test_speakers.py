"""Speaker attribution (words to diarization turns), segments cut at speaker changes, and speaker names."""
from __future__ import annotations

from pathlib import Path

import pytest

from minutes.diarization import Turn
from minutes.model import Minutes, Segment, Word
from minutes.speakers import assign_speakers, attribute, name_speakers, parse_names, read_names_file

A, B, C = "SPEAKER_00", "SPEAKER_01", "SPEAKER_02"


def words(*spans: tuple[float, float]) -> list[Word]:
    return [Word(f"w{i}", start, end, 0.9) for i, (start, end) in enumerate(spans)]


def minutes_of(*segments: Segment) -> Minutes:
    return Minutes(source="meet.wav", duration=60.0, model="m", segments=segments)


def segment(ws: list[Word]) -> Segment:
    return Segment(ws[0].start, ws[-1].end, " ".join(w.word for w in ws), tuple(ws))


# ------------------------------------------------------------------------------------------- assignment


def test_each_word_gets_the_turn_it_falls_in() -> None:
    turns = [Turn(0.0, 2.0, A), Turn(2.5, 5.0, B), Turn(5.2, 7.0, A)]
    ws = words((0.1, 0.5), (1.0, 1.8), (2.6, 3.0), (4.0, 4.9), (5.5, 6.0))
    assert assign_speakers(ws, turns) == [A, A, B, B, A]


def test_word_spanning_a_change_goes_to_the_larger_share() -> None:
    turns = [Turn(0.0, 2.0, A), Turn(2.0, 4.0, B)]
    assert assign_speakers(words((1.5, 2.2), (1.9, 2.6)), turns) == [A, B]


def test_words_in_gaps_go_to_the_nearest_turn() -> None:
    turns = [Turn(1.0, 2.0, A), Turn(4.0, 5.0, B)]
    ws = words((0.2, 0.5), (2.2, 2.5), (3.4, 3.8), (6.0, 6.5))  # before all, near A, near B, after all
    assert assign_speakers(ws, turns) == [A, A, B, B]


def test_nearest_before_is_the_turn_that_ends_last() -> None:
    # a long turn that started earlier ends nearer to the word than a short later one
    turns = [Turn(0.0, 9.0, A), Turn(1.0, 2.0, B), Turn(20.0, 21.0, B)]
    assert assign_speakers(words((9.5, 9.8)), turns) == [A]


def test_overlapped_speech_keeps_the_current_speaker() -> None:
    # B's backchannel lies wholly inside A's turn: A's words there stay A's (ties go to the previous speaker)
    turns = [Turn(0.0, 6.0, A), Turn(2.0, 3.0, B)]
    ws = words((1.0, 1.5), (2.2, 2.6), (3.5, 4.0))
    assert assign_speakers(ws, turns) == [A, A, A]


def test_quick_turn_taking_with_overlap() -> None:
    # A's turn overlaps B's first half-second; the word in the overlap stays A's, B's next word is B's
    turns = [Turn(0.0, 3.5, A), Turn(3.0, 6.0, B)]
    ws = words((2.0, 2.8), (3.1, 3.4), (3.6, 4.0))
    assert assign_speakers(ws, turns) == [A, A, B]


def test_tie_without_previous_speaker_goes_to_the_longer_turn() -> None:
    turns = [Turn(0.0, 1.0, B), Turn(0.0, 8.0, A)]
    assert assign_speakers(words((0.2, 0.6)), turns) == [A]


def test_one_speaker_with_several_turns_adds_up() -> None:
    # the word overlaps A twice (0.3 s in all) and B once (0.25 s)
    turns = [Turn(0.0, 1.15, A), Turn(1.15, 1.4, B), Turn(1.4, 3.0, A)]
    assert assign_speakers(words((1.0, 1.55)), turns) == [A]


def test_zero_length_word_inside_a_turn() -> None:
    turns = [Turn(0.0, 1.0, A), Turn(1.0, 2.0, B)]
    assert assign_speakers(words((1.5, 1.5)), turns) == [B]


def test_no_turns_means_no_speakers() -> None:
    assert assign_speakers(words((0.0, 1.0)), []) == [None]


def test_unsorted_turns_are_handled() -> None:
    turns = [Turn(4.0, 5.0, B), Turn(0.0, 2.0, A)]
    assert assign_speakers(words((0.5, 1.0), (4.2, 4.5)), turns) == [A, B]


# ------------------------------------------------------------------------------------------ attribute


def test_segments_break_at_speaker_changes() -> None:
    first = words((0.0, 0.4), (0.5, 0.9), (1.0, 1.4), (1.5, 1.9))
    second = [Word("later", 5.0, 5.5, 0.8)]
    m = minutes_of(segment(first), segment(second))
    turns = [Turn(0.0, 0.95, B), Turn(0.95, 3.0, A), Turn(4.5, 6.0, B)]
    out = attribute(m, turns)
    assert [(s.speaker, s.text, s.start, s.end) for s in out.segments] == [
        (B, "w0 w1", 0.0, 0.9), (A, "w2 w3", 1.0, 1.9), (B, "later", 5.0, 5.5)]
    assert out.speakers == (B, A)  # order of first appearance
    assert [w for s in out.segments for w in s.words] == first + second
    assert out.source == m.source and out.duration == m.duration


def test_segment_without_words_takes_the_overlapping_speaker() -> None:
    m = minutes_of(Segment(1.0, 3.0, "imported text"))
    out = attribute(m, [Turn(0.0, 1.5, A), Turn(1.5, 4.0, B)])
    assert out.segments[0].speaker == B and out.speakers == (B,)


def test_attribute_without_turns_leaves_speakers_unknown() -> None:
    m = minutes_of(segment(words((0.0, 1.0))))
    out = attribute(m, [])
    assert out.segments == m.segments and out.speakers == ()


def test_speaker_never_seen_in_words_is_not_a_participant() -> None:
    m = minutes_of(segment(words((0.0, 1.0))))
    assert attribute(m, [Turn(0.0, 1.0, A), Turn(10.0, 11.0, B)]).speakers == (A,)


# --------------------------------------------------------------------------------------------- names


def test_names_list_in_order() -> None:
    assert parse_names(" Anna , Bartek Nowak") == ("Anna", "Bartek Nowak")


def test_inline_mapping() -> None:
    assert parse_names("SPEAKER_01=Bartek,SPEAKER_00=Anna") == {B: "Bartek", A: "Anna"}


@pytest.mark.parametrize(("value", "message"), [
    ("Anna,,Bartek", "empty name"),
    ("", "empty name"),
    ("Anna,SPEAKER_01=Bartek", "mix of plain names"),
    ("Anna,Anna", "given twice"),
    ("SPEAKER_00=", "expected LABEL=Name"),
    ("SPEAKER_00=Anna,SPEAKER_00=Ben", "named twice"),
    ("missing/names.txt", "names file not found"),
])
def test_bad_names_are_one_line_errors(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as error:
        parse_names(value)
    assert "\n" not in str(error.value)


def test_mapping_file_with_comments(tmp_path: Path) -> None:
    path = tmp_path / "map.txt"
    path.write_text("# who is who\nSPEAKER_00 = Anna Kowalska  # chair\n\nSPEAKER_01=Bartek\n", encoding="utf-8")
    assert parse_names(str(path)) == {A: "Anna Kowalska", B: "Bartek"}


@pytest.mark.parametrize(("text", "message"), [
    ("SPEAKER_00=Anna\nBartek\n", "line 2: expected LABEL=Name"),
    ("=Anna\n", "line 1: expected LABEL=Name"),
    ("# nothing\n", "no SPEAKER_00=Name lines"),
    ("SPEAKER_00=Anna\nSPEAKER_00=Ben\n", "line 2: SPEAKER_00 is named twice"),
])
def test_malformed_mapping_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "map.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        read_names_file(path)


def test_unreadable_mapping_file(tmp_path: Path) -> None:
    path = tmp_path / "map.txt"
    path.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ValueError, match="cannot read names file"):
        parse_names(str(path))


def named_minutes() -> Minutes:
    segs = (Segment(0.0, 1.0, "a", speaker=B), Segment(1.0, 2.0, "b", speaker=A),
            Segment(2.0, 3.0, "c", speaker=C), Segment(3.0, 4.0, "d"))
    return Minutes(source="meet.wav", duration=4.0, model="m", segments=segs, speakers=(B, A, C))


def test_names_in_order_of_first_appearance() -> None:
    out, warnings = name_speakers(named_minutes(), ("Anna", "Bartek"))
    assert [s.speaker for s in out.segments] == ["Anna", "Bartek", C, None]
    assert out.speakers == ("Anna", "Bartek", C) and warnings == []


def test_extra_names_warn() -> None:
    out, warnings = name_speakers(named_minutes(), ("Anna", "Bartek", "Cleo", "Dan"))
    assert out.speakers == ("Anna", "Bartek", "Cleo")
    assert warnings == ["more names than speakers (3 found); unused: Dan"]


def test_mapping_renames_merges_and_warns_about_unknown_labels() -> None:
    out, warnings = name_speakers(named_minutes(), {A: "Anna", C: "Anna", "SPEAKER_07": "Zed"})
    assert [s.speaker for s in out.segments] == [B, "Anna", "Anna", None]
    assert out.speakers == (B, "Anna")
    assert len(warnings) == 1 and "no speaker 'SPEAKER_07'" in warnings[0]


def test_names_apply_to_already_named_minutes() -> None:
    first, _ = name_speakers(named_minutes(), ("Anna", "Bartek"))
    again, warnings = name_speakers(first, {"Anna": "Anna Kowalska"})
    assert again.speakers == ("Anna Kowalska", "Bartek", C) and warnings == []


def test_names_without_speakers_warn() -> None:
    m = minutes_of(Segment(0.0, 1.0, "x"))
    out, warnings = name_speakers(m, ("Anna",))
    assert out == m and warnings == ["more names than speakers (0 found); unused: Anna"]
