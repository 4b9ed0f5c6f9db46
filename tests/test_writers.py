"""Writers: each format is parsed back or checked field by field."""
from __future__ import annotations

import io
from datetime import timedelta

import pytest
import srt
import webvtt

from minutes.model import Minutes, Segment, Word
from minutes.writers import DEFAULT_FORMATS, WRITERS, format_timestamp, write_ctm, write_markdown, write_rttm
from minutes.writers import write_srt, write_stm, write_txt, write_vtt


def make_minutes(**changes: object) -> Minutes:
    fields: dict[str, object] = dict(
        source="/recordings/team sync.wav",
        duration=3725.5,
        model="bilstm-ctc-small",
        date="2024-05-01",
        speakers=("Anna", "Ben"),
        segments=(
            Segment(1.25, 3.5, "Hello everyone.", (Word("Hello", 1.25, 1.7, 0.934), Word("everyone.", 1.8, 3.5, 0.8)), "Anna"),
            Segment(4.0, 6.0, "Thanks, Anna.", (Word("Thanks,", 4.0, 4.6, 0.9), Word("Anna.", 4.7, 6.0, 0.75)), "Ben"),
            Segment(3600.0, 3725.5, "Bye.", (Word("Bye.", 3725.0, 3725.5, 0.5),)),
        ),
    )
    fields.update(changes)
    return Minutes(**fields)  # type: ignore[arg-type]


def render(writer, minutes: Minutes) -> str:  # type: ignore[no-untyped-def]
    buf = io.StringIO()
    assert writer(minutes, buf) is None
    return buf.getvalue()


@pytest.mark.parametrize(
    ("seconds", "kwargs", "expected"),
    [
        (0, {}, "00:00.000"),
        (0, {"always_include_hours": True}, "00:00:00.000"),
        (59.9995, {}, "01:00.000"),
        (59.9994, {}, "00:59.999"),
        (3725.5, {}, "01:02:05.500"),
        (3725.5, {"always_include_hours": True, "decimal_marker": ","}, "01:02:05,500"),
        (1.25, {"decimal_marker": ","}, "00:01,250"),
        (36000.001, {}, "10:00:00.001"),
    ],
)
def test_format_timestamp(seconds: float, kwargs: dict, expected: str) -> None:
    assert format_timestamp(seconds, **kwargs) == expected


@pytest.mark.parametrize("bad", [-0.001, float("nan"), float("inf")])
def test_format_timestamp_rejects_bad_times(bad: float) -> None:
    with pytest.raises(ValueError, match="non-negative"):
        format_timestamp(bad)


def test_registry_covers_every_format() -> None:
    assert set(WRITERS) == {"md", "srt", "vtt", "json", "txt", "rttm", "ctm", "stm"}
    assert DEFAULT_FORMATS == ("md",) and all(f in WRITERS for f in DEFAULT_FORMATS)


def test_srt_parses_back() -> None:
    cues = list(srt.parse(render(write_srt, make_minutes())))
    assert [c.index for c in cues] == [1, 2, 3]
    assert [c.start for c in cues] == [timedelta(seconds=1.25), timedelta(seconds=4), timedelta(hours=1)]
    assert [c.end for c in cues] == [timedelta(seconds=3.5), timedelta(seconds=6), timedelta(seconds=3725.5)]
    assert [c.content for c in cues] == ["Anna: Hello everyone.", "Ben: Thanks, Anna.", "Bye."]


def test_srt_exact_text() -> None:
    text = render(write_srt, make_minutes())
    assert text.startswith("1\n00:00:01,250 --> 00:00:03,500\nAnna: Hello everyone.\n\n2\n")
    assert text.endswith("3\n01:00:00,000 --> 01:02:05,500\nBye.\n\n")


def test_vtt_parses_back_with_voices() -> None:
    text = render(write_vtt, make_minutes())
    assert text.startswith("WEBVTT\n\n00:01.250 --> 00:03.500\n<v Anna>Hello everyone.\n\n")
    cues = list(webvtt.from_string(text))
    assert [(c.start, c.end) for c in cues] == [
        ("00:00:01.250", "00:00:03.500"),
        ("00:00:04.000", "00:00:06.000"),
        ("01:00:00.000", "01:02:05.500"),
    ]
    assert [c.voice for c in cues] == ["Anna", "Ben", None]
    assert [c.text for c in cues] == ["Hello everyone.", "Thanks, Anna.", "Bye."]
    assert "\n01:00:00.000 --> 01:02:05.500\nBye.\n" in text


def test_vtt_sanitizes_cue_text() -> None:
    seg = Segment(0.0, 1.0, "a --> b ---> c\n\nd & e <i>", speaker="Anna")
    text = render(write_vtt, make_minutes(segments=(seg,)))
    body = text.split("\n", 3)[3]
    assert "-->" not in body
    assert body == "<v Anna>a -> b -> c d &amp; e &lt;i>\n\n"
    cues = list(webvtt.from_string(text))
    assert len(cues) == 1 and cues[0].voice == "Anna"


def test_subtitles_skip_empty_segments_and_renumber() -> None:
    segs = (Segment(0.0, 1.0, "  "), Segment(1.0, 2.0, "real", speaker="Ben"))
    m = make_minutes(segments=segs)
    assert [(c.index, c.content) for c in srt.parse(render(write_srt, m))] == [(1, "Ben: real")]
    assert [c.text for c in webvtt.from_string(render(write_vtt, m))] == ["real"]


def test_markdown_minutes() -> None:
    text = render(write_markdown, make_minutes())
    lines = text.splitlines()
    assert lines[0] == "# Minutes: team sync"
    for line in [
        "- **Date:** 2024-05-01",
        "- **Duration:** 1:02:06",
        "- **Participants:** Anna, Ben",
        "- **Source:** team sync.wav",
        "- **Model:** bilstm-ctc-small",
        "## Transcript",
        "**[00:00:01] Anna:** Hello everyone.",
        "**[00:00:04] Ben:** Thanks, Anna.",
        "**[01:00:00]** Bye.",
    ]:
        assert line in lines
    assert "**[00:00:04] Ben:** Thanks, Anna.\n\n**[01:00:00]** Bye.\n" in text
    assert text.endswith("Bye.\n") and "\n\n\n" not in text


def test_markdown_names_the_speaker_once_per_turn() -> None:
    segs = (Segment(0.0, 2.0, "Hello.", speaker="Anna"), Segment(3.5, 5.0, "Where was I?", speaker="Anna"),
            Segment(6.0, 7.0, "Here.", speaker="Ben"), Segment(8.0, 9.0, "Thanks.", speaker="Anna"),
            Segment(10.0, 11.0, "(noise)"), Segment(12.0, 13.0, "Anyway.", speaker="Anna"),
            Segment(14.0, 15.0, "Bye.", speaker="Anna"))
    transcript = render(write_markdown, make_minutes(segments=segs)).split("## Transcript\n", 1)[1]
    assert transcript == ("\n**[00:00:00] Anna:** Hello.  \n"  # a hard line break: the turn goes on
                          "**[00:00:03]** Where was I?\n"
                          "\n**[00:00:06] Ben:** Here.\n"
                          "\n**[00:00:08] Anna:** Thanks.\n"
                          "\n**[00:00:10]** (noise)\n"  # no speaker: a paragraph of its own, not Anna's
                          "\n**[00:00:12] Anna:** Anyway.  \n"
                          "**[00:00:14]** Bye.\n")


def test_markdown_turns_parse_as_one_paragraph_each() -> None:
    from markdown_it import MarkdownIt  # a CommonMark parser (textual's dependency)

    segs = (Segment(0.0, 1.0, "one", speaker="Anna"), Segment(2.0, 3.0, "two\\", speaker="Anna"),
            Segment(4.0, 5.0, "", speaker="Anna"), Segment(6.0, 7.0, "three"), Segment(8.0, 9.0, "four"))
    transcript = render(write_markdown, make_minutes(segments=segs)).split("## Transcript\n", 1)[1]
    assert MarkdownIt("commonmark").render(transcript) == (
        "<p><strong>[00:00:00] Anna:</strong> one<br />\n<strong>[00:00:02]</strong> two\\<br />\n"
        "<strong>[00:00:04]</strong></p>\n<p><strong>[00:00:06]</strong> three</p>\n"
        "<p><strong>[00:00:08]</strong> four</p>\n")


def test_markdown_title_date_and_unknown_speakers() -> None:
    segs = (Segment(5.9, 7.0, "hi"),)
    text = render(write_markdown, make_minutes(title="Weekly", date=None, speakers=(), segments=segs, duration=59.4))
    lines = text.splitlines()
    assert lines[0] == "# Weekly"
    assert "- **Date:** unknown" in lines and "- **Participants:** not identified" in lines
    assert "- **Duration:** 0:00:59" in lines
    assert lines[-1] == "**[00:00:05]** hi"


def test_markdown_participants_fall_back_to_segment_speakers() -> None:
    text = render(write_markdown, make_minutes(speakers=()))
    assert "- **Participants:** Anna, Ben" in text.splitlines()


def test_markdown_escapes_formatting_characters() -> None:
    seg = Segment(0.0, 1.0, "use *stars*, `ticks`, snake_case\nand <b>[link](x)", speaker="Al_ice")
    text = render(write_markdown, make_minutes(segments=(seg,)))
    expected = r"**[00:00:00] Al\_ice:** use \*stars\*, \`ticks\`, snake\_case and \<b\>\[link\](x)"
    assert text.splitlines()[-1] == expected


def test_txt_lines() -> None:
    assert render(write_txt, make_minutes()).splitlines() == [
        "[00:00:01] Anna: Hello everyone.",
        "[00:00:04] Ben: Thanks, Anna.",
        "[01:00:00] Bye.",
    ]


def test_rttm_lines() -> None:
    lines = render(write_rttm, make_minutes()).splitlines()
    assert len(lines) == 2  # the segment without a speaker is skipped
    assert all(len(line.split()) == 10 for line in lines)
    assert lines[0] == "SPEAKER team_sync 1 1.250 2.250 <NA> <NA> Anna <NA> <NA>"
    assert lines[1].split()[3:5] == ["4.000", "2.000"] and lines[1].split()[7] == "Ben"


def test_ctm_lines() -> None:
    lines = render(write_ctm, make_minutes()).splitlines()
    assert len(lines) == 5 and all(len(line.split()) == 6 for line in lines)
    assert lines[0] == "team_sync 1 1.250 0.450 Hello 0.93"
    assert lines[-1] == "team_sync 1 3725.000 0.500 Bye. 0.50"


def test_stm_lines() -> None:
    lines = render(write_stm, make_minutes()).splitlines()
    assert lines == [
        "team_sync 1 Anna 1.250 3.500 Hello everyone.",
        "team_sync 1 Ben 4.000 6.000 Thanks, Anna.",
        "team_sync 1 unknown 3600.000 3725.500 Bye.",
    ]


def test_nist_fields_never_contain_spaces() -> None:
    seg = Segment(0.0, 1.0, "x", (Word("new york", 0.0, 1.0, 1.0),), speaker="Anna Lee")
    m = make_minutes(segments=(seg,))
    assert render(write_rttm, m).split()[7] == "Anna_Lee"
    assert render(write_ctm, m).split()[4] == "new_york"
    assert render(write_stm, m).split()[2] == "Anna_Lee"


def test_markdown_decisions_actions_notes_and_named_participants() -> None:
    from minutes.model import Note

    m = make_minutes(participants=("Anna Kowalski", "Ben Okafor"), decisions=(Note(65.2, "Ship on *Friday*"),),
                     actions=(Note(70.0, "Send the report", owner="Anna"), Note(80.0, "Book a room")),
                     notes=(Note(90.0, "Coffee ran out"),))
    text = render(write_markdown, m)
    assert "- **Participants:** Anna Kowalski, Ben Okafor" in text.splitlines()
    expected = ("\n## Decisions\n\n- **[00:01:05]** Ship on \\*Friday\\*\n"
                "\n## Action items\n\n- **[00:01:10]** Send the report (owner: Anna)\n- **[00:01:20]** Book a room\n"
                "\n## Notes\n\n- **[00:01:30]** Coffee ran out\n\n## Transcript\n")
    assert expected in text


def test_markdown_without_notes_has_no_empty_sections() -> None:
    text = render(write_markdown, make_minutes())
    assert "## Decisions" not in text and "## Action items" not in text and "## Notes" not in text
