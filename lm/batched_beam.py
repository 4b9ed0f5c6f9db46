"""Vectorized CTC prefix beam search with the character RNN LM, for many independent streams at once.

The search of lm.beam.PrefixSearch (same scores, pruning, blank skipping and end of sentence; no hotwords),
with every stream's beams held in tensors on one device so that a frame costs O(1) Python work whatever
the number of streams. Slots 0..capacity-1 each hold one search; each has `beam` (B) beams, kept in
arrays shaped (capacity, B, ...):

    pb, pnb        float64  log P(blank-ended / non-blank-ended alignments) of the prefix; both -inf: dead beam
    lm             float64  sum of the LM log-probs of the prefix's characters (space included)
    words          int64    completed words (a space after a non-empty word)
    length, last   int64    prefix length and last character (the blank index for the empty prefix)
    hash, phash    int64    rolling hash of the prefix and of the prefix without its last character
    tokens         uint8    (capacity, B, max_len) the prefix's characters; max_len grows as needed
    lm_next        float32  (capacity, B, V) the LM's next-character log-probs after the prefix
    lm_state       tuple of (layers, capacity * B, H): the LM state after the prefix (row = slot * B + beam)

A frame builds B * V candidates per slot: column `blank` of beam k is prefix k itself, column c is
prefix k + c. An extension that equals a kept prefix (same parent hash, length and last character) is
merged into it, then the best B candidates are chosen by one topk, and one `lm.step` runs over the beams
that just grew a character. Frames whose P(blank) exceeds blank_skip only move mass (no topk, no LM step).
Prefix identity rests on a 64-bit polynomial hash plus the length: a collision (never seen) would merge
two different prefixes of one slot.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from lm.beam import BeamOptions, check_lm
from lm.vocab import CharVocab

NEG_INF = float("-inf")
HASH_BASE = 1099511628211  # odd 64-bit multiplier (FNV prime); products wrap modulo 2**64
FIELDS = ("pb", "pnb", "lm", "words", "length", "last", "hash", "phash", "tokens", "lm_next")


class BatchedPrefixBeam:
    """N independent CTC prefix searches in slots 0..capacity-1, all state in tensors on `device`.

    `lm` (a CharRNNLM in eval mode, on `device`, or None) is used when options.lm_weight > 0. A slot index
    at or above capacity grows the capacity (new slots start fresh). Pass `slots` as CPU tensors: their
    host copy sizes the arrays without a device sync. `lm_rows="extended"` steps the LM over the beams that
    grew a character only (a device sync per frame for their count); "all" steps every beam of the
    advancing slots and keeps the grown ones (fixed shapes, no sync). Hotwords are not supported. `tokens`
    grows to the most frames any advanced slot has seen since its reset: reset slots at endpoints.
    """

    def __init__(self, vocab: CharVocab, lm: Any, options: BeamOptions, capacity: int,
                 device: str | torch.device = "cpu", lm_rows: str = "extended") -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1; got {capacity}")
        if lm_rows not in ("extended", "all"):
            raise ValueError(f"lm_rows must be 'extended' or 'all'; got {lm_rows!r}")
        check_lm(lm)
        self.vocab, self.options, self.device, self.lm_rows = vocab, options, torch.device(device), lm_rows
        self.lm = lm if lm is not None and options.lm_weight > 0 else None
        self.B, self.V, self.blank, self.space = options.beam, len(vocab), vocab.blank, vocab.symbols.index(" ")
        if any(len(c) != 1 for i, c in enumerate(vocab.symbols) if i != self.blank):
            raise ValueError("the batched search spells single-character symbols only")
        self.codes = np.array([0 if i == self.blank else ord(c) for i, c in enumerate(vocab.symbols)], np.uint32)
        self.log_skip = math.log(options.blank_skip)
        self.chars = torch.arange(self.V, device=self.device)
        if self.lm is not None:
            with torch.no_grad():
                start_lp, start_state = self.lm.step(torch.zeros(1, dtype=torch.long, device=self.device), None)
            self._start = (start_lp[0].float(), start_state)  # the LM after <s>, shared by every fresh search
        self.frames = torch.zeros(0, dtype=torch.long)  # host: frames since reset per slot (bounds the length)
        self.max_len = 16
        self.state: dict[str, torch.Tensor] = self._fresh(0)
        self.lm_state: tuple[torch.Tensor, ...] = self._fresh_lm(0)
        self._grow(capacity)

    @property
    def capacity(self) -> int:
        return len(self.frames)

    def _fresh(self, n: int) -> dict[str, torch.Tensor]:
        """Arrays of n fresh searches: beam 0 is the empty prefix with p_blank = 1, the others are dead."""
        B, dev = self.B, self.device
        pb = torch.full((n, B), NEG_INF, dtype=torch.float64, device=dev)
        pb[:, 0] = 0.0
        zeros = torch.zeros((n, B), dtype=torch.long, device=dev)
        lm_next = (self._start[0].expand(n, B, self.V).clone() if self.lm is not None
                   else torch.zeros((n, B, self.V), device=dev))
        return {"pb": pb, "pnb": torch.full_like(pb, NEG_INF), "lm": torch.zeros_like(pb), "words": zeros,
                "length": zeros.clone(), "last": zeros + self.blank, "hash": zeros.clone(), "phash": zeros - 1,
                "tokens": torch.zeros((n, B, self.max_len), dtype=torch.uint8, device=dev), "lm_next": lm_next}

    def _fresh_lm(self, n: int) -> tuple[torch.Tensor, ...]:
        if self.lm is None:
            return ()
        return tuple(s.expand(-1, n * self.B, -1).contiguous() for s in self._start[1])

    def _grow(self, capacity: int) -> None:
        """Append fresh slots up to `capacity`."""
        extra = capacity - self.capacity
        if extra > 0:
            new = self._fresh(extra)
            self.state = {k: torch.cat([self.state[k], new[k]]) for k in FIELDS}
            self.lm_state = tuple(torch.cat([s, f], dim=1) for s, f in zip(self.lm_state, self._fresh_lm(extra)))
            self.frames = torch.cat([self.frames, torch.zeros(extra, dtype=torch.long)])

    def _prepare(self, slots: torch.Tensor, frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Check slots, grow capacity and max_len for `frames` more frames -> (host slots, device slots)."""
        host = slots.detach().to("cpu", torch.long).reshape(-1)
        if len(host) and int(host.min()) < 0:
            raise ValueError("slot indices must be >= 0")
        if len(host) != len(host.unique()):
            raise ValueError("slot indices must be distinct")
        if len(host):
            top = int(host.max())
            if top >= self.capacity:
                self._grow(max(top + 1, 2 * self.capacity))
            need = int(self.frames[host].max()) + frames
            if need > self.max_len:
                grown = max(need, 2 * self.max_len)
                pad = self.state["tokens"].new_zeros(self.capacity, self.B, grown - self.max_len)
                self.state["tokens"] = torch.cat([self.state["tokens"], pad], dim=2)
                self.max_len = grown
        return host, host.to(self.device)

    @torch.no_grad()
    def reset(self, slots: torch.Tensor) -> None:
        """Start fresh searches (empty prefix, LM after <s>) in these slots."""
        host, dev = self._prepare(slots, 0)
        new = self._fresh(len(host))
        for k in FIELDS:
            self.state[k][dev] = new[k]
        for s, f in zip(self._lm_view(), self._fresh_lm(len(host))):
            s[:, dev] = f.view(s.shape[0], len(host), self.B, -1)
        self.frames[host] = 0

    def _lm_view(self) -> tuple[torch.Tensor, ...]:
        """The LM state as (layers, capacity, B, H) views."""
        return tuple(s.view(s.shape[0], self.capacity, self.B, s.shape[-1]) for s in self.lm_state)

    @torch.no_grad()
    def advance(self, slots: torch.Tensor, log_probs: torch.Tensor) -> None:
        """Search T more frames in these slots: log_probs (N, T, V), row i for slots[i]."""
        if log_probs.dim() != 3 or log_probs.shape[0] != slots.numel() or log_probs.shape[2] != self.V:
            raise ValueError(f"log_probs must be ({slots.numel()}, T, {self.V}); got {tuple(log_probs.shape)}")
        host, dev = self._prepare(slots, log_probs.shape[1])
        st = {k: self.state[k][dev] for k in FIELDS}
        lm_state = tuple(s[:, dev].flatten(1, 2) for s in self._lm_view())
        rows = log_probs.to(self.device, torch.float32).to(torch.float64)
        for t in range(rows.shape[1]):
            lm_state = self._frame(st, lm_state, rows[:, t])
        for k in FIELDS:
            self.state[k][dev] = st[k]
        for s, new in zip(self._lm_view(), lm_state):
            s[:, dev] = new.view(s.shape[0], len(host), self.B, -1)
        self.frames[host] += log_probs.shape[1]

    def _frame(self, st: dict[str, torch.Tensor], lm_state: tuple[torch.Tensor, ...],
               row: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """One frame (N, V) for the N loaded slots: updates `st` in place, returns the new LM state."""
        N, B, V, blank, o = row.shape[0], self.B, self.V, self.blank, self.options
        pb, pnb, length, last = st["pb"], st["pnb"], st["length"], st["last"]
        total = torch.logaddexp(pb, pnb)
        alive, has = total > NEG_INF, length > 0
        skip = row[:, blank] > self.log_skip  # (N,): near-certain blank, no new prefixes
        stay_pb = total + row[:, blank, None]
        stay_pnb = torch.where(has, pnb + row.gather(1, last), NEG_INF)
        # extensions prefix k + c: a repeated character needs a blank in between
        ext = torch.where(self.chars == last[..., None], pb[..., None], total[..., None]) + row[:, None, :]
        allowed = (row >= o.prune) & (self.chars != blank) & ~skip[:, None]
        ext = ext.masked_fill(~allowed[:, None, :], NEG_INF)
        # merge: same[n, j, k] when prefix j == prefix k + last_j
        same = (alive[:, :, None] & alive[:, None, :] & (length[:, :, None] == length[:, None, :] + 1)
                & (st["phash"][:, :, None] == st["hash"][:, None, :]))
        into = ext.gather(2, last[:, None, :].expand(N, B, B)).transpose(1, 2)  # [n, j, k] = ext[n, k, last_j]
        stay_pnb = torch.logaddexp(stay_pnb, into.masked_fill(~same, NEG_INF).logsumexp(2))
        onehot = torch.nn.functional.one_hot(last, V).to(torch.float64)
        ext = ext.masked_fill(torch.bmm(same.transpose(1, 2).to(torch.float64), onehot) > 0, NEG_INF)
        # candidates (N, B, V): column blank = the prefix itself
        is_blank = self.chars == blank
        cand_pb = torch.where(is_blank, stay_pb[..., None], NEG_INF)
        cand_pnb = torch.where(is_blank, stay_pnb[..., None], ext)
        lm_add = st["lm_next"].to(torch.float64).masked_fill(is_blank, 0.0)
        word_add = ((self.chars == self.space) & (has & (last != self.space))[..., None]).long()
        acoustic = torch.where(is_blank, torch.logaddexp(stay_pb, stay_pnb)[..., None], ext)
        score = (acoustic + o.lm_weight * (st["lm"][..., None] + lm_add)
                 + o.word_bonus * (st["words"][..., None] + word_add))
        keep = torch.arange(B, device=row.device) * V + blank
        sel = torch.where(skip[:, None], keep, score.flatten(1).topk(B, dim=1).indices)  # (N, B)
        parent, char = sel // V, sel % V
        grew = char != blank
        st["pb"], st["pnb"] = cand_pb.flatten(1).gather(1, sel), cand_pnb.flatten(1).gather(1, sel)
        st["lm"] = st["lm"].gather(1, parent) + lm_add.flatten(1).gather(1, sel)
        st["words"] = st["words"].gather(1, parent) + word_add.flatten(1).gather(1, sel)
        plen, phash = length.gather(1, parent), st["hash"].gather(1, parent)
        st["length"] = plen + grew.long()
        st["phash"] = torch.where(grew, phash, st["phash"].gather(1, parent))
        st["hash"] = torch.where(grew, phash * HASH_BASE + char + 1, phash)
        st["last"] = torch.where(grew, char, last.gather(1, parent))
        tokens = st["tokens"].gather(1, parent[..., None].expand(-1, -1, st["tokens"].shape[2]))
        st["tokens"] = tokens.scatter_(2, plen[..., None], char[..., None].to(torch.uint8))
        st["lm_next"] = st["lm_next"].gather(1, parent[..., None].expand(-1, -1, V))
        if self.lm is None:
            return lm_state
        rows = (parent + torch.arange(N, device=row.device)[:, None] * B).flatten()
        return self._lm_step(st, tuple(s[:, rows] for s in lm_state), char.flatten(), grew.flatten())

    def _lm_step(self, st: dict[str, torch.Tensor], state: tuple[torch.Tensor, ...], chars: torch.Tensor,
                 grew: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """One lm.step for the beams that grew a character (their parents' states gathered in `state`)."""
        lm_next = st["lm_next"].view(-1, self.V)
        if self.lm_rows == "all":
            log_probs, new = self.lm.step(chars, state)
            lm_next[grew] = log_probs[grew].to(lm_next.dtype)
            return tuple(torch.where(grew[None, :, None], n, s) for n, s in zip(new, state))
        idx = grew.nonzero().squeeze(1)
        if len(idx):
            log_probs, new = self.lm.step(chars[idx], tuple(s[:, idx] for s in state))
            lm_next[idx] = log_probs.to(lm_next.dtype)
            for s, n in zip(state, new):
                s[:, idx] = n
        return state

    def _scores(self, dev: torch.Tensor, end: bool) -> torch.Tensor:
        """(N, B) ranking scores of the slots' beams; `end` closes the last word and adds </s>."""
        st, o = {k: self.state[k][dev] for k in ("pb", "pnb", "lm", "words", "length", "last")}, self.options
        lm, words = st["lm"], st["words"]
        if end:
            lm = lm + self.state["lm_next"][dev][..., 0].to(torch.float64)  # </s>; zeros without an LM
            words = words + ((st["length"] > 0) & (st["last"] != self.space)).long()
        return torch.logaddexp(st["pb"], st["pnb"]) + o.lm_weight * lm + o.word_bonus * words

    def _spell(self, dev: torch.Tensor, scores: torch.Tensor) -> list[str]:
        """Text of each slot's best-scoring beam (spaces collapsed); "" where every beam is dead. The leaders'
        characters become one unicode array row per slot (code points, NUL-padded), not per-character Python."""
        leader = scores.argmax(1)
        n = torch.arange(len(dev), device=self.device)
        lengths = self.state["length"][dev, leader]
        width = max(1, int(lengths.max())) if len(dev) else 1
        tokens = self.state["tokens"][dev, leader, :width].long()
        tokens[torch.arange(width, device=self.device)[None] >= lengths[:, None]] = self.blank  # padding -> NUL
        codes = np.ascontiguousarray(self.codes[tokens.cpu().numpy()])
        texts = codes.view(f"<U{width}").ravel().tolist()  # trailing NULs drop out of numpy strings
        alive = (scores[n, leader] > NEG_INF).tolist()
        return [" ".join(t.split()) if a else "" for t, a in zip(texts, alive)]

    @torch.no_grad()
    def best(self, slots: torch.Tensor) -> list[str]:
        """The current leader's text per slot (without the end-of-sentence terms), spaces collapsed."""
        _, dev = self._prepare(slots, 0)
        return self._spell(dev, self._scores(dev, end=False))

    @torch.no_grad()
    def finish(self, slots: torch.Tensor) -> list[str]:
        """The final best text per slot (last word closed, LM </s> added), like PrefixSearch.finish()[0].text.

        The slots keep their searches; reset() them to start new ones."""
        _, dev = self._prepare(slots, 0)
        return self._spell(dev, self._scores(dev, end=True))
