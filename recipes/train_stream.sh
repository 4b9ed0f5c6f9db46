#!/usr/bin/env bash
# Fine-tune the log-mel model for streaming: the latency-controlled BiLSTM of acoustic/streaming.py with
# chunks of 21 steps (0.63 s) and 11 steps (0.33 s) of look-ahead, in training and in dev selection, from
# models/logmel/model.pt, on the same data as recipes/train_am.sh (whose feature cache it reuses when given
# CACHE). Resumable: rerun the same command. Extra arguments go to `python -m acoustic.train`.
#   EXP=exp/stream EPOCHS=12 CACHE=exp/first_model/cache nice -n 5 recipes/train_stream.sh
# Ship: python recipes/export_model.py exp/stream models/stream --name minutes-lcblstm-logmel-v1
set -euo pipefail
EXP=${EXP:-exp/stream}
CACHE=${CACHE:-$EXP/cache}
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
EXP=$EXP EPOCHS=${EPOCHS:-12} exec "$(dirname "$0")/train_am.sh" --init models/logmel/model.pt \
  --chunk 21 --lookahead 11 --peak-lr 5e-4 --warmup-steps 100 --threads 1 --cache-dir "$CACHE" "$@"
