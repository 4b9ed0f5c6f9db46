"""Streaming CTC decoding: chunks of log-probs in, partial and final segment events out.

The search of lm.beam (CTC prefix beam search with the character RNN LM kept per prefix, word bonus,
hotwords), or greedy best path, runs frame by frame over a segment. After every chunk the leading
hypothesis is reported as a partial event. A segment ends at an endpoint: `endpoint_frames` frames in a
row whose blank posterior is at least `blank_prob`, after some speech (or `max_frames` frames at most);
its final text is the search's best hypothesis (with the LM's end of sentence), and its word times come
from CTC forced alignment of that text against the segment's log-probs (lm.align), as in the offline path.
Every new segment starts a fresh search and LM context, like each offline window. Frames are output
frames of the acoustic model, counted from the start of the stream; the caller converts them to seconds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import torch

from lm.align import AlignedWord, align_words
from lm.beam import BeamOptions, PrefixSearch, advance_lm, check_lm
from lm.vocab import CharVocab


@dataclass(frozen=True)
class EndpointOptions:
    endpoint_frames: int = 20  # blank frames in a row that end a segment after speech
    blank_prob: float = 0.95  # a frame counts as silence when P(blank) is at least this
    max_frames: int = 1000  # a segment is cut here even without a pause (the offline window)

    def __post_init__(self) -> None:
        if self.endpoint_frames < 1 or self.max_frames < self.endpoint_frames:
            raise ValueError("endpoint_frames must be >= 1 and max_frames >= endpoint_frames")
        if not 0.0 < self.blank_prob < 1.0:
            raise ValueError(f"blank_prob must be in (0, 1); got {self.blank_prob}")


@dataclass(frozen=True)
class DecoderEvent:
    final: bool  # False: partial (the segment may still change); True: the segment is done
    text: str  # normalized words, single spaces
    start_frame: int  # the segment's first output frame
    end_frame: int  # one past the last frame decoded so far
    words: tuple[AlignedWord, ...] = ()  # final events only: aligned words, frames from the stream start


class StreamDecoder:
    """Incremental decoder of one stream. `accept(log_probs)` per chunk, `finish()` at the end."""

    def __init__(self, vocab: CharVocab, lm: Any = None, options: BeamOptions | None = None,
                 hotwords: dict[str, float] | None = None, endpoint: EndpointOptions = EndpointOptions(),
                 greedy: bool = False) -> None:
        check_lm(lm)
        self.vocab, self.endpoint, self.greedy = vocab, endpoint, greedy
        self._search_args = (vocab, lm, options or BeamOptions(), hotwords)
        self._silence = math.log(endpoint.blank_prob)
        self.frame = 0  # frames accepted so far
        self._new_segment()

    def _new_segment(self) -> None:
        self.start = self.frame
        self.rows: list[torch.Tensor] = []  # the segment's log-prob rows (V,)
        self.trailing_blank = 0
        self.speech = False
        self.ids: list[int] = []  # greedy: best-path symbols so far, repeats not yet merged
        if not self.greedy:
            self.search = PrefixSearch(*self._search_args)
            self.beams = self.search.start()

    def accept(self, log_probs: torch.Tensor) -> list[DecoderEvent]:
        """One chunk of log-probs (T, V) -> events: finals for segments that ended, then one partial."""
        return accept_many([self], [log_probs])[0]

    def finish(self) -> list[DecoderEvent]:
        """End of stream: the last segment's final event (none if it held no speech)."""
        events = self._final() if self.speech else []
        self._new_segment()
        return events

    def _begin(self, row: list[float]) -> bool:
        """Count one frame; False for leading silence, which only moves the segment start past it."""
        self.frame += 1
        silent = row[self.vocab.blank] >= self._silence
        if not self.speech and silent:
            self.start = self.frame
            return False
        self.speech = True
        self.trailing_blank = self.trailing_blank + 1 if silent else 0
        return True

    def _search(self, row: list[float]) -> bool:
        """Decode one frame of the segment; True when its kept prefixes still need their LM step."""
        if self.greedy:
            self.ids.append(max(range(len(row)), key=row.__getitem__))
            return False
        if self.search.skips(row):
            self.beams = self.search.blank_frame(self.beams, row)
            return False
        self.beams = self.search.select(self.search.extend(self.beams, row))
        return True

    def _end(self, row: torch.Tensor, in_segment: bool) -> list[DecoderEvent]:
        """After the frame's LM step: keep its row; at an endpoint, the final event and a new segment."""
        if in_segment:
            self.rows.append(row)
        if not (self.speech and self._endpoint()):
            return []
        events = self._final()
        self._new_segment()
        return events

    def _endpoint(self) -> bool:
        return (self.trailing_blank >= self.endpoint.endpoint_frames
                or self.frame - self.start >= self.endpoint.max_frames)

    def _partial_text(self) -> str:
        if self.greedy:
            return self.vocab.decode(_merge(self.ids, self.vocab.blank))
        return self.search.best(self.beams)

    def _final(self) -> list[DecoderEvent]:
        """The segment's final event, or none when it decoded to nothing."""
        if self.greedy:
            text = " ".join(self.vocab.decode(_merge(self.ids, self.vocab.blank)).split())
        else:
            text = self.search.finish(self.beams)[0].text if self.beams else ""
        if not text:
            return []
        words = align_words(torch.stack(self.rows), text, self.vocab)
        shifted = tuple(replace(w, start_frame=w.start_frame + self.start, end_frame=w.end_frame + self.start)
                        for w in words)
        return [DecoderEvent(True, text, self.start, self.frame, shifted)]


def accept_many(decoders: list[StreamDecoder], chunks: list[torch.Tensor]) -> list[list[DecoderEvent]]:
    """Several streams' chunks (T_i, V) in lock-step, frame by frame, with ONE LM call per frame for all
    streams' new prefixes (the decoders share one LM) -> each stream's events, as its own `accept` gives."""
    for decoder, chunk in zip(decoders, chunks):
        if chunk.dim() != 2 or chunk.shape[1] != len(decoder.vocab):
            raise ValueError(f"log_probs must be (T, {len(decoder.vocab)}); got {tuple(chunk.shape)}")
    chunks = [c.detach().float().cpu() for c in chunks]
    rows = [c.tolist() for c in chunks]
    events: list[list[DecoderEvent]] = [[] for _ in decoders]
    for t in range(max((len(r) for r in rows), default=0)):
        active = [i for i in range(len(decoders)) if t < len(rows[i])]
        in_segment = {i: decoders[i]._begin(rows[i][t]) for i in active}
        needs_lm = [i for i in active if in_segment[i] and decoders[i]._search(rows[i][t])]
        advance_lm([(decoders[i].search, decoders[i].beams) for i in needs_lm])
        for i in active:
            events[i] += decoders[i]._end(chunks[i][t], in_segment[i])
    for i, decoder in enumerate(decoders):
        if decoder.speech and len(rows[i]):
            events[i].append(DecoderEvent(False, decoder._partial_text(), decoder.start, decoder.frame))
    return events


def _merge(ids: list[int], blank: int) -> list[int]:
    """Best path -> labels: repeats merged, blanks removed."""
    return [t for i, t in enumerate(ids) if t != blank and (i == 0 or ids[i - 1] != t)]
