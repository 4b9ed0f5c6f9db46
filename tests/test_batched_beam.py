"""BatchedPrefixBeam: the same texts as lm.beam's per-utterance search, for many streams at once."""
from __future__ import annotations

import pytest
import torch

from lm.batched_beam import BatchedPrefixBeam
from lm.beam import BeamOptions, PrefixSearch, beam_search
from lm.rnnlm import CharRNNLM, LMDims
from lm.vocab import CharVocab

torch.set_num_threads(1)
VOCAB = CharVocab()
STREAMS = 6


@pytest.fixture(scope="module")
def lm() -> CharRNNLM:
    torch.manual_seed(0)
    return CharRNNLM(LMDims(embed=8, hidden=16, dropout=0.0)).eval()


def peaked(frames: int, seed: int, peak: float = 5.0) -> torch.Tensor:
    """Seeded peaky CTC log-probs (T, V): 60% blank frames; logits peak `peak` over N(0, 1.5)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(1, len(VOCAB), (frames,), generator=g)
    labels[torch.rand(frames, generator=g) < 0.6] = 0
    logits = 1.5 * torch.randn(frames, len(VOCAB), generator=g)
    logits[torch.arange(frames), labels] += peak
    return logits.log_softmax(-1)


def batch(frames: int = 50, peak: float = 5.0, seed: int = 0) -> torch.Tensor:
    return torch.stack([peaked(frames, seed + i, peak) for i in range(STREAMS)])


def reference(log_probs: torch.Tensor, lm, options: BeamOptions) -> list[str]:
    return [beam_search(x, VOCAB, lm=lm, options=options)[0].text for x in log_probs]


def options(beam: int, with_lm: bool, **kwargs) -> BeamOptions:
    return BeamOptions(beam=beam, lm_weight=0.8 if with_lm else 0.0, word_bonus=0.5, **kwargs)


@pytest.mark.parametrize("lm_rows", ["extended", "all"])
@pytest.mark.parametrize("with_lm", [False, True])
@pytest.mark.parametrize("beam", [1, 4, 16])
def test_final_texts_equal_the_reference(lm, beam, with_lm, lm_rows):
    x, opts = batch(), options(beam, with_lm)
    search = BatchedPrefixBeam(VOCAB, lm, opts, capacity=2, lm_rows=lm_rows)  # grows to the slots used
    slots = torch.arange(STREAMS)
    search.advance(slots, x)
    expected = reference(x, lm, opts)
    assert search.finish(slots) == expected
    assert search.capacity >= STREAMS and len(set(expected)) == STREAMS and all(len(t) > 5 for t in expected)


def test_streams_are_independent_of_batch_and_chunking(lm):
    x, opts = batch(40), options(8, True)
    together = BatchedPrefixBeam(VOCAB, lm, opts, capacity=16)
    together.advance(torch.arange(STREAMS), x)
    apart = BatchedPrefixBeam(VOCAB, lm, opts, capacity=16)
    slots = torch.tensor([9, 3, 14, 0, 7, 11])[:STREAMS]
    for i, slot in enumerate(slots.tolist()):  # one stream at a time, in chunks of 3 frames
        searches = PrefixSearch(VOCAB, lm, opts, None)
        beams = searches.start()
        for t in range(0, x.shape[1], 3):
            apart.advance(torch.tensor([slot]), x[i:i + 1, t:t + 3])
            for row in x[i, t:t + 3].tolist():
                beams = searches.advance(beams, row)
            assert apart.best(torch.tensor([slot])) == [searches.best(beams)]
    assert apart.finish(slots) == together.finish(torch.arange(STREAMS)) == reference(x, lm, opts)


def test_reset_starts_one_slot_fresh_without_disturbing_others(lm):
    x, opts = batch(60), options(8, True)
    search = BatchedPrefixBeam(VOCAB, lm, opts, capacity=STREAMS)
    slots = torch.arange(STREAMS)
    search.advance(slots, x[:, :25])
    search.reset(torch.tensor([2]))
    search.advance(slots, x[:, 25:])
    expected = reference(x, lm, opts)
    expected[2] = reference(x[2:3, 25:], lm, opts)[0]
    assert search.finish(slots) == expected


def ab_or_a(frames: int) -> torch.Tensor:
    """'a', three frames of P(blank) 0.55, P(b) 0.45, then blanks: 'ab' is likelier, but blank-skip at 0.5
    never tries b."""
    probs = torch.full((frames, len(VOCAB)), 1e-6)
    probs[0, VOCAB.encode("a")] = 1.0
    probs[1:4, 0], probs[1:4, VOCAB.encode("b")] = 0.55, 0.45
    probs[4:, 0] = 1.0
    return (probs / probs.sum(-1, keepdim=True)).log()


@pytest.mark.parametrize("with_lm", [False, True])
def test_blank_skip_frames_match_the_reference(lm, with_lm):
    x = batch(60, peak=4.0)
    skipping = options(8, with_lm, blank_skip=0.5)
    skipped = sum(PrefixSearch(VOCAB, lm, skipping, None).skips(row) for row in x.reshape(-1, len(VOCAB)).tolist())
    assert 0.2 * x.shape[0] * x.shape[1] < skipped < 0.8 * x.shape[0] * x.shape[1]
    search = BatchedPrefixBeam(VOCAB, lm, skipping, capacity=STREAMS)
    search.advance(torch.arange(STREAMS), x)
    assert search.finish(torch.arange(STREAMS)) == reference(x, lm, skipping)


def test_blank_skip_frames_try_no_new_characters():
    x = ab_or_a(10)[None]
    texts = []
    for blank_skip in (0.5, 1.0):  # skipping the b frames, none
        opts = options(4, False, blank_skip=blank_skip)
        search = BatchedPrefixBeam(VOCAB, None, opts, capacity=1)
        search.advance(torch.tensor([0]), x)
        texts += search.finish(torch.tensor([0]))
        assert texts[-1] == reference(x, None, opts)[0]
    assert texts == ["a", "ab"]


def test_empty_input_and_bad_arguments(lm):
    search = BatchedPrefixBeam(VOCAB, lm, options(4, True), capacity=2)
    assert search.finish(torch.tensor([0, 1])) == ["", ""] == search.best(torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="log_probs must be"):
        search.advance(torch.tensor([0]), torch.zeros(1, 3, 5))
    with pytest.raises(ValueError, match="distinct"):
        search.reset(torch.tensor([1, 1]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("lm_rows", ["extended", "all"])
def test_cuda_equals_the_reference(lm, lm_rows):
    x, opts = batch(80, peak=6.0), options(16, True)
    cuda_lm = CharRNNLM(lm.dims).cuda().eval()
    cuda_lm.load_state_dict(lm.state_dict())
    search = BatchedPrefixBeam(VOCAB, cuda_lm, opts, capacity=4, device="cuda", lm_rows=lm_rows)
    slots = torch.arange(STREAMS)
    for t in range(0, x.shape[1], 21):
        search.advance(slots, x[:, t:t + 21].cuda())
    assert search.finish(slots) == reference(x, lm, opts)
