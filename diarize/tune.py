"""Tune the pipeline's hyper-parameters on the TUNE part of meetings_dev (diarize.devset) and write them,
with the chosen clustering, into the folder's config.yaml.

Segmentation and embeddings are computed once per recording (pyannote's training-mode cache); every trial
then only re-clusters. First the clustering (VBx: threshold, Fa, Fb; or agglomerative: threshold, minimum
cluster size) is chosen with min_duration_off 0, then min_duration_off for it; the score is DER without collar
over all tune recordings.
    python -m diarize.tune --pipeline exp/diar/pipeline --dev ../shared/data/meetings_dev
With --windows it tunes minutes.diarization.WindowClustering instead (quiet-speech gate, min_duration_off,
window length with the hop half of it, clustering threshold, minimum cluster size; score: the mean of the
subsets' DERs) and writes it as the config's `minutes` section, which makes minutes.diarization cluster short
windows of the detected speech rather than run pyannote's clustering. Then, for the chosen windows, the speech
gate (the transcriber's speech track: smoothing, threshold, dilation) and the padding of the regions (pad,
bridge), against no gate (`--no-speech-gate` skips this step; `--model` picks the acoustic model); last, for
that gate, whether and how far to look for a second speaker where the segmentation model hears two at once,
and whether to refine the clusters (windows moved to the nearest cluster mean).
    python -m diarize.tune --pipeline exp/diar/pipeline --windows
"""
from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import logging
import os
import warnings
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["PYANNOTE_METRICS_ENABLED"] = "0"

from pyannote.audio import Pipeline  # noqa: E402
from pyannote.audio.pipelines import SpeakerDiarization  # noqa: E402
from pyannote.core import Annotation, Segment  # noqa: E402
from pyannote.metrics.diarization import DiarizationErrorRate  # noqa: E402

from acoustic.features import SAMPLE_RATE  # noqa: E402
from diarize.devset import Recording, load_devset, part  # noqa: E402
from diarize.package import write_config  # noqa: E402
from minutes.diarization import (Diarizer, WindowClustering, cluster_windows, counted_regions,  # noqa: E402
                                 drop_quiet, gate_regions, label_speech, speech_regions, speech_windows,
                                 window_embeddings)
from minutes.pipeline import Transcriber  # noqa: E402

log = logging.getLogger("diarize.tune")

MIN_DURATION_OFF = [0.0, 0.2, 0.5, 1.0]
GRIDS = {
    "VBxClustering": [{"threshold": t, "Fa": fa, "Fb": fb} for t, fa, fb in
                      itertools.product([0.5, 0.6, 0.7, 0.8], [0.07, 0.3], [0.8, 5.0])],
    # min_cluster_size: a speaker with fewer window embeddings is merged into another (pyannote lowers it to 10 % of
    # the embeddings on short files, e.g. to 3 on a 30 s excerpt); 12 merges anyone speaking under ~30 s in all
    "AgglomerativeClustering": [{"method": "centroid", "threshold": t, "min_cluster_size": m}
                                for t, m in itertools.product((0.3, 0.4, 0.55, 0.7, 0.85, 1.0), (3, 6, 12))],
}

WINDOW_GRID = {"quiet_db": (None, 40.0, 35.0, 30.0, 25.0, 20.0), "min_duration_off": (0.0, 0.2, 0.5),
               "window": (1.5, 2.0), "threshold": (0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7),
               "min_cluster_size": (1, 3, 6)}
GATE_GRID = {"speech_smooth": (0.25, 0.5, 1.0), "speech_threshold": (0.1, 0.15, 0.2, 0.3),
             "speech_dilate": (0.2, 0.3, 0.45), "pad": (0.0, 0.1, 0.2, 0.25, 0.3), "bridge": (0.0, 0.25, 0.5)}
OVERLAP_REACH = (0.5, 1.0, 2.0, 4.0)  # s; tried against none (one speaker per frame) after the gate
REFINE_ROUNDS = (1, 3)  # rounds of moving windows to the nearest cluster mean; tried against none, last


def pipeline_file(recording: Recording) -> dict:
    """pyannote file dict with in-memory audio, reference and UEM (also the trial cache)."""
    waveform = torch.from_numpy(recording.audio())[None]
    return {"waveform": waveform, "sample_rate": SAMPLE_RATE, "uri": recording.uri,
            "annotation": recording.reference, "annotated": recording.uem}


def with_clustering(base: SpeakerDiarization, clustering: str, init: dict) -> SpeakerDiarization:
    """A pipeline sharing `base`'s models and PLDA, with another clustering."""
    options = {k: v for k, v in init.items() if k != "clustering"}
    return SpeakerDiarization(segmentation=base._segmentation.model, embedding=base._embedding.model_,
                              plda=base._plda, clustering=clustering, **options)


def score(pipeline: SpeakerDiarization, files: list[dict], params: dict) -> float:
    """DER (no collar, %) of `pipeline` instantiated with `params` over `files`."""
    pipeline.instantiate(params)
    metric = DiarizationErrorRate(collar=0.0, skip_overlap=False)
    for file in files:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            output = pipeline(file)
        metric(file["annotation"], output.speaker_diarization, uem=file["annotated"])
    return 100 * abs(metric)


def search(folder: Path, dev: Path) -> tuple[str, dict, float]:
    """(clustering, params, tune DER) of the best trial."""
    config = yaml.safe_load((folder / "config.yaml").read_text())
    init = {k: v for k, v in config["pipeline"]["params"].items() if not str(v).startswith("$model")}
    base = Pipeline.from_pretrained(folder)
    files = [pipeline_file(r) for r in load_devset(dev) if part(r) == "tune"]
    pipelines = {name: with_clustering(base, name, init) for name in GRIDS}
    for pipeline in pipelines.values():
        pipeline.training = True  # reuse segmentation and embeddings across trials
    trials = [(name, {"segmentation": {"min_duration_off": 0.0}, "clustering": c})
              for name, grid in GRIDS.items() for c in grid]
    best = min(((name, params, trial(pipelines[name], files, name, params)) for name, params in trials),
               key=lambda t: t[2])
    name, params, _ = best
    offs = [(name, {**params, "segmentation": {"min_duration_off": off}}) for off in MIN_DURATION_OFF[1:]]
    return min([best] + [(n, p, trial(pipelines[n], files, n, p)) for n, p in offs], key=lambda t: t[2])


def trial(pipeline: SpeakerDiarization, files: list[dict], name: str, params: dict) -> float:
    der = score(pipeline, files, params)
    log.info("%s %s DER %.2f", name, params, der)
    return der


def tune_files(folder: Path, dev: Path) -> tuple[Any, list[dict]]:
    """The folder's pyannote pipeline, caching each file's segmentation in its dict, and the tune part's files
    (audio, reference, UEM, subset), shared by the window and gate searches."""
    diarizer = Diarizer.load(folder)
    diarizer.pipeline.training = True  # segmentation cached in each file dict
    return diarizer.pipeline, [{**pipeline_file(r), "subset": r.subset} for r in load_devset(dev) if part(r) == "tune"]


def search_windows(pipeline: Any, files: list[dict]) -> tuple[WindowClustering, float]:
    """(window clustering, score) of the best trial on `files` (tune_files). The score is the mean over the tune
    part's subsets (so762, ami_debug) of each subset's DER, so that the real AMI excerpts weigh as much as the
    longer synthetic meetings. Speech regions and window embeddings are computed once per (min_duration_off,
    window) and every (threshold, min_cluster_size) only re-clusters."""
    subsets = sorted({f["subset"] for f in files})
    trials = []
    for off, quiet in itertools.product(WINDOW_GRID["min_duration_off"], WINDOW_GRID["quiet_db"]):
        regions = [speech_regions(pipeline, f, off) for f in files]
        if quiet is not None:
            regions = [drop_quiet(r, f["waveform"][0].numpy(), quiet) for f, r in zip(files, regions)]
        for window in WINDOW_GRID["window"]:
            spans = [speech_windows(r, window, window / 2) for r in regions]
            embeddings = [window_embeddings(pipeline, f["waveform"][0].numpy(), s, window)
                          for f, s in zip(files, spans)]
            for threshold, size in itertools.product(WINDOW_GRID["threshold"], WINDOW_GRID["min_cluster_size"]):
                config = WindowClustering(window, window / 2, threshold, off, size, quiet)
                metrics = {subset: DiarizationErrorRate(collar=0.0, skip_overlap=False) for subset in subsets}
                for f, r, s, e in zip(files, regions, spans, embeddings):
                    turns = label_speech(r, s.mean(axis=1), cluster_windows(e, threshold, min_cluster_size=size))
                    metrics[f["subset"]](f["annotation"], as_annotation(turns, f["uri"]), uem=f["annotated"])
                ders = {subset: 100 * abs(m) for subset, m in metrics.items()}
                trials.append((config, sum(ders.values()) / len(ders)))
                log.info("%s DER %s mean %.2f", config, " ".join(f"{k} {v:.2f}" for k, v in ders.items()),
                         trials[-1][1])
    return min(trials, key=lambda t: t[1])


def search_gate(pipeline: Any, files: list[dict], config: WindowClustering,
                transcriber: Transcriber) -> tuple[WindowClustering, float]:
    """(config with the best speech gate and padding, score) for the window clustering `config`: the
    transcriber's speech track (as `minutes transcribe` fills it) gates the speech regions, GATE_GRID's values
    tried in every combination against no gate. The windows are computed once on the ungated regions; a trial
    keeps those whose centre lies in the gated regions (close to re-windowing them, at no embedding cost).
    Same score as search_windows. Then, for the best gate, the second-speaker labelling of overlapped speech
    (OVERLAP_REACH) against none, and last the refinement of the clusters (REFINE_ROUNDS) against none."""
    material = gate_material(pipeline, files, config, transcriber)
    trials = [(config, gate_score(files, material, config))]
    for values in itertools.product(*GATE_GRID.values()):
        trials.append(scored(replace(config, **dict(zip(GATE_GRID, values))), files, material))
    best = min(trials, key=lambda t: t[1])
    for field, values in (("overlap_reach", OVERLAP_REACH), ("refine", REFINE_ROUNDS)):
        trials = [scored(replace(best[0], **{field: value}), files, material) for value in values]
        best = min([best, *trials], key=lambda t: t[1])
    return best


def scored(config: WindowClustering, files: list[dict], material: list[tuple]) -> tuple[WindowClustering, float]:
    """(config, gate_score), logged."""
    score = gate_score(files, material, config)
    log.info("%s mean DER %.2f", config, score)
    return config, score


def gate_material(pipeline: Any, files: list[dict], config: WindowClustering,
                  transcriber: Transcriber) -> list[tuple]:
    """Per file, what every gate trial needs: the ungated speech regions, the window centres and embeddings,
    the transcriber's speech track, the duration, the overlapped speech."""
    material = []
    for f in files:
        audio = f["waveform"][0].numpy()
        regions, overlaps = counted_regions(pipeline, f, config.min_duration_off)
        regions = drop_quiet(regions, audio, config.quiet_db) if config.quiet_db is not None else regions
        spans = speech_windows(regions, config.window, config.hop)
        track = transcriber.speech_track()
        transcriber.transcribe(audio, speech=track)
        material.append((regions, spans.mean(axis=1), window_embeddings(pipeline, audio, spans, config.window),
                         track, len(audio) / SAMPLE_RATE, overlaps))
    return material


def gate_score(files: list[dict], material: list[tuple], config: WindowClustering) -> float:
    """Mean over subsets of the DER with `config`'s speech gate and padding (see search_gate)."""
    metrics = {subset: DiarizationErrorRate(collar=0.0, skip_overlap=False) for subset in {f["subset"] for f in files}}
    for f, (regions, centres, embeddings, track, duration, overlaps) in zip(files, material):
        regions, labelled = gate_regions(regions, config, track, duration)
        inside = np.array([any(a <= c < b for a, b in regions) for c in centres], dtype=bool)
        labels = cluster_windows(embeddings[inside], config.threshold, min_cluster_size=config.min_cluster_size,
                                 refine=config.refine)
        turns = label_speech(labelled, centres[inside], labels, overlaps, config.overlap_reach)
        metrics[f["subset"]](f["annotation"], as_annotation(turns, f["uri"]), uem=f["annotated"])
    return sum(100 * abs(m) for m in metrics.values()) / len(metrics)


def as_annotation(turns: list, uri: str) -> Annotation:
    ann = Annotation(uri=uri)
    for i, t in enumerate(turns):
        ann[Segment(t.start, t.end), i] = t.speaker
    return ann


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pipeline", type=Path, required=True, help="folder written by diarize.package")
    p.add_argument("--dev", type=Path, default=Path("../shared/data/meetings_dev"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--windows", action="store_true", help="tune window clustering (minutes.diarization)")
    p.add_argument("--no-speech-gate", action="store_true",
                   help="with --windows: no speech gate from the transcriber's speech track")
    p.add_argument("--model", type=Path, help="acoustic model whose speech track gates (default: the shipped one)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    config = yaml.safe_load((args.pipeline / "config.yaml").read_text())
    init = {k: v for k, v in config["pipeline"]["params"].items() if not str(v).startswith("$model")}
    if args.windows:
        pipeline, files = tune_files(args.pipeline, args.dev)
        windows, der = search_windows(pipeline, files)
        if not args.no_speech_gate:
            windows, der = search_gate(pipeline, files, windows, Transcriber.load(args.model))
        write_config(args.pipeline, init, config["params"], {"clustering": "windows", **asdict(windows)})
        log.info("best: %s tune DER %.2f%% -> %s", windows, der, args.pipeline / "config.yaml")
        return
    clustering, params, der = search(args.pipeline, args.dev)
    write_config(args.pipeline, {**init, "clustering": clustering}, params)
    log.info("best: %s %s tune DER %.2f%% -> %s", clustering, params, der, args.pipeline / "config.yaml")


if __name__ == "__main__":
    main()
