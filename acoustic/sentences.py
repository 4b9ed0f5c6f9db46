"""Sentences to synthesize: lines of the LM text corpus and generated meeting sentences with names, numbers,
dates and times, all spelled out in the character vocabulary (a-z, apostrophe, space).

Corpus lines are split exactly as `lm.train_lm` splits them (every `heldout_every`-th cleaned line of the files,
in the order given, is held out), so held-out synthetic speech never says a sentence the shipped LM trained on.
Generated sentences are split by a hash of their text.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from lm.train_lm import prepare_lines, read_lines
from lm.vocab import CharVocab

ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen").split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
ORDINALS = ("_ first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth "
            "fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth twentieth").split()
MONTHS = ("january february march april may june july august september october november december").split()
DAYS = ("monday tuesday wednesday thursday friday").split()
FIRST = ("anna omar priya liam sofia chen mateo aisha lukas yuki fatima noah ines kofi elena ravi hannah diego "
         "mei tomasz grace ahmed olga samuel").split()
LAST = ("kowalski nguyen okafor schmidt garcia patel johansson tanaka rossi mensah ivanova oconnor silva haddad "
        "lindqvist murphy kim novak dubois adeyemi").split()
THINGS = [
    "budget", "report", "roadmap", "contract", "slides", "invoice", "proposal", "release notes", "survey results",
    "hiring plan", "design review", "test plan", "quarterly forecast", "customer feedback", "migration plan"]
TEMPLATES = (
    "{name} will send the {thing} by {day}",
    "let's meet again on {day} the {ordinal} of {month} at {time}",
    "the {thing} is due on {month} {ordinal}",
    "we closed {number} tickets last week and {number2} are still open",
    "sales went up by {number} percent in the {quarter} quarter",
    "{name} and {name2} own the action item about the {thing}",
    "the meeting starts at {time} so please join a few minutes early",
    "can you call {name} back on extension {digits}",
    "the {thing} costs about {number} thousand dollars",
    "i think {name} raised a good point about the {thing}",
    "we hired {number} people in {month} {year}",
    "please review the {thing} before {day} at {time}",
    "{name} is out of office until the {ordinal}",
    "the contract runs until {month} {year}",
    "the server handled {number} requests per second during the test",
    "let's take a {number} minute break and come back at {time}",
    "does anyone have questions about the {thing}",
    "{name} from the {team} team will present next",
    "the order number is {digits}",
    "we agreed to move the launch to the {ordinal} of {month}",
)
TEAMS = ("sales design platform finance support data security marketing").split()
QUARTERS = ("first second third fourth").split()


def number_words(n: int) -> str:
    """0 <= n < 1,000,000 in words: 342 -> 'three hundred forty two'."""
    if not 0 <= n < 1_000_000:
        raise ValueError(f"number out of range: {n}")
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else " " + ONES[n % 10])
    if n < 1000:
        return ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + number_words(n % 100))
    return number_words(n // 1000) + " thousand" + ("" if n % 1000 == 0 else " " + number_words(n % 1000))


def ordinal_words(n: int) -> str:
    """1 <= n <= 31 as an ordinal: 23 -> 'twenty third'."""
    if not 1 <= n <= 31:
        raise ValueError(f"ordinal out of range: {n}")
    if n <= 20:
        return ORDINALS[n]
    return "thirtieth" if n == 30 else f"{TENS[n // 10]} {ORDINALS[n % 10]}"


def year_words(year: int) -> str:
    """Years as spoken: 1999 -> 'nineteen ninety nine', 2005 -> 'two thousand five', 2026 -> 'twenty twenty six'."""
    if 2000 <= year < 2010:
        return number_words(year)
    high, low = divmod(year, 100)
    if low == 0:
        return f"{number_words(high)} hundred"
    return f"{number_words(high)} {'oh ' + ONES[low] if low < 10 else number_words(low)}"


def time_words(hour: int, minute: int) -> str:
    """Clock times as spoken: (3, 0) -> "three o'clock", (9, 5) -> 'nine oh five', (2, 30) -> 'half past two'."""
    if minute == 0:
        return f"{number_words(hour)} o'clock"
    if minute == 30:
        return f"half past {number_words(hour)}"
    return f"{number_words(hour)} {'oh ' + ONES[minute] if minute < 10 else number_words(minute)}"


def generated_sentence(rng: np.random.Generator) -> str:
    """One meeting sentence from a template, every number spelled out."""
    def pick(seq):
        return seq[int(rng.integers(len(seq)))]

    fields = {  # drawn in this order: changing it changes every generated set
        "name": f"{pick(FIRST)} {pick(LAST)}" if rng.random() < 0.5 else pick(FIRST), "name2": pick(FIRST),
        "thing": pick(THINGS), "day": pick(DAYS), "month": pick(MONTHS),
        "ordinal": ordinal_words(int(rng.integers(1, 32))),
        "time": time_words(int(rng.integers(1, 13)), int(pick((0, 0, 15, 30, 45, int(rng.integers(1, 60)))))),
        "number": number_words(int(pick((rng.integers(2, 20), rng.integers(20, 100), rng.integers(100, 1000))))),
        "number2": number_words(int(rng.integers(2, 60))), "year": year_words(int(rng.integers(1995, 2031))),
        "digits": " ".join(ONES[int(d)] for d in rng.integers(0, 10, int(rng.integers(3, 7)))),
        "quarter": pick(QUARTERS), "team": pick(TEAMS),
    }
    return pick(TEMPLATES).format(**fields)


def is_heldout_text(text: str, every: int = 10) -> bool:
    """The split of a generated sentence: about one in `every` is held out, fixed by its text."""
    return int(hashlib.sha1(text.encode()).hexdigest(), 16) % every == every - 1


def corpus_split(paths: list[Path], every: int = 100, min_words: int = 3,
                 max_words: int = 20) -> tuple[list[str], list[str]]:
    """(train, held-out) cleaned corpus lines of min_words..max_words words, split as lm.train_lm splits; a
    line that is also held out elsewhere in the corpus (short lines repeat: "what about you") leaves the
    training side, so no held-out sentence is ever trained on."""
    lines: list[str] = []
    for path in paths:
        lines.extend(prepare_lines(read_lines(path), CharVocab()))
    keep = [(i, line) for i, line in enumerate(lines) if min_words <= line.count(" ") + 1 <= max_words]
    heldout = [line for i, line in keep if i % every == every - 1]
    held = set(heldout)
    return [line for i, line in keep if i % every != every - 1 and line not in held], heldout


def choose_sentences(corpus: list[str], count: int, generated_share: float, split: str,
                     rng: np.random.Generator) -> list[str]:
    """`count` distinct sentences for a split: a `generated_share` of meeting sentences, the rest corpus lines."""
    want_generated = round(count * generated_share) if corpus else count
    generated: dict[str, None] = {}
    for _ in range(50 * want_generated):
        if len(generated) >= want_generated:
            break
        text = CharVocab().clean(generated_sentence(rng))
        if is_heldout_text(text) == (split == "heldout"):
            generated[text] = None
    picked = list(generated)
    if corpus:
        order = rng.permutation(len(corpus))
        picked += list(dict.fromkeys(corpus[i] for i in order[: 2 * count]))[: count - len(picked)]
    order = rng.permutation(len(picked))
    return [picked[i] for i in order]
