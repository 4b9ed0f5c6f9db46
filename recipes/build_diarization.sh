#!/usr/bin/env bash
# Build models/diarization from scratch: train the embedding and segmentation models (each time-boxed and
# resumable: rerun to continue), fit the PLDA, assemble the pyannote pipeline folder, tune its
# hyper-parameters on the tune part of meetings_dev (pyannote's clustering, then the window clustering that
# minutes.diarization runs instead), and install it. Then measure: python -m bench.diarization
#   MINUTES=35 recipes/build_diarization.sh
set -euo pipefail
export HF_HUB_OFFLINE=1 PYANNOTE_METRICS_ENABLED=0 OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE PYTHONPATH=.
DATA=${DATA:-../shared/data}
EXP=${EXP:-exp/diar}
OUT=${OUT:-models/diarization}
DATA=$DATA EXP=$EXP/emb recipes/train_embedding.sh
DATA=$DATA EXP=$EXP/seg recipes/train_segmentation.sh
nice -n 5 .venv/bin/python -m diarize.package --data "$DATA" --cache "$EXP" --out "$EXP/pipeline" \
  --segmentation "$EXP/seg/pytorch_model.bin" --embedding "$EXP/emb/pytorch_model.bin"
nice -n 5 .venv/bin/python -m diarize.tune --pipeline "$EXP/pipeline" --dev "$DATA/meetings_dev"
nice -n 5 .venv/bin/python -m diarize.tune --pipeline "$EXP/pipeline" --dev "$DATA/meetings_dev" --windows
mkdir -p "$OUT"
cp -r "$EXP/pipeline/." "$OUT/"
