"""Named evaluation sets from ../shared/data, split so that no number is measured on data used for selection.

speechocean762 test (2,500 utterances, speakers never trained on) is cut three ways, in manifest order:
the first 400 choose the acoustic checkpoint (`--dev-limit 400` in recipes/train_am.sh), the last 300 tune
the beam decoder's LM weight and word bonus, and the 1,800 in between are only ever evaluated.
`so762-test` is all 2,500 (issue 8 asks for the whole test set; its first and last parts were used for choices).
"""
from __future__ import annotations

from pathlib import Path

from acoustic.data import ManifestError, Utterance, read_manifest
from acoustic.voices import ENGINES

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LJ_HELDOUT = 20  # the last clips of the LJSpeech manifest (LJ003-0079..LJ003-0098), never trained on
# Held-out synthetic voices speaking sentences the LM never trained on, built by recipes/make_synth.sh.
SYNTH_HELDOUT = Path(__file__).resolve().parents[1] / "exp" / "synth" / "heldout" / "manifest.tsv"


def so762(part: slice) -> list[Utterance]:
    return read_manifest(DATA / "speechocean762" / "manifest_test.tsv")[part]


def synth_heldout(engine: str | None = None) -> list[Utterance]:
    """The held-out synthetic voices, or those of one engine."""
    if not SYNTH_HELDOUT.is_file():
        raise ManifestError(f"synth-heldout is not built yet: run `TRAIN=0 recipes/make_synth.sh` "
                            f"(writes {SYNTH_HELDOUT})")
    utterances = [u for u in read_manifest(SYNTH_HELDOUT) if engine is None or u.speaker.startswith(engine + "_")]
    if not utterances:
        raise ManifestError(f"{SYNTH_HELDOUT}: no {engine} utterances (was it installed when the set was built?)")
    return utterances


SETS = {
    "so762-test": lambda: so762(slice(None)),  # all 2,500, selection and tuning parts included
    "so762-eval": lambda: so762(slice(400, 2200)),
    "so762-tune": lambda: so762(slice(2200, None)),
    "so762-select": lambda: so762(slice(0, 400)),
    "ljspeech-heldout": lambda: read_manifest(DATA / "ljspeech" / "manifest.tsv")[-LJ_HELDOUT:],
    # FSDD is CC BY-SA: evaluation only. Its official test split is repetitions 0-4 of each digit.
    "fsdd-test": lambda: [u for u in read_manifest(DATA / "fsdd" / "manifest.tsv")
                          if u.path.stem.rsplit("_", 1)[-1] in {"0", "1", "2", "3", "4"}],
    "synth-heldout": synth_heldout,
    **{f"synth-heldout-{engine}": lambda engine=engine: synth_heldout(engine) for engine in ENGINES},
}
DEFAULT_SETS = ("so762-eval", "ljspeech-heldout", "fsdd-test")


def spread(utterances: list[Utterance], limit: int | None) -> list[Utterance]:
    """At most `limit` utterances evenly spaced through the set (many speakers, not the first few)."""
    if limit is None or limit >= len(utterances):
        return utterances
    step = len(utterances) / limit
    return [utterances[int(i * step)] for i in range(limit)]
