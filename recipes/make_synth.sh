#!/usr/bin/env bash
# Synthetic speech for training and the held-out synthetic dev set (bench set `synth-heldout`), deterministic
# for a seed (Piper's own sampling noise aside). Installs the engines first (recipes/setup_synth.sh).
# Resumable: rerun the same command and rendered files are reused. Extra arguments go to both runs.
#   recipes/make_synth.sh                  # exp/synth/train, exp/synth/heldout: 20,000 and 250 turns, of which
#                                          # Kokoro's (a quarter and a fifth) are skipped unless it is installed
#   WITH_KOKORO=1 recipes/make_synth.sh    # also install and use the Kokoro-82M voices
#   TRAIN=2000 HELDOUT=200 SEED=1 OUT=exp/synth_small recipes/make_synth.sh --format opus
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-exp/synth}
TRAIN=${TRAIN:-20000}
HELDOUT=${HELDOUT:-250}  # the engines take turns: 200 utterances without Kokoro (opt-in), 250 with it
SEED=${SEED:-0}
recipes/setup_synth.sh
.venv/bin/python -m acoustic.synth --split heldout --out "$OUT/heldout" --sentences "$HELDOUT" --seed "$SEED" \
  --speakers-per-voice 2 "$@"
if [ "$TRAIN" -gt 0 ]; then
  .venv/bin/python -m acoustic.synth --split train --out "$OUT/train" --sentences "$TRAIN" --seed "$SEED" "$@"
fi
