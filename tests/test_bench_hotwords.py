"""bench/hotwords.py: the tuning and reporting parts share no name and no sentence; the bonus choice rule."""
from __future__ import annotations

from bench.hotwords import PARTS, choose_bonus, name_counts
from lm.vocab import normalize


def test_tune_and_report_parts_are_disjoint_and_every_name_is_said():
    tune, report = PARTS["tune"], PARTS["report"]
    assert not set(tune.names) & set(report.names)
    assert not set(tune.sentences) & set(report.sentences)
    for part in (tune, report):
        words = [w for s in part.sentences for w in normalize(s).split()]
        assert all(words.count(name) >= 1 for name in part.names)
        other = report if part is tune else tune
        assert not set(words) & set(other.names)  # no name of the other part is said here
        assert sum(not set(normalize(s).split()) & set(part.names) for s in part.sentences) == 6


def test_name_counts_recall_and_false_alarms():
    part = PARTS["tune"]
    hyps = [normalize(s) for s in part.sentences]
    assert name_counts(part, hyps) == (1.0, 0)
    hyps[0] = hyps[0].replace("nowak", "novak")  # one of 24 occurrences missed
    hyps[-1] += " kafka"  # a name where none was said
    recall, false_alarms = name_counts(part, hyps)
    assert (round(recall * 24), false_alarms) == (23, 1)


def test_choose_bonus_lowest_wer_then_fewest_false_alarms_then_smallest():
    assert choose_bonus([(10, 0.5, 0), (50, 0.4, 0), (75, 0.4, 1), (100, 0.6, 9)]) == 50
    assert choose_bonus([(30, 0.4, 0), (40, 0.4, 0)]) == 30
