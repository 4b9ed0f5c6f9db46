#!/usr/bin/env bash
# Train an acoustic model on ../shared/data: speechocean762 train + LJSpeech, dev = speechocean762 test
# (first 400 utterances). The last 20 LJSpeech clips (LJ003-0079..0098) are held out: the bundled sample
# meeting and the benchmark use them. Extra arguments go to `python -m acoustic.train`.
# Resumable: rerun the same command after an interruption.
#   EXP=exp/first_model EPOCHS=25 recipes/train_am.sh --threads 1
#   EXP=exp/encoder EPOCHS=12 recipes/train_am.sh --frontend whisper-encoder --hidden 256 --layers 2 --stack 1
set -euo pipefail
DATA=${DATA:-../shared/data}
EXP=${EXP:?set EXP to the experiment folder}
EPOCHS=${EPOCHS:-25}
mkdir -p "$EXP"
LJ_DIR=$(cd "$DATA/ljspeech" && pwd)
awk -F'\t' -v dir="$LJ_DIR" 'NR == 1 {print; next} {rows[NR] = $0; paths[NR] = $1}
  END {for (i = 2; i <= NR - 20; i++) {sub(/^[^\t]*/, dir "/" paths[i], rows[i]); print rows[i]}}' \
  "$DATA/ljspeech/manifest.tsv" > "$EXP/ljspeech_train.tsv"
exec .venv/bin/python -m acoustic.train \
  --train "$DATA/speechocean762/manifest_train.tsv" "$EXP/ljspeech_train.tsv" \
  --dev "$DATA/speechocean762/manifest_test.tsv" --dev-limit 400 \
  --exp "$EXP" --epochs "$EPOCHS" "$@"
