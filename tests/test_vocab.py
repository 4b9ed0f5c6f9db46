"""The one text normalizer and the character vocabulary; metrics."""
from __future__ import annotations

import pytest

from lm.metrics import edit_distance, error_rates
from lm.vocab import CharVocab, normalize


@pytest.mark.parametrize("raw, expected", [
    ("Printing, in the only sense with which we are at present concerned,",
     "printing in the only sense with which we are at present concerned"),
    ("ZERO THREE FIVE ONE", "zero three five one"),
    ("Mr. Dashwood's disappointment was, at first, severe;", "mr dashwood's disappointment was at first severe"),
    ('"Oh! yes.', "oh yes"),
    ("'certain' boys' ill-disposed", "certain boys ill disposed"),
    ("don\u2019t  stop", "don't stop"),
    ("by 25 to 30", "by 25 to 30"),
])
def test_normalize(raw, expected):
    assert normalize(raw) == expected


def test_vocab_round_trip_and_clean():
    vocab = CharVocab()
    assert len(vocab) == 29 and vocab.blank == 0
    ids = vocab.encode("it's a test")
    assert 0 not in ids and vocab.decode(ids) == "it's a test"
    assert vocab.clean("Café at 5 o'clock!") == "cafe at o'clock"


def test_error_rates():
    assert edit_distance("abc", "abd") == 1
    wer, cer = error_rates(["The cat sat.", "hello"], ["the cat sat", "yellow"])
    assert wer == pytest.approx(1 / 4)
    assert cer == pytest.approx(2 / (len("the cat sat") + 5))
