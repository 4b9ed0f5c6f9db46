#!/usr/bin/env bash
# Train the diarization speaker-embedding model (pyannote XVectorMFCC, AAM-softmax over the 377 training
# speakers: speechocean762 train, librispeech_speakers, 120 LJSpeech clips) on THREADS CPU threads, time-boxed.
# SPEEDS=0.9,1.0,1.1 also makes each speaker at speed 0.9 and 1.1 a pseudo-speaker (1,131 classes; session 9's
# candidate, models/diarization/MODEL_CARD.md). Resumable: rerun the same command to continue from EXP/last.pt
# (with the same SPEEDS). Writes EXP/pytorch_model.bin (fp16).
#   EXP=exp/diar/emb MINUTES=35 recipes/train_embedding.sh
#   EXP=exp/diar/emb3 MINUTES=72 ANNEAL_STEPS=4500 THREADS=2 SPEEDS=0.9,1.0,1.1 recipes/train_embedding.sh
set -euo pipefail
export HF_HUB_OFFLINE=1 PYANNOTE_METRICS_ENABLED=0 OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE PYTHONPATH=.
DATA=${DATA:-../shared/data}
EXP=${EXP:-exp/diar/emb}
MINUTES=${MINUTES:-35}
mkdir -p "$EXP"
exec nice -n 5 .venv/bin/python -m diarize.train_embedding --data "$DATA" --exp "$EXP" --minutes "$MINUTES" \
  --anneal-steps "${ANNEAL_STEPS:-800}" --threads "${THREADS:-1}" --speeds "${SPEEDS:-1.0}" "$@"
