#!/usr/bin/env bash
# Train the diarization segmentation model (pyannote PyanNet, powerset 3 speakers / 2 at once, 10 s chunks) on
# meetings simulated on the fly from the training voices (diarize.simulate), on 1 CPU thread, time-boxed.
# Resumable: rerun the same command to continue from EXP/last.pt. Writes EXP/pytorch_model.bin (fp16).
#   EXP=exp/diar/seg MINUTES=40 recipes/train_segmentation.sh
set -euo pipefail
export HF_HUB_OFFLINE=1 PYANNOTE_METRICS_ENABLED=0 OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE PYTHONPATH=.
DATA=${DATA:-../shared/data}
EXP=${EXP:-exp/diar/seg}
MINUTES=${MINUTES:-40}
mkdir -p "$EXP"
exec nice -n 5 .venv/bin/python -m diarize.train_segmentation --data "$DATA" --exp "$EXP" --minutes "$MINUTES" \
  --anneal-steps "${ANNEAL_STEPS:-600}" "$@"
