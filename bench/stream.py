"""Streaming benchmark: accuracy against the offline path, concurrent real-time streams, chunk latency,
offline batched throughput and the Whisper-encoder front end's cost per tick.

    python -m bench.stream [--set so762-eval --set ljspeech-heldout] [--limit 60] [--model PATH ...]
                           [--streams 1,2,4,8,16] [--beam-streams N,...] [--ticks 24] [--device cpu|cuda]
                           [--threads 2] [--json OUT]
    python -m bench.stream --audio samples/meeting.opus --device cuda --streams 1,256,1024,4096 ...
                           (speed only, on clips of one file: no data sets needed)

1. Accuracy: each model's WER/CER offline (minutes.pipeline.Transcriber, whole windows) and streaming
   (minutes.streaming.StreamingEngine fed 0.64 s blocks) on the same audio, beam+LM and greedy; the ratio.
2. Concurrency: N streams fed in lock-step ticks of one chunk of audio each (`feed_many`: one batched model
   step per tick), run back to back. Tick time = compute latency added to a chunk (the algorithmic latency,
   chunk + look-ahead, comes on top); p50/p95/p99 over ticks after a warm-up tick. N streams are sustained
   in real time when the mean tick time is below the chunk's duration; the target adds p95 < 300 ms.
   "acoustic only" runs the same ticks through the acoustic engine without any decoding: the ceiling.
3. Offline batched throughput: utterances batched through the full BiLSTM (x real time), acoustic only,
   then + greedy, then + beam+LM decoding.
4. Whisper-encoder front end: seconds per encoder call on a sliding window (30 s as in training, shorter
   windows as CTranslate2 accepts them), i.e. what re-encoding every tick would cost one stream.
5. --encoder-model: that model through the StreamingEngine (re-encoding the audio so far, padded to 30 s as
   in its training, before every block; LC-BLSTM on the new states; greedy) against the same model offline.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import torch

from acoustic.data import ManifestError, Utterance
from acoustic.features import HOP_LENGTH, SAMPLE_RATE, LogMel
from bench.asr import load_sets, machine, parse_set, read_audio
from bench.sets import spread
from lm.batched_beam import BatchedPrefixBeam
from lm.beam import beam_search
from lm.decode import greedy_ids
from lm.metrics import error_rates
from minutes.audio import load_audio
from minutes.pipeline import Transcriber
from minutes.serving import LockstepServer
from minutes.streaming import StreamingEngine, default_stream_model

DEFAULT_SETS = [("so762-eval", None), ("ljspeech-heldout", None)]


def accuracy(model: Path, sets: dict[str, list[Utterance]], audio: dict[Path, np.ndarray]) -> list[dict]:
    """WER/CER and RTF offline vs streaming, beam and greedy, per set."""
    rows = []
    for decoder in ("beam", "greedy"):
        systems = {"offline": Transcriber.load(model, decoder=decoder),
                   "streaming": StreamingEngine.load(model, decoder=decoder)}
        for set_name, utts in sets.items():
            refs = [u.text for u in utts]
            for path_name, system in systems.items():
                started, hyps = time.perf_counter(), []
                for u in utts:
                    try:
                        hyps.append(system.transcribe(audio[u.path]).text)
                    except ValueError:  # silent clip
                        hyps.append("")
                wer, cer = error_rates(refs, hyps)
                seconds = sum(audio[u.path].size for u in utts) / SAMPLE_RATE
                rows.append({"model": model.parent.name if model.name == "model.pt" else model.stem, "set": set_name, "decoder": decoder, "path": path_name,
                             "utterances": len(utts), "wer": wer, "cer": cer,
                             "rtf": (time.perf_counter() - started) / seconds})
    return rows


def stream_audio(audio: list[np.ndarray], index: int, samples: int) -> np.ndarray:
    """Stream `index`'s audio: the clips in a rotated order, concatenated up to `samples`."""
    order = audio[index % len(audio):] + audio[:index % len(audio)]
    joined = np.concatenate(order * (1 + samples // max(1, sum(a.size for a in order))))
    return joined[:samples]


def concurrency(model: Path, clips: list[np.ndarray], streams: int, ticks: int, decoder: str | None,
                device: str) -> dict:
    """Tick times of `streams` lock-step streams; decoder None = acoustic engine only."""
    engine = StreamingEngine.load(model, decoder=decoder or "greedy", device=device)
    block = engine.chunks.chunk * engine.acoustic.stack * HOP_LENGTH  # samples of one chunk
    sources = [stream_audio(clips, i, block * (ticks + 1)) for i in range(streams)]
    times = []
    if decoder is None:
        slots = [engine.acoustic.open() for _ in range(streams)]
        for t in range(ticks + 1):
            started = time.perf_counter()
            for slot, source in zip(slots, sources):
                engine.acoustic.push(slot, source[t * block:(t + 1) * block])
            engine.acoustic.step()
            _sync(device)
            times.append(time.perf_counter() - started)
    else:
        handles = [engine.open_stream() for _ in range(streams)]
        for t in range(ticks + 1):
            started = time.perf_counter()
            engine.feed_many({h: s[t * block:(t + 1) * block] for h, s in zip(handles, sources)})
            times.append(time.perf_counter() - started)
    return _tick_row(times, streams, decoder or "acoustic only", block)



def concurrency_lockstep(model: Path, clips: list[np.ndarray], streams: int, ticks: int, decoder: str | None,
                         device: str, half: bool) -> dict:
    """Tick times of `streams` streams through minutes.serving.LockstepServer (decoder None: its engine
    alone). Each tick's PCM (int16, as a server receives it) is gathered into one pinned host buffer before
    the clock starts; the tick's time includes its copy to the device and every update on the host (the
    tick's `Updates` columns, texts as Python strings; turning them into per-stream tuples is the caller's)."""
    server = LockstepServer.load(model, decoder=decoder or "greedy", device=device, half=half, capacity=streams)
    block = server.tick_samples
    pool = torch.from_numpy(np.stack([(stream_audio(clips, i, block * (ticks + 1)) * 32767).astype(np.int16)
                                      for i in range(min(streams, 64))]))  # distinct sources, reused cyclically
    buffer = torch.empty(streams, block, dtype=torch.int16, pin_memory=device.startswith("cuda"))
    slots, rows, times = server.open(streams), torch.arange(streams) % pool.shape[0], []
    for t in range(ticks + 1):
        torch.index_select(pool[:, t * block:(t + 1) * block], 0, rows, out=buffer)
        started = time.perf_counter()
        if decoder is None:
            server.engine.tick(slots, buffer)
        else:
            server.tick(slots, buffer)
        _sync(device)
        times.append(time.perf_counter() - started)
    return _tick_row(times, streams, f"{decoder or 'acoustic only'} (lock-step)", block)


def _tick_row(times: list[float], streams: int, decoding: str, block: int) -> dict:
    """p50/p95/p99 and load of tick times; the first tick fills the look-ahead (and warms up): not counted."""
    chunk_s = block / SAMPLE_RATE
    ms = np.array(times[1:]) * 1000
    return {"streams": streams, "decoder": decoding, "chunk_s": chunk_s,
            "p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "p99_ms": float(np.percentile(ms, 99)), "load": float(ms.mean() / 1000 / chunk_s)}

def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def offline_throughput(model: Path, clips: list[np.ndarray], device: str, batch: int = 16, half: bool = False,
                       beam_clips: int = 64) -> list[dict]:
    """x real time of batched whole-utterance inference: acoustic only, + greedy, + beam+LM per utterance
    (lm.beam, as the offline Transcriber; timed on the first `beam_clips` clips), + beam+LM batched
    (lm.batched_beam over each batch on the device; padding frames are certain blanks, which change no ranking)."""
    transcriber = Transcriber.load(model, decoder="beam")
    net = transcriber.model.to(device, torch.float16 if half else torch.float32)
    mel = LogMel().to(device)
    seconds = sum(c.size for c in clips) / SAMPLE_RATE
    started, emissions, batches = time.perf_counter(), [], []
    with torch.inference_mode():
        for first in range(0, len(clips), batch):
            group = [torch.from_numpy(c).to(device) for c in clips[first:first + batch]]
            feats = [mel(g[None])[0] for g in group]
            lengths = torch.tensor([f.shape[0] for f in feats], device=device)
            padded = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True).to(net.feat_mean.dtype)
            log_probs, out_lengths = net(padded, lengths)
            batches.append((log_probs.float(), out_lengths))
            emissions += [lp[:n].float().cpu() for lp, n in zip(log_probs, out_lengths.tolist())]
    acoustic = time.perf_counter() - started
    started = time.perf_counter()
    for e in emissions:
        greedy_ids(e)
    greedy = time.perf_counter() - started
    some = emissions[:beam_clips]
    started = time.perf_counter()
    with torch.inference_mode():
        for e in some:
            beam_search(e, transcriber.vocab, transcriber.lm, transcriber.options.beam)
    beam = (time.perf_counter() - started) * sum(e.shape[0] for e in emissions) / sum(e.shape[0] for e in some)
    batched = batched_beam_time(transcriber, batches, device, batch)
    return [{"pipeline": name, "x_real_time": seconds / busy} for name, busy in
            (("acoustic only", acoustic), ("acoustic + greedy", acoustic + greedy),
             (f"acoustic + beam+LM per utterance ({len(some)} clips)", acoustic + beam),
             ("acoustic + beam+LM batched", acoustic + batched))]


def batched_beam_time(transcriber: Transcriber, batches: list[tuple[torch.Tensor, torch.Tensor]], device: str,
                      batch: int) -> float:
    """Seconds to decode every batch of log-probs with lm.batched_beam (all utterances of a batch at once)."""
    lm = transcriber.lm.to(device)
    search = BatchedPrefixBeam(transcriber.vocab, lm, transcriber.options.beam, batch, device)
    blank = transcriber.vocab.blank
    started = time.perf_counter()
    with torch.inference_mode():
        for log_probs, lengths in batches:
            slots = torch.arange(log_probs.shape[0], device=device)
            pad = torch.arange(log_probs.shape[1], device=device)[None] >= lengths.to(device)[:, None]
            certain_blank = torch.full_like(log_probs[0, 0], -1e4)
            certain_blank[blank] = 0.0
            search.reset(slots)
            search.advance(slots, torch.where(pad[..., None], certain_blank, log_probs))
            search.finish(slots)
    _sync(device)
    busy = time.perf_counter() - started
    transcriber.lm.to("cpu")
    return busy


def device_agreement(model: Path, recording: np.ndarray, device: str) -> list[dict]:
    """The lock-step server's final text of one recording on `device` (float32 and float16) against the CPU's
    (float32): character error rate between them, greedy and beam+LM (0 = the same text)."""
    def text(decoder: str, where: str, half: bool) -> str:
        server = LockstepServer.load(model, decoder=decoder, device=where, half=half)
        usable = recording[:recording.size // server.tick_samples * server.tick_samples]
        slot, finals = server.open(), []
        for i in range(0, usable.size, server.tick_samples):
            finals += [u.text for u in server.tick(slot, torch.from_numpy(usable[None, i:i + server.tick_samples]))
                       if u.final]
        return " ".join(finals + [u.text for u in server.close(int(slot[0]))])
    rows = []
    for decoder in ("greedy", "beam"):
        cpu = text(decoder, "cpu", False)
        for half in (False, True):
            cer = error_rates([cpu], [text(decoder, device, half)])[1]
            rows.append({"decoder": decoder, "precision": "float16" if half else "float32", "cer_vs_cpu": cer,
                         "words": len(cpu.split())})
    return rows


def encoder_cost(threads: int) -> list[dict]:
    """Seconds per Whisper-encoder call on windows of 30, 10 and 5 s (skipped if the encoder is missing)."""
    try:
        import ctranslate2

        from acoustic.encoder import WhisperEncoder, whisper_log_mel
    except ImportError:
        return []
    encoder = WhisperEncoder(threads=threads)
    noise = np.random.default_rng(0).normal(0, 0.05, 30 * SAMPLE_RATE).astype(np.float32)
    mel = whisper_log_mel(noise, encoder._filters)[None].numpy()
    rows = []
    for window_s in (30, 10, 5):
        frames = np.ascontiguousarray(mel[:, :, :window_s * 100])
        encoder._model.encode(ctranslate2.StorageView.from_array(frames), to_cpu=True)  # warm-up
        started = time.perf_counter()
        for _ in range(3):
            encoder._model.encode(ctranslate2.StorageView.from_array(frames), to_cpu=True)
        rows.append({"window_s": window_s, "seconds_per_call": (time.perf_counter() - started) / 3})
    return rows


def encoder_streaming(model: Path, utts: list[Utterance], audio: dict[Path, np.ndarray]) -> list[dict]:
    """The Whisper-encoder model through the StreamingEngine (the audio heard so far re-encoded before each
    block, acoustic.engine) against the same model offline, greedy: WER/CER and seconds per 0.64 s block."""
    refs = [u.text for u in utts]
    rows = []
    for name, system in (("offline (one 30 s window)", Transcriber.load(model, decoder="greedy")),
                         ("streaming (re-encoded every tick)", StreamingEngine.load(model, decoder="greedy"))):
        started, hyps, seconds = time.perf_counter(), [], 0.0
        for u in utts:
            hyps.append(system.transcribe(audio[u.path]).text)
            seconds += audio[u.path].size / SAMPLE_RATE
        wer, cer = error_rates(refs, hyps)
        per_tick = (time.perf_counter() - started) / seconds * 0.64 if name.startswith("streaming") else None
        rows.append({"path": name, "utterances": len(utts), "wer": wer, "cer": cer, "seconds_per_tick": per_tick})
    return rows


def tables(report: dict) -> str:
    out = ["### Streaming vs offline accuracy", "",
           "| model | set | decoder | offline WER | streaming WER | ratio | offline CER | streaming CER | offline RTF | streaming RTF |",
           "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"] if report["accuracy"] else []
    acc = {(r["model"], r["set"], r["decoder"], r["path"]): r for r in report["accuracy"]}
    for (model, set_name, decoder, path), r in acc.items():
        if path == "offline":
            s = acc[(model, set_name, decoder, "streaming")]
            out.append(f"| {model} | {set_name} ({r['utterances']}) | {decoder} | {r['wer']:.1%} | {s['wer']:.1%} | "
                       f"{s['wer'] / max(r['wer'], 1e-9):.2f} | {r['cer']:.1%} | {s['cer']:.1%} | {r['rtf']:.3f} | {s['rtf']:.3f} |")
    out += ["", f"### Concurrent real-time streams ({report['device']}, tick = one {report['chunk_s']:.2f} s chunk per stream)", "",
            "| streams | decoding | p50 ms | p95 ms | p99 ms | load (tick / chunk) | real time? |", "|---:|---|---:|---:|---:|---:|---|"]
    for r in report["concurrency"]:
        verdict = "yes" if r["load"] < 1 else "no"
        out.append(f"| {r['streams']} | {r['decoder']} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} | {r['p99_ms']:.0f} "
                   f"| {r['load']:.2f} | {verdict} |")
    out += ["", f"### Offline batched throughput (whole-utterance BiLSTM, {report['offline_clips']} clips, batches of "
            f"{report['offline_batch']}{', float16' if report['half'] else ''})", "",
            "| pipeline | x real time |", "|---|---:|"]
    out += [f"| {r['pipeline']} | {r['x_real_time']:.0f} |" for r in report["offline"]]
    if report["agreement"]:
        out += ["", f"### The same recording on {report['device']} vs the CPU (lock-step server, CER between final texts)", "",
                "| decoder | precision | CER vs CPU float32 | words |", "|---|---|---:|---:|"]
        out += [f"| {r['decoder']} | {r['precision']} | {r['cer_vs_cpu']:.2%} | {r['words']} |" for r in report["agreement"]]
    if report["encoder"]:
        out += ["", "### Whisper-encoder front end: one encoder call per tick", "",
                "| window | s per call | streams a tick of 0.64 s allows |", "|---:|---:|---:|"]
        out += [f"| {r['window_s']} s | {r['seconds_per_call']:.3f} | {0.64 / r['seconds_per_call']:.1f} |"
                for r in report["encoder"]]
    if report.get("encoder_streaming"):
        out += ["", f"### Whisper-encoder model streamed by re-encoding every tick (greedy, {report['encoder_set']})", "",
                "| path | utterances | WER | CER | s per 0.64 s of audio |", "|---|---:|---:|---:|---:|"]
        out += [f"| {r['path']} | {r['utterances']} | {r['wer']:.1%} | {r['cer']:.1%} | "
                f"{'' if r['seconds_per_tick'] is None else format(r['seconds_per_tick'], '.3f')} |"
                for r in report["encoder_streaming"]]
    out += ["", f"Machine: {report['machine']}; torch threads {report['threads']}; date: {report['date']}; "
            f"command: `{report['command']}`"]
    return "\n".join(out)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.stream", description=__doc__.splitlines()[0])
    p.add_argument("--set", dest="sets", type=parse_set, action="append", default=[], metavar="NAME[=MANIFEST]")
    p.add_argument("--limit", type=int, default=60, help="utterances per set, evenly spaced (default 60)")
    p.add_argument("--model", type=Path, action="append", help="log-mel model(s) (default: the streaming default)")
    p.add_argument("--streams", default="1,2,4,8,16", help="concurrent stream counts (default 1,2,4,8,16)")
    p.add_argument("--ticks", type=int, default=24, help="chunk ticks per concurrency run (default 24)")
    p.add_argument("--device", default="cpu", help="torch device for the engine and offline batches: cpu or cuda")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument("--beam-streams", help="stream counts for beam+LM (default: --streams)")
    p.add_argument("--audio", type=Path, help="speed only, on 10 s clips of this recording (no data sets needed)")
    p.add_argument("--encoder-model", type=Path, help="also stream this Whisper-encoder model by re-encoding "
                   "every tick, on the first set (greedy; slow: about one encoder call per 0.64 s of audio)")
    p.add_argument("--encoder-limit", type=int, default=20, help="utterances for --encoder-model (default 20)")
    p.add_argument("--engine", choices=("per-stream", "lock-step"), default="per-stream",
                   help="concurrency through minutes.streaming.StreamingEngine (what the app uses; per-stream Python) "
                        "or minutes.serving.LockstepServer (one chunk per stream per tick; GPU scale)")
    p.add_argument("--half", action="store_true", help="float16 acoustic model (CUDA): lock-step engine and offline")
    p.add_argument("--offline-batch", type=int, default=16, help="utterances per offline batch (default 16)")
    p.add_argument("--beam-clips", type=int, default=64, help="offline clips timed with per-utterance beam+LM "
                   "(default 64; the rate is extrapolated to all clips by frames)")
    p.add_argument("--offline-clips", type=int, help="offline clips, the clips repeated cyclically (default: each once)")
    p.add_argument("--agreement", action="store_true", help="with --audio: the lock-step server's text of the "
                   "recording on --device (float32 and float16) against the CPU's")
    p.add_argument("--json", type=Path, metavar="OUT")
    args = p.parse_args(argv)
    if args.agreement and not args.audio:
        p.error("--agreement needs --audio")
    args.streams = [int(n) for n in args.streams.split(",")]
    args.beam_streams = [int(n) for n in args.beam_streams.split(",")] if args.beam_streams else args.streams
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA GPU is visible")
    return args


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.audio:
        recording, sets, audio = load_audio(args.audio), {}, {}
        clips = [recording[i:i + 10 * SAMPLE_RATE] for i in range(0, recording.size, 10 * SAMPLE_RATE)]
    else:
        try:
            sets = load_sets(args.sets or DEFAULT_SETS, args.limit)
        except ManifestError as error:
            sys.exit(f"bench.stream: {error}")
        audio = {u.path: read_audio(u.path) for utts in sets.values() for u in utts}
        clips = list(audio.values())
    models = args.model or [default_stream_model()]
    offline = [clips[i % len(clips)] for i in range(args.offline_clips or len(clips))]
    run = concurrency if args.engine == "per-stream" else (
        lambda *a: concurrency_lockstep(*a, half=args.half))  # noqa: E731
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if args.device.startswith("cuda") else ", no GPU used"
    report = {"machine": machine() + gpu, "threads": args.threads, "device": args.device,
              "date": datetime.now().astimezone().isoformat(timespec="minutes"),
              "command": shlex.join(["python", "-m", "bench.stream", *argv]),
              "accuracy": [r for m in models for r in accuracy(m, sets, audio)],
              "half": args.half, "offline_batch": args.offline_batch,
              "concurrency": [run(models[0], clips, n, args.ticks, decoder, args.device)
                              for n in sorted(set(args.streams) | set(args.beam_streams))
                              for decoder in (None, "greedy", "beam")
                              if decoder != "beam" and n in args.streams or decoder == "beam" and n in args.beam_streams],
              "offline": offline_throughput(models[0], offline, args.device, args.offline_batch, args.half,
                                            args.beam_clips),
              "encoder": encoder_cost(args.threads) if args.device == "cpu" else [],
              "agreement": device_agreement(models[0], recording, args.device)
              if args.agreement else []}
    report["chunk_s"], report["offline_clips"] = report["concurrency"][0]["chunk_s"], len(offline)
    if args.encoder_model and sets:
        first = next(iter(sets))
        report["encoder_set"] = first
        report["encoder_streaming"] = encoder_streaming(args.encoder_model, spread(sets[first], args.encoder_limit), audio)
    print(tables(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
