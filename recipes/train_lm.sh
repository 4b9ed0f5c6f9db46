#!/usr/bin/env bash
# Train the character LSTM language model on ../shared/data/text plus the acoustic training transcripts
# (speechocean762 train, LJSpeech without its last 20 clips, which the benchmark and the sample meeting
# use). Resumable: rerun the same command. Extra arguments go to lm.train_lm.
#   EXP=exp/lm STEPS=6000 recipes/train_lm.sh --threads 1
# Continue training a finished LM with a new schedule (a new EXP folder; the weights come from the file):
#   EXP=exp/lm_more STEPS=6000 recipes/train_lm.sh --threads 2 --init models/lm/model.pt --peak-lr 1e-3 --warmup-steps 100
set -euo pipefail
DATA=${DATA:-../shared/data}
EXP=${EXP:-exp/lm}
STEPS=${STEPS:-6000}
mkdir -p "$EXP"
head -n -20 "$DATA/ljspeech/manifest.tsv" > "$EXP/ljspeech_train.tsv"
exec .venv/bin/python -m lm.train_lm --text "$DATA"/text/*.txt.gz \
  --extra-manifest "$DATA/speechocean762/manifest_train.tsv" "$EXP/ljspeech_train.tsv" \
  --exp "$EXP" --cell lstm --hidden 512 --steps "$STEPS" "$@"
