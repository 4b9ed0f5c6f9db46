"""Speaker diarization: who spoke when, from the local pyannote.audio pipeline under models/diarization.

The contract the rest of minutes relies on: `Diarizer.load(path)` then `diarizer(audio, hint, hook, speech)`
gives speaker turns in seconds, labels `SPEAKER_00`, `SPEAKER_01`, ... in order of first appearance; `speech`
is the transcriber's speech track of the same audio (minutes.speech), used when the folder's config asks.
A folder whose config.yaml has `minutes: {clustering: windows, ...}` is run with `WindowClustering` (its
segmentation model finds speech, speakers come from clustering short windows of it); otherwise the pyannote
pipeline runs as configured.
Nothing leaves the machine: the Hugging Face hub is switched to offline mode and pyannote's telemetry off
before pyannote is imported (it is imported only when a pipeline is loaded)."""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import yaml

from acoustic.features import SAMPLE_RATE
from minutes.segmenting import true_runs
from minutes.speech import SpeechTrack

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["PYANNOTE_METRICS_ENABLED"] = "0"


class DiarizationError(Exception):
    """The diarization model cannot be loaded or run (one-line reason)."""


@dataclass(frozen=True)
class Turn:
    start: float  # seconds
    end: float
    speaker: str


@dataclass(frozen=True)
class SpeakerHint:
    """Optional hints: an exact number of speakers, or bounds."""
    num: int | None = None
    min: int | None = None
    max: int | None = None

    def __post_init__(self) -> None:
        values = [v for v in (self.num, self.min, self.max) if v is not None]
        if any(v < 1 for v in values):
            raise ValueError("speaker counts must be at least 1")
        if self.num is not None and (self.min is not None or self.max is not None):
            raise ValueError("give either --speakers or --min-speakers/--max-speakers, not both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("--min-speakers is larger than --max-speakers")


@dataclass(frozen=True)
class WindowClustering:
    """Speakers from short windows of the detected speech: the segmentation model says where anyone speaks
    (gaps under `min_duration_off` s bridged); each `window` s of speech, every `hop` s, gets one speaker
    embedding; average-linkage agglomerative clustering on cosine distance, cut at `threshold` (or at the hinted
    number of speakers), labels the windows, and a cluster of fewer than `min_cluster_size` windows joins the
    nearest larger one; each 10 ms speech frame takes the label of the nearest window centre. With `quiet_db`,
    speech whose level (power over 0.5 s) is more than `quiet_db` dB under the recording's loud level (95th
    percentile of that level) is dropped first: distant talk and noise a far-field microphone picks up, which
    the segmentation model calls speech.
    With `speech_threshold` and a speech track from the transcriber (minutes.speech), only speech within
    `speech_dilate` s of frames where the track's mean over `speech_smooth` s exceeds `speech_threshold` is
    kept (the acoustic model does not call breaths and background noise speech), and the kept regions are
    widened by `pad` s on both sides and gaps under `bridge` s closed before the frames are labelled (tuned
    together with the gate; without a track neither applies). With `overlap_reach`, where the segmentation model
    hears two speakers at once the second one gets a turn too: the other cluster nearest within that many s
    (without it, one speaker per frame: overlapped speech keeps one label). With `refine` > 0, that many rounds
    of moving each window to the cluster whose mean embedding is nearest (cosine) follow the clustering."""
    window: float = 1.5
    hop: float = 0.75
    threshold: float = 0.5
    min_duration_off: float = 0.0
    min_cluster_size: int = 1
    quiet_db: float | None = None
    speech_threshold: float | None = None
    speech_smooth: float = 0.5
    speech_dilate: float = 0.3
    pad: float = 0.0
    bridge: float = 0.0
    overlap_reach: float | None = None
    refine: int = 0


FRAME_STEP = 0.01  # s, resolution of the output turns
MIN_WINDOW = 0.5  # s, speech runs shorter than this get no window of their own (the nearest window labels them)
DEFAULT_DIARIZATION = Path(__file__).resolve().parent.parent / "models" / "diarization"
_SHARES = {"segmentation": (0.0, 0.2), "embeddings": (0.2, 1.0)}  # progress share of each pyannote step


class Diarizer:
    """The pyannote.audio speaker-diarization pipeline of a local folder (`config.yaml` + models), run offline.

    `Diarizer.load(path)(audio, hint, hook)` -> turns sorted by start, labels `SPEAKER_00`, `SPEAKER_01`, ...
    in order of first appearance. `hook("diarize", completed=, total=)` reports progress in seconds of audio
    (segmentation counts for the first fifth, speaker embeddings for the rest)."""

    def __init__(self, pipeline: Any, windows: WindowClustering | None = None) -> None:
        self.pipeline = pipeline
        self.windows = windows

    @classmethod
    def load(cls, path: Path | None = None) -> Diarizer:
        """Load the pipeline in `path` (default models/diarization); DiarizationError with a one-line reason."""
        path = Path(path) if path is not None else DEFAULT_DIARIZATION
        if not (path / "config.yaml").is_file():
            raise DiarizationError(f"no diarization model in {path} (config.yaml is missing)")
        try:
            from pyannote.audio import Pipeline

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pipeline = Pipeline.from_pretrained(path)
        except Exception as error:  # yaml, pickle, missing checkpoint, wrong class: all one line for the user
            raise DiarizationError(f"cannot load the diarization model in {path}: {_one_line(error)}") from None
        if pipeline is None:
            raise DiarizationError(f"cannot load the diarization model in {path}")
        return cls(pipeline, window_clustering(path))

    def __call__(self, audio: np.ndarray, hint: SpeakerHint = SpeakerHint(),
                 hook: Callable[..., None] | None = None, speech: SpeechTrack | None = None) -> list[Turn]:
        """Speaker turns (within the audio) of float32 mono 16 kHz `audio` (n,), honouring the speaker-count
        `hint`; `speech` (the transcriber's track of this audio) gates the speech regions when the config has
        `speech_threshold`. Raises ValueError for non-mono input, DiarizationError when pyannote fails."""
        if audio.ndim != 1:
            raise ValueError(f"expected mono audio of shape (n,), got {audio.shape}")
        waveform = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None]
        file = {"waveform": waveform, "sample_rate": SAMPLE_RATE, "uri": "audio"}
        duration = len(audio) / SAMPLE_RATE
        try:
            with warnings.catch_warnings(), torch.inference_mode():
                warnings.simplefilter("ignore")
                if self.windows is not None:
                    return self._by_windows(file, hint, _relay(hook, duration), speech)
                output = self.pipeline(file, num_speakers=hint.num, min_speakers=hint.min,
                                       max_speakers=hint.max, hook=_relay(hook, duration))
        except (RuntimeError, ValueError) as error:
            raise DiarizationError(_one_line(error)) from None
        annotation = getattr(output, "speaker_diarization", output)
        # the last window is padded: clip turns to the audio
        return first_appearance_labels([Turn(float(s.start), min(float(s.end), duration), str(k))
                                        for s, _, k in annotation.itertracks(yield_label=True) if s.start < duration])

    def _by_windows(self, file: dict, hint: SpeakerHint, hook: Callable[..., None] | None,
                    speech: SpeechTrack | None) -> list[Turn]:
        config = self.windows
        audio = file["waveform"][0].numpy()
        regions, overlaps = counted_regions(self.pipeline, file, config.min_duration_off, hook)
        if config.quiet_db is not None:
            regions = drop_quiet(regions, audio, config.quiet_db)
        regions, labelled = gate_regions(regions, config, speech, len(audio) / SAMPLE_RATE)
        spans = speech_windows(regions, config.window, config.hop)
        embeddings = window_embeddings(self.pipeline, audio, spans, config.window, hook)
        labels = cluster_windows(embeddings, config.threshold, hint, config.min_cluster_size, config.refine)
        return first_appearance_labels(label_speech(labelled, spans.mean(axis=1), labels, overlaps,
                                                    config.overlap_reach))


def window_clustering(folder: Path) -> WindowClustering | None:
    """The `minutes:` section of the folder's config.yaml (None when absent: plain pyannote pipeline)."""
    try:
        config = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8")) or {}
        options = dict(config.get("minutes") or {})
        if options.pop("clustering", None) != "windows":
            return None
        return WindowClustering(**options)
    except (yaml.YAMLError, TypeError, AttributeError) as error:
        raise DiarizationError(f"bad `minutes` section in {folder / 'config.yaml'}: {_one_line(error)}") from None


def speech_regions(pipeline: Any, file: dict, min_duration_off: float,
                   hook: Callable[..., None] | None = None) -> list[tuple[float, float]]:
    """(start, end) s where the segmentation model hears anyone, gaps under `min_duration_off` bridged, within
    the audio."""
    return counted_regions(pipeline, file, min_duration_off, hook)[0]


def counted_regions(pipeline: Any, file: dict, min_duration_off: float, hook: Callable[..., None] | None = None
                    ) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """(speech_regions, where the segmentation model hears two or more speakers at once), within the audio."""
    segmentations = pipeline.get_segmentations(file, hook=hook)
    count = pipeline.speaker_count(segmentations, pipeline._segmentation.model.receptive_field, warm_up=(0.0, 0.0))
    speakers = np.nan_to_num(count.data[:, 0])
    duration = file["waveform"].shape[-1] / file["sample_rate"]
    return (runs(speakers > 0, count.sliding_window, duration, min_duration_off),
            runs(speakers >= 2, count.sliding_window, duration, 0.0))


def runs(active: np.ndarray, frames: Any, duration: float, min_duration_off: float) -> list[tuple[float, float]]:
    """(start, end) s of the runs of `active` frames (a pyannote SlidingWindow `frames`), gaps under
    `min_duration_off` bridged, within 0..`duration`."""
    regions: list[tuple[float, float]] = []
    for a, b in true_runs(active):
        start = max(0.0, frames[a].middle - frames.step / 2)
        end = min(duration, frames[b - 1].middle + frames.step / 2)
        if regions and start - regions[-1][1] < min_duration_off:
            regions[-1] = (regions[-1][0], end)
        elif end > start:
            regions.append((start, end))
    return regions


def drop_quiet(regions: list[tuple[float, float]], audio: np.ndarray, quiet_db: float) -> list[tuple[float, float]]:
    """The parts of `regions` whose level is within `quiet_db` dB of the recording's loud level (see
    WindowClustering), at FRAME_STEP resolution."""
    level = frame_level_db(audio)
    return keep_where(regions, level > np.percentile(level, 95) - quiet_db)


def gate_regions(regions: list[tuple[float, float]], config: WindowClustering, speech: SpeechTrack | None,
                 duration: float) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """(regions to embed, regions to label) of a recording of `duration` s: the parts of `regions` the speech
    track gates in (see WindowClustering), and those padded; both `regions` when the config has no gate or
    there is no track."""
    if config.speech_threshold is None or speech is None:
        return regions, regions
    keep = speech.mask(FRAME_STEP, int(np.ceil(duration / FRAME_STEP)), config.speech_smooth,
                       config.speech_threshold, config.speech_dilate)
    gated = keep_where(regions, keep)
    return gated, pad_regions(gated, config.pad, config.bridge, duration)


def keep_where(regions: list[tuple[float, float]], keep: np.ndarray) -> list[tuple[float, float]]:
    """The parts of `regions` inside the frames where `keep` (booleans, one per FRAME_STEP from 0 s) is true."""
    kept = []
    for start, end in regions:
        first = int(start / FRAME_STEP)
        run = keep[first: int(np.ceil(end / FRAME_STEP))]
        pieces = ((max(start, (first + a) * FRAME_STEP), min(end, (first + b) * FRAME_STEP))
                  for a, b in true_runs(run))
        kept.extend((a, b) for a, b in pieces if b - a >= FRAME_STEP / 2)  # rounding can leave an empty sliver
    return kept


def pad_regions(regions: list[tuple[float, float]], pad: float, bridge: float,
                duration: float) -> list[tuple[float, float]]:
    """Sorted `regions` each widened by `pad` s on both sides (within 0..`duration`), then merged where they
    overlap or the gap between them is under `bridge` s."""
    merged: list[tuple[float, float]] = []
    for start, end in regions:
        start, end = max(0.0, start - pad), min(duration, end + pad)
        if merged and start - merged[-1][1] < max(bridge, 1e-9):
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def frame_level_db(audio: np.ndarray, smooth: float = 0.5) -> np.ndarray:
    """Level in dB of every FRAME_STEP of `audio`: mean power over `smooth` s centred on the frame."""
    hop = int(round(FRAME_STEP * SAMPLE_RATE))
    frames = len(audio) // hop
    blocks = audio[: frames * hop].reshape(frames, hop)
    power = np.einsum("ij,ij->i", blocks, blocks).astype(np.float64) / hop  # no copy of the audio (2 h: 460 MB)
    width = 2 * int(round(smooth / FRAME_STEP / 2)) + 1
    return 10 * np.log10(np.convolve(power, np.ones(width) / width, mode="same") + 1e-12)


def speech_windows(regions: list[tuple[float, float]], window: float, hop: float) -> np.ndarray:
    """(n, 2) window spans covering each speech region of at least MIN_WINDOW s: windows of `window` s about
    `hop` s apart, the first at the region's start and the last at its end; shorter regions are one window."""
    spans = []
    for start, end in regions:
        if end - start < MIN_WINDOW:
            continue
        if end - start <= window:
            spans.append((start, end))
            continue
        starts = np.linspace(start, end - window, int(np.ceil((end - start - window) / hop)) + 1)
        spans.extend((s, s + window) for s in starts)
    return np.array(spans, dtype=np.float64).reshape(-1, 2)


def window_embeddings(pipeline: Any, audio: np.ndarray, spans: np.ndarray, window: float,
                      hook: Callable[..., None] | None = None, batch: int = 32) -> np.ndarray:
    """(n, dim) unit-length speaker embeddings of the spans (zero-padded to `window` s, masked)."""
    length = int(round(window * SAMPLE_RATE))
    out = []
    for first in range(0, len(spans), batch):
        chunk = spans[first: first + batch]
        waveforms = torch.zeros(len(chunk), 1, length)
        masks = torch.zeros(len(chunk), length)
        for i, (start, end) in enumerate(chunk):
            piece = torch.from_numpy(audio[int(start * SAMPLE_RATE): int(end * SAMPLE_RATE)][:length])
            waveforms[i, 0, : len(piece)] = piece
            masks[i, : len(piece)] = 1.0
        out.append(pipeline._embedding(waveforms, masks=masks))
        if hook is not None:
            hook("embeddings", completed=first + len(chunk), total=len(spans))
    if hook is not None and not len(spans):
        hook("embeddings", completed=1, total=1)
    embeddings = np.nan_to_num(np.concatenate(out)) if out else np.zeros((0, 1))
    return embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)


def cluster_windows(embeddings: np.ndarray, threshold: float, hint: SpeakerHint = SpeakerHint(),
                    min_cluster_size: int = 1, refine: int = 0) -> np.ndarray:
    """Cluster index (0, 1, ...) of each window: average linkage on cosine distance cut at `threshold`, clusters
    under `min_cluster_size` windows merged into the nearest larger one; when the count is outside what the
    hint allows, the tree is re-cut at the nearest allowed count instead (at most one cluster per window).
    Then `refine` rounds of `nearest_mean` (kept only while the count stays within the hint)."""
    from scipy.cluster.hierarchy import fcluster, linkage

    n = len(embeddings)
    if n < 2:
        return np.zeros(n, dtype=int)
    tree = linkage(embeddings, method="average", metric="cosine")
    labels = merge_small_clusters(embeddings, fcluster(tree, threshold, criterion="distance") - 1, min_cluster_size)
    low = min(n, hint.num or hint.min or 1)
    high = min(n, hint.num or hint.max or n)
    found = labels.max() + 1
    if not low <= found <= high:
        labels = fcluster(tree, min(max(found, low), high), criterion="maxclust") - 1
    for _ in range(refine):
        moved = nearest_mean(embeddings, labels)
        if (moved == labels).all() or not low <= moved.max() + 1 <= high:
            break
        labels = moved
    return labels


def nearest_mean(embeddings: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each window moved to the cluster whose mean embedding is most cosine-similar to it (one k-means round on
    the sphere), clusters renumbered 0, 1, ... (one may empty)."""
    means = np.stack([embeddings[labels == k].mean(axis=0) for k in range(labels.max() + 1)])
    means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
    return np.unique(np.argmax(embeddings @ means.T, axis=1), return_inverse=True)[1]


def merge_small_clusters(embeddings: np.ndarray, labels: np.ndarray, min_size: int) -> np.ndarray:
    """Labels (0..k-1) with each cluster of fewer than `min_size` members moved to the large cluster whose mean
    embedding is most cosine-similar to its own, renumbered 0, 1, ...; unchanged when no cluster is large."""
    sizes = np.bincount(labels)
    large = np.flatnonzero(sizes >= min_size)
    if len(large) in (0, len(sizes)):
        return labels
    means = np.stack([embeddings[labels == k].mean(axis=0) for k in range(len(sizes))])
    means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
    target = large[np.argmax(means @ means[large].T, axis=1)]
    return np.unique(target[labels], return_inverse=True)[1]


def label_speech(regions: list[tuple[float, float]], centres: np.ndarray, labels: np.ndarray,
                 overlaps: Sequence[tuple[float, float]] = (), reach: float | None = None) -> list[Turn]:
    """Turns: every FRAME_STEP of each region labelled with the cluster of the nearest window centre; then, with
    a `reach`, for each of the `overlaps` (where two speak at once) inside the regions, a turn of the second
    speaker: the cluster, other than the first speaker's there, of the window centre nearest to it within
    `reach` s."""
    if not len(centres):
        return [Turn(start, end, "0") for start, end in regions]
    turns = []
    for start, end in regions:
        t = np.arange(start, end, FRAME_STEP) + FRAME_STEP / 2
        lab = labels[nearest_centre(centres, t)]
        cuts = np.flatnonzero(lab[1:] != lab[:-1]) + 1
        bounds = np.concatenate([[start], (t[cuts - 1] + t[cuts]) / 2, [end]])
        turns.extend(Turn(float(a), float(b), str(k)) for a, b, k in zip(bounds[:-1], bounds[1:], lab[np.r_[0, cuts]]))
    if reach is None:
        return turns
    return turns + second_speakers(keep_inside(overlaps, regions), centres, labels, reach)


def keep_inside(spans: Sequence[tuple[float, float]], regions: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The parts of `spans` that lie inside the sorted, disjoint `regions`."""
    starts = np.array([a for a, _ in regions])
    ends = np.array([b for _, b in regions])
    inside = []
    for start, end in spans:
        for i in range(np.searchsorted(ends, start, side="right"), np.searchsorted(starts, end)):
            inside.append((max(start, starts[i]), min(end, ends[i])))
    return inside


def second_speakers(overlaps: list[tuple[float, float]], centres: np.ndarray, labels: np.ndarray,
                    reach: float) -> list[Turn]:
    """One turn per overlap span, for the cluster (other than that of the window nearest the span's middle)
    of the nearest window centre within `reach` s of the span; none where no other cluster is that close."""
    turns = []
    for start, end in overlaps:
        first = labels[nearest_centre(centres, np.array([(start + end) / 2]))[0]]
        distance = np.maximum(0.0, np.maximum(start - centres, centres - end))
        candidates = np.flatnonzero((labels != first) & (distance <= reach))
        if len(candidates):
            turns.append(Turn(float(start), float(end), str(labels[candidates[np.argmin(distance[candidates])]])))
    return turns


def nearest_centre(centres: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Index of the nearest of the sorted `centres` for each time in `t`."""
    if len(centres) == 1:
        return np.zeros(len(t), dtype=int)
    right = np.clip(np.searchsorted(centres, t), 1, len(centres) - 1)
    return np.where(np.abs(centres[right - 1] - t) <= np.abs(centres[right] - t), right - 1, right)


def first_appearance_labels(turns: list[Turn]) -> list[Turn]:
    """Turns sorted by (start, end), relabelled SPEAKER_00, SPEAKER_01, ... in order of first appearance."""
    turns = sorted(turns, key=lambda t: (t.start, t.end))
    names: dict[str, str] = {}
    for t in turns:
        names.setdefault(t.speaker, f"SPEAKER_{len(names):02d}")
    return [Turn(t.start, t.end, names[t.speaker]) for t in turns]


def _relay(hook: Callable[..., None] | None, seconds: float) -> Callable[..., None] | None:
    """pyannote's `hook(step_name, artefact, file=, completed=, total=)` -> ours, one "diarize" step counted in
    seconds of audio."""
    if hook is None:
        return None

    def relay(step: str, artefact: Any = None, file: Any = None, completed: int | None = None,
              total: int | None = None) -> None:
        if step in _SHARES and completed is not None and total:
            low, high = _SHARES[step]
            fraction = low + (high - low) * min(completed / total, 1.0)
            hook("diarize", completed=round(fraction * seconds, 2), total=round(seconds, 2))

    return relay


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
