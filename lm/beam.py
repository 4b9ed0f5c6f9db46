"""CTC prefix beam search with shallow fusion of the character RNN LM, a word bonus and hotword biasing.

Each prefix keeps p_blank / p_nonblank (log space) summed over all alignments that produce it. Ranking:

    score = log(p_blank + p_nonblank) + lm_weight * log P_lm(prefix) + word_bonus * words + hotword bonus

The LM scores every emitted character (space included) and, at the end, the sentence end </s> (index 0).
LM states are cached per prefix; the prefixes that enter the beam at a frame are advanced by one batched
`lm.step` call. An LM is any object with `step(tokens (B,), state) -> (log_probs (B, V), state)` whose
state (None at the start) is a tuple of tensors with the batch on dim 1, like lm.rnnlm.CharRNNLM.
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Any

import torch

from lm.vocab import CharVocab

NEG_INF = float("-inf")


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ValueError(f"{name} must be in the range {low}..{high}; got {value}")


@dataclass(frozen=True)
class BeamOptions:
    beam: int = 16  # prefixes kept after each frame, 1..256
    lm_weight: float = 0.5  # LM log-prob scale, 0..5 (0 = no LM even when one is given)
    word_bonus: float = 1.0  # added per word, -10..10: offsets the LM's cost of each extra word
    prune: float = math.log(1e-4)  # characters whose acoustic log-prob is below this are not tried, <= 0
    blank_skip: float = 0.999  # frames with P(blank) above this only move beam mass to blank, in (0, 1]

    def __post_init__(self) -> None:
        if isinstance(self.beam, bool) or not isinstance(self.beam, int):
            raise ValueError(f"beam must be an integer in the range 1..256; got {self.beam!r}")
        _check_range("beam", self.beam, 1, 256)
        _check_range("lm_weight", self.lm_weight, 0.0, 5.0)
        _check_range("word_bonus", self.word_bonus, -10.0, 10.0)
        _check_range("prune", self.prune, NEG_INF, 0.0)
        if not 0.0 < self.blank_skip <= 1.0:
            raise ValueError(f"blank_skip must be in the range (0, 1]; got {self.blank_skip}")


@dataclass(frozen=True)
class Hypothesis:
    text: str  # spaces collapsed and stripped
    score: float  # acoustic_score + lm_weight * lm_score + bonus
    acoustic_score: float  # log of the CTC probability of the labelling (all alignments)
    lm_score: float  # LM log-prob of the text and </s>, unweighted (0 without an LM)
    bonus: float = 0.0  # word bonuses and hotword bonuses


@dataclass(frozen=True)
class _Info:
    """What a prefix's score needs beyond the acoustics; a function of the prefix only."""

    lm: float  # sum of log P_lm(char | history) so far
    words: int  # completed words (a space after a non-empty word)
    hot: float  # bonuses of completed hotwords
    word: str  # the current partial word


def _lse(a: float, b: float) -> float:
    """log(exp(a) + exp(b)) for python floats."""
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    return max(a, b) + math.log1p(math.exp(-abs(a - b)))


def hotword_tables(hotwords: dict[str, float] | None, vocab: CharVocab) -> tuple[dict[str, float], dict[str, float]]:
    """(cleaned word -> bonus, partial word -> partial bonus): a partial match of k of n letters earns k/n.

    Raises ValueError for a hotword with digits, several words or nothing the vocabulary can spell."""
    full: dict[str, float] = {}
    for word, bonus in (hotwords or {}).items():
        if any(c.isdigit() for c in word):
            raise ValueError(f"hotwords must be spelled in letters (digits are never recognized); got {word!r}")
        cleaned = vocab.clean(word)
        if not cleaned or " " in cleaned:
            raise ValueError(f"hotwords must be single words of the vocabulary; got {word!r}")
        if not math.isfinite(bonus) or abs(bonus) > 100:
            raise ValueError(f"hotword bonus must be finite, in the range -100..100; got {bonus} for {word!r}")
        full[cleaned] = float(bonus)
    partial: dict[str, float] = {}
    for word, bonus in full.items():
        for k in range(1, len(word) + 1):
            share = bonus * k / len(word)
            partial[word[:k]] = max(partial.get(word[:k], NEG_INF), share)
    return full, partial


class PrefixSearch:
    """One utterance's search: beams (prefix -> [p_blank, p_nonblank]), per-prefix info and LM cache.

    `advance` takes one frame; `best` is the current leader (a partial result); `finish` ends the utterance.
    lm.stream_beam drives it chunk by chunk, beam_search over a whole utterance.
    """

    def __init__(self, vocab: CharVocab, lm: Any, options: BeamOptions, hotwords: dict[str, float] | None) -> None:
        self.vocab, self.options, self.blank = vocab, options, vocab.blank
        self.lm = lm if lm is not None and options.lm_weight > 0 else None
        self.ids = {s: i for i, s in enumerate(vocab.symbols)}
        self.hot, self.partial = hotword_tables(hotwords, vocab)
        self.info: dict[str, _Info] = {"": _Info(0.0, 0, 0.0, "")}
        self.cache: dict[str, tuple[tuple[torch.Tensor, ...], list[float]]] = {}
        if self.lm is not None:
            log_probs, state = self.lm.step(torch.tensor([0]), None)  # <s>
            self.cache[""] = (state, log_probs[0].tolist())

    def score(self, prefix: str, pb: float, pnb: float) -> float:
        info = self.info[prefix]
        return (_lse(pb, pnb) + self.options.lm_weight * info.lm + self.options.word_bonus * info.words
                + info.hot + self.partial.get(info.word, 0.0))

    def child_info(self, prefix: str, char: str) -> _Info:
        """Info of prefix + char from the parent's (the parent's LM cache must be present)."""
        parent = self.info[prefix]
        lm = parent.lm + (self.cache[prefix][1][self.ids[char]] if self.lm is not None else 0.0)
        if char != " ":
            return _Info(lm, parent.words, parent.hot, parent.word + char)
        if not parent.word:  # leading or repeated space: no word completed
            return _Info(lm, parent.words, parent.hot, "")
        return _Info(lm, parent.words + 1, parent.hot + self.hot.get(parent.word, 0.0), "")

    def blank_frame(self, beams: dict[str, list[float]], row: list[float]) -> dict[str, list[float]]:
        """A near-certain blank frame: no new prefixes, only blank and repeated-last-character mass."""
        out = {}
        for prefix, (pb, pnb) in beams.items():
            repeat = pnb + row[self.ids[prefix[-1]]] if prefix else NEG_INF
            out[prefix] = [_lse(pb, pnb) + row[self.blank], repeat]
        return out

    def extend(self, beams: dict[str, list[float]], row: list[float]) -> dict[str, list[float]]:
        """One frame of CTC prefix search over the characters above the prune threshold."""
        chars = [(self.vocab.symbols[c], lp) for c, lp in enumerate(row) if c != self.blank and lp >= self.options.prune]
        out: dict[str, list[float]] = {}
        for prefix, (pb, pnb) in beams.items():
            total = _lse(pb, pnb)
            entry = out.setdefault(prefix, [NEG_INF, NEG_INF])
            entry[0] = _lse(entry[0], total + row[self.blank])
            last = prefix[-1] if prefix else None
            if last is not None:  # the last character repeated without a blank: same prefix
                entry[1] = _lse(entry[1], pnb + row[self.ids[last]])
            for char, lp in chars:
                # a repeated character needs a blank in between; otherwise any path of the prefix extends
                value = (pb if char == last else total) + lp
                if value == NEG_INF:
                    continue
                new = prefix + char
                if new not in self.info:
                    self.info[new] = self.child_info(prefix, char)
                child = out.setdefault(new, [NEG_INF, NEG_INF])
                child[1] = _lse(child[1], value)
        return out

    def prune(self, beams: dict[str, list[float]]) -> dict[str, list[float]]:
        """Keep the best `beam` prefixes; forget the info and LM states of the others."""
        kept = self.select(beams)
        advance_lm([(self, kept)])
        return kept

    def select(self, beams: dict[str, list[float]]) -> dict[str, list[float]]:
        """The best `beam` prefixes, without their LM step (see advance_lm); forgets the others' info."""
        kept = dict(heapq.nlargest(self.options.beam, beams.items(), key=lambda kv: self.score(kv[0], *kv[1])))
        self.info = {p: self.info[p] for p in kept}
        return kept

    def start(self) -> dict[str, list[float]]:
        """The beams before the first frame: only the empty prefix."""
        return {"": [0.0, NEG_INF]}

    def advance(self, beams: dict[str, list[float]], row: list[float]) -> dict[str, list[float]]:
        """One frame of log-probs (V,) -> the new (pruned) beams."""
        if self.skips(row):
            return self.blank_frame(beams, row)
        return self.prune(self.extend(beams, row))

    def skips(self, row: list[float]) -> bool:
        """True for a near-certain blank frame (blank_frame, no new prefixes, no LM step)."""
        return row[self.blank] > math.log(self.options.blank_skip)

    def best(self, beams: dict[str, list[float]]) -> str:
        """Text of the best-scoring prefix now (spaces collapsed), without the end-of-sentence terms."""
        return " ".join(max(beams, key=lambda p: self.score(p, *beams[p])).split())

    def finish(self, beams: dict[str, list[float]]) -> list[Hypothesis]:
        """Close the last word, add </s>, rescore, merge prefixes that differ only in spaces."""
        best: dict[str, Hypothesis] = {}
        for prefix, (pb, pnb) in beams.items():
            info, acoustic = self.info[prefix], _lse(pb, pnb)
            if acoustic == NEG_INF:
                continue
            words, hot = info.words + bool(info.word), info.hot + self.hot.get(info.word, 0.0)
            lm = info.lm + (self.cache[prefix][1][0] if self.lm is not None else 0.0)
            bonus = self.options.word_bonus * words + hot
            text = " ".join(prefix.split())
            hyp = Hypothesis(text, acoustic + self.options.lm_weight * lm + bonus, acoustic, lm, bonus)
            if text not in best or hyp.score > best[text].score:
                best[text] = hyp
        return sorted(best.values(), key=lambda h: h.score, reverse=True)


@torch.no_grad()
def beam_search(log_probs: torch.Tensor, vocab: CharVocab, lm: Any = None, options: BeamOptions | None = None,
                hotwords: dict[str, float] | None = None) -> list[Hypothesis]:
    """Decode one utterance's CTC log-probs (T, V) -> hypotheses, best first (at most options.beam).

    `lm`: a CharRNNLM in eval mode (or anything with its `step`); `hotwords`: word -> log-domain bonus
    added when the word is completed, earned letter by letter while a partial word matches it.
    """
    options = options or BeamOptions()
    if log_probs.dim() != 2 or log_probs.shape[1] != len(vocab):
        raise ValueError(f"log_probs must be (T, {len(vocab)}); got {tuple(log_probs.shape)}")
    check_lm(lm)
    search = PrefixSearch(vocab, lm, options, hotwords)
    beams = search.start()
    for row in log_probs.float().tolist():
        beams = search.advance(beams, row)
    return search.finish(beams)


def advance_lm(searches: list[tuple[PrefixSearch, dict[str, list[float]]]]) -> None:
    """One batched LM step for the kept prefixes that have no LM state yet (their parents all do), over
    several searches that share one LM (e.g. one per stream); each search then keeps only its beams' states."""
    jobs = [(search, beams, [p for p in beams if p not in search.cache]) for search, beams in searches
            if search.lm is not None]
    rows = [(search, prefix) for search, _, missing in jobs for prefix in missing]
    if rows:
        parents = [search.cache[prefix[:-1]][0] for search, prefix in rows]
        # per-prefix states (layers, 1, H) -> one batch (layers, len(rows), H)
        state = tuple(torch.cat([s[k] for s in parents], dim=1) for k in range(len(parents[0])))
        tokens = torch.tensor([search.ids[prefix[-1]] for search, prefix in rows])
        log_probs, state = jobs[0][0].lm.step(tokens, state)
        scores = log_probs.tolist()
        for j, (search, prefix) in enumerate(rows):
            search.cache[prefix] = (tuple(s[:, j:j + 1] for s in state), scores[j])
    for search, beams, _ in jobs:
        search.cache = {p: search.cache[p] for p in beams}


def check_lm(lm: Any) -> None:
    """Raise ValueError for an LM in training mode (dropout would make the search random)."""
    if isinstance(lm, torch.nn.Module) and lm.training:
        raise ValueError("the LM is in training mode (dropout on): call lm.eval() first")
