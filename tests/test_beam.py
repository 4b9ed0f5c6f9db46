"""CTC prefix beam search: exact labelling probabilities, LM fusion, hotwords, options; on hand-built emissions."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from lm.beam import BeamOptions, Hypothesis, beam_search
from lm.decode import greedy_ids
from lm.rnnlm import CharRNNLM, LMDims
from lm.train_lm import compute_loss, to_stream
from lm.vocab import CharVocab

torch.set_num_threads(1)
VOCAB = CharVocab()
NO_BONUS = BeamOptions(word_bonus=0.0, lm_weight=0.0)


def emissions(frames: list[dict[str, float]], rest: float = 1e-7) -> torch.Tensor:
    """Log-probs (T, V) from per-frame {symbol: prob} ("-" is the blank); other symbols share `rest`."""
    index = {("-" if i == 0 else s): i for i, s in enumerate(VOCAB.symbols)}
    probs = torch.full((len(frames), len(VOCAB)), rest)
    for t, frame in enumerate(frames):
        for symbol, p in frame.items():
            probs[t, index[symbol]] = p
    return (probs / probs.sum(-1, keepdim=True)).log()


def spelled(text: str, peak: float = 0.95) -> list[dict[str, float]]:
    """One peaked frame per character, a blank frame between characters."""
    frames = []
    for char in text:
        frames += [{char: peak, "-": 1 - peak}, {"-": 0.99}]
    return frames


def peaked_random(seconds: float, seed: int, fps: int = 33) -> torch.Tensor:
    """Random-but-peaked emissions (T, V): 60% blank frames, runs of letters, logits peak +8 over N(0, 1.5)."""
    g = torch.Generator().manual_seed(seed)
    frames = int(seconds * fps)
    labels = torch.randint(1, len(VOCAB), (frames,), generator=g)
    labels[torch.rand(frames, generator=g) < 0.6] = 0
    logits = 1.5 * torch.randn(frames, len(VOCAB), generator=g)
    logits[torch.arange(frames), labels] += 8.0
    return logits.log_softmax(-1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_peaked_input_gives_the_greedy_text(seed):
    log_probs = peaked_random(3.0, seed)
    greedy = " ".join(VOCAB.decode(greedy_ids(log_probs)).split())
    best = beam_search(log_probs, VOCAB, options=BeamOptions(beam=8, word_bonus=0.0))[0]
    assert best.text == greedy and len(greedy) > 20
    assert best.lm_score == 0.0 and best.score == pytest.approx(best.acoustic_score)


def test_most_probable_labelling_beats_the_best_path():
    frame = {"-": 0.4, "a": 0.35, "b": 0.25}
    log_probs = emissions([frame, frame], rest=0.0)
    assert greedy_ids(log_probs) == []  # best path: blank blank (0.16)
    hyps = beam_search(log_probs, VOCAB, options=NO_BONUS)
    # P("a") = aa + a- + -a = 0.1225 + 0.14 + 0.14; every labelling of 2 frames, summing to 1
    expected = {"a": 0.4025, "b": 0.2625, "": 0.16, "ab": 0.0875, "ba": 0.0875}
    assert hyps[0].text == "a"
    assert {h.text: round(math.exp(h.acoustic_score), 6) for h in hyps} == expected


def test_acoustic_scores_equal_the_sum_over_all_alignments():
    g = torch.Generator().manual_seed(3)
    probs = torch.zeros(5, len(VOCAB))
    probs[:, [0, 3, 4]] = torch.rand(5, 3, generator=g) + 0.1  # blank, a, b active; others impossible
    probs = probs / probs.sum(-1, keepdim=True)
    log_probs = probs.log()
    exact: dict[str, float] = {}
    for path in itertools.product([0, 3, 4], repeat=5):  # every alignment, by brute force
        text = VOCAB.decode(greedy_ids(torch.nn.functional.one_hot(torch.tensor(path), len(VOCAB)).float()))
        exact[text] = exact.get(text, 0.0) + math.prod(float(probs[t, c]) for t, c in enumerate(path))
    hyps = beam_search(log_probs, VOCAB, options=BeamOptions(beam=256, word_bonus=0.0, prune=-1e9))
    assert len(hyps) == len(exact) > 20
    for h in hyps:
        assert math.exp(h.acoustic_score) == pytest.approx(exact[h.text], rel=1e-6)
    best = hyps[0]  # and the same as torch's CTC loss
    nll = torch.nn.functional.ctc_loss(log_probs[:, None], torch.tensor([VOCAB.encode(best.text)]),
                                       torch.tensor([5]), torch.tensor([len(best.text)]), reduction="sum")
    assert best.acoustic_score == pytest.approx(-nll.item(), abs=1e-5)


@pytest.fixture(scope="module")
def tiny_lm() -> CharRNNLM:
    """A small LSTM LM that has learned a few sentences about the cat."""
    torch.manual_seed(0)
    sentences = ["the cat", "the cat sat", "the dog sat", "a cat sat"]
    rows = torch.stack([to_stream(sentences[k:] + sentences[:k], VOCAB).long() for k in range(4)])
    model = CharRNNLM(LMDims(embed=16, hidden=32, dropout=0.0))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        loss, _ = compute_loss(model, rows[:, :-1], rows[:, 1:], None)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def the_cat_or_tha_cat() -> torch.Tensor:
    """'th?' where the vowel frame slightly favours 'a' over 'e', then ' cat'."""
    frames = spelled("th") + [{"a": 0.5, "e": 0.45, "-": 0.05}, {"-": 0.99}] + spelled(" cat")
    return emissions(frames)


def test_lm_changes_the_winner(tiny_lm):
    log_probs = the_cat_or_tha_cat()
    assert beam_search(log_probs, VOCAB)[0].text == "tha cat"
    assert beam_search(log_probs, VOCAB, lm=tiny_lm, options=BeamOptions(lm_weight=0.0))[0].text == "tha cat"
    hyps = beam_search(log_probs, VOCAB, lm=tiny_lm, options=BeamOptions(lm_weight=1.0, word_bonus=0.5))
    assert hyps[0].text == "the cat"
    assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
    for h in hyps[:4]:  # cached, batched LM steps == scoring the whole text at once (</s> included)
        assert h.lm_score == pytest.approx(tiny_lm.score(h.text), abs=1e-4)
        assert h.bonus == 0.5 * len(h.text.split())
        assert h.score == pytest.approx(h.acoustic_score + h.lm_score + h.bonus)


def test_lm_is_stepped_once_per_frame_in_batches(tiny_lm):
    calls: list[int] = []

    class Counting:
        def step(self, tokens, state):
            calls.append(len(tokens))
            return tiny_lm.step(tokens, state)

    log_probs = peaked_random(2.0, seed=4)
    options = BeamOptions(beam=4, lm_weight=0.3)
    hyps = beam_search(log_probs, VOCAB, lm=Counting(), options=options)
    busy = int((log_probs[:, 0] <= math.log(options.blank_skip)).sum())
    assert 1 < len(calls) <= 1 + busy and max(calls) <= 4 and calls[0] == 1  # calls[0]: <s>
    assert hyps == beam_search(log_probs, VOCAB, lm=tiny_lm, options=options)


def test_hotword_changes_the_output_and_partial_bonus_is_retracted():
    log_probs = emissions(spelled("the ") + [{"k": 0.55, "c": 0.44, "-": 0.01}, {"-": 0.99}] + spelled("at"))
    assert beam_search(log_probs, VOCAB)[0].text == "the kat"
    best = beam_search(log_probs, VOCAB, hotwords={"Cat": 1.0})[0]
    assert best.text == "the cat" and best.bonus == pytest.approx(2 * 1.0 + 1.0)
    # beam 1: only the letter-by-letter partial bonus can keep "c" alive at its frame
    assert beam_search(log_probs, VOCAB, options=BeamOptions(beam=1), hotwords={"cat": 1.0})[0].text == "the cat"
    # "cats" and "cab" start like the hotword but are not it: no bonus left in the end
    for spoken in ("cats", "cab"):
        best = beam_search(emissions(spelled(spoken)), VOCAB, hotwords={"cat": 1.5})[0]
        assert best.text == spoken and best.bonus == pytest.approx(1.0)


def test_no_lm_and_edge_cases():
    assert beam_search(emissions([{"-": 1.0}] * 4, rest=0.0), VOCAB)[0] == Hypothesis("", 0.0, 0.0, 0.0, 0.0)
    assert beam_search(torch.zeros(0, len(VOCAB)), VOCAB)[0].text == ""
    hyps = beam_search(emissions(spelled("to be")), VOCAB, options=BeamOptions(beam=3))
    assert hyps[0].text == "to be" and len(hyps) <= 3 and hyps[0].bonus == 2.0


@pytest.mark.parametrize("kwargs, message", [
    ({"beam": 0}, "beam must be in the range 1..256"),
    ({"beam": 257}, "1..256"),
    ({"beam": 2.5}, "beam must be an integer"),
    ({"lm_weight": -0.1}, "lm_weight must be in the range 0.0..5.0"),
    ({"lm_weight": 5.5}, "0.0..5.0"),
    ({"word_bonus": 11.0}, "word_bonus must be in the range -10.0..10.0"),
    ({"prune": 0.5}, "prune must be in the range"),
    ({"blank_skip": 0.0}, "blank_skip must be in the range"),
])
def test_option_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BeamOptions(**kwargs)


def test_bad_inputs_raise_value_error(tiny_lm):
    with pytest.raises(ValueError, match=r"\(T, 29\)"):
        beam_search(torch.zeros(3, 10), VOCAB)
    with pytest.raises(ValueError, match="single words"):
        beam_search(emissions(spelled("a")), VOCAB, hotwords={"new york": 1.0})
    tiny_lm.train()
    try:
        with pytest.raises(ValueError, match="eval"):
            beam_search(emissions(spelled("a")), VOCAB, lm=tiny_lm)
    finally:
        tiny_lm.eval()
