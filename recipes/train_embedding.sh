#!/usr/bin/env bash
# Train the diarization speaker-embedding model (pyannote XVectorMFCC, AAM-softmax over the 377 training
# speakers: speechocean762 train, librispeech_speakers, 120 LJSpeech clips) on 1 CPU thread, time-boxed.
# Resumable: rerun the same command to continue from EXP/last.pt. Writes EXP/pytorch_model.bin (fp16).
#   EXP=exp/diar/emb MINUTES=35 recipes/train_embedding.sh
set -euo pipefail
export HF_HUB_OFFLINE=1 PYANNOTE_METRICS_ENABLED=0 OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE PYTHONPATH=.
DATA=${DATA:-../shared/data}
EXP=${EXP:-exp/diar/emb}
MINUTES=${MINUTES:-35}
mkdir -p "$EXP"
exec nice -n 5 .venv/bin/python -m diarize.train_embedding --data "$DATA" --exp "$EXP" --minutes "$MINUTES" \
  --anneal-steps "${ANNEAL_STEPS:-800}" "$@"
