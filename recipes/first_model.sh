#!/usr/bin/env bash
# Train the shipped default acoustic model on ../shared/data (speechocean762 train + LJSpeech).
# The last 20 LJSpeech clips (LJ003-0079..0098) are held out: the bundled sample meeting uses them.
# Resumable: rerun the same command after an interruption.
set -euo pipefail
DATA=${DATA:-../shared/data}
EXP=${EXP:-exp/first_model}
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
