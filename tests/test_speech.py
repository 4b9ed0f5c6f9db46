"""The transcriber's speech track (minutes.speech) and how the diarization step gates regions with it."""
import numpy as np
import pytest

from minutes.diarization import keep_where
from minutes.speech import SpeechTrack


def test_track_places_windows_by_time_and_the_later_window_wins() -> None:
    track = SpeechTrack(step=0.02)
    track.add(0.0, np.full(60, 0.2), duration_s=1.0)  # 50 frames of window, 10 padding frames dropped
    track.add(0.8, np.full(50, 0.9), duration_s=1.0)  # overlaps the first window's last 0.2 s
    values = track.values()
    assert len(values) == 40 + 50
    assert np.allclose(values[:40], 0.2) and np.allclose(values[40:], 0.9)


def test_frames_no_window_covered_read_zero() -> None:
    track = SpeechTrack(step=0.02)
    track.add(1.0, np.ones(50), duration_s=1.0)  # the first second was digital silence: never decoded
    values = track.values()
    assert np.all(values[:50] == 0) and np.all(values[50:] == 1)
    assert len(SpeechTrack(0.02).values()) == 0


def test_mask_thresholds_the_smoothed_track_and_dilates_it() -> None:
    track = SpeechTrack(step=0.02)
    probs = np.zeros(250)
    probs[100:150] = 1.0  # speech from 2.0 to 3.0 s of a 5 s track
    track.add(0.0, probs, duration_s=5.0)
    plain = track.mask(0.01, 500, smooth=0.02, threshold=0.5, dilate=0.0)
    assert np.flatnonzero(plain)[[0, -1]].tolist() == [200, 299]
    wide = track.mask(0.01, 500, smooth=0.02, threshold=0.5, dilate=0.5)
    assert np.flatnonzero(wide)[[0, -1]].tolist() == [150, 349]
    assert not track.mask(0.01, 500, smooth=0.02, threshold=1.5, dilate=0.5).any()
    assert not track.mask(0.01, 800, smooth=0.02, threshold=0.5, dilate=0.5)[500:].any()  # past the track: none


def test_bad_step_is_rejected() -> None:
    with pytest.raises(ValueError):
        SpeechTrack(0.0)


def test_keep_where_cuts_regions_to_the_true_frames() -> None:
    keep = np.zeros(1000, bool)
    keep[150:250] = True  # 1.5-2.5 s
    keep[600:700] = True  # 6.0-7.0 s
    assert keep_where([(1.0, 2.0), (3.0, 4.0), (5.5, 8.0)], keep) == [(1.5, 2.0), (6.0, 7.0)]
    assert keep_where([(1.0, 2.0)], np.zeros(0, bool)) == []


def test_keep_where_leaves_no_empty_sliver() -> None:
    keep = np.zeros(100, bool)
    keep[28] = True  # 0.28-0.29 s; a region starting at 0.29 s must not keep a zero-length piece of it
    assert keep_where([(0.29, 0.5)], keep) == []


def test_tuning_scores_the_gate_on_what_it_removes() -> None:
    """diarize.tune's gate trial: a noise region the transcriber hears no speech in costs false alarm until the
    speech gate drops it."""
    from pyannote.core import Annotation, Segment, Timeline

    from diarize.tune import gate_score
    from minutes.diarization import WindowClustering

    reference = Annotation(uri="m")
    reference[Segment(0.0, 5.0)] = "A"
    files = [{"subset": "x", "uri": "m", "annotation": reference, "annotated": Timeline([Segment(0.0, 10.0)])}]
    track = SpeechTrack(step=0.02)
    heard = np.zeros(500, dtype=np.float32)
    heard[:250] = 1.0  # speech in the first 5 s only
    track.add(0.0, heard, 10.0)
    centres = np.array([1.0, 2.0, 3.0, 4.0, 7.0, 8.0])
    embeddings = np.tile([1.0, 0.0], (6, 1))  # one voice
    material = [([(0.0, 5.0), (6.0, 9.0)], centres, embeddings, track, 10.0, [])]  # no overlapped speech
    plain = WindowClustering(window=2.0, hop=1.0, threshold=0.4)
    gated = WindowClustering(window=2.0, hop=1.0, threshold=0.4, speech_threshold=0.5, speech_dilate=0.0)
    assert gate_score(files, material, plain) == pytest.approx(60.0)  # 3 s false alarm over 5 s of speech
    assert gate_score(files, material, gated) == pytest.approx(0.0, abs=1.0)
