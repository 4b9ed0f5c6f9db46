#!/usr/bin/env bash
# Train the diarization models on a lent GPU, which has torch but no pyannote.audio, through their pyannote-free
# twins (diarize.train_twin): TASK=train for segmentation runs side by side (fine-tuning and fresh ones, as packed),
# TASK=embed for the speaker-embedding model from scratch; batches come from worker processes.
#   here:  python -m diarize.train_twin pack --out .gpu/seg ft=models/diarization/segmentation/pytorch_model.bin big=4x128
#          (wheels of soundfile, cffi, pycparser for Python 3.12 in .whl, as ../.library/device/README.md shows)
#   there: TASK=train MINUTES=6 OUT=$OUT recipes/train_diarization_gpu.sh     (the device tool, carrying .gpu and .whl)
#   here:  python -m diarize.train_twin export <OUT>/ft.pt exp/diar/seg_gpu_ft, then diarize.package, diarize.tune
# Rerunning with the same EXP resumes. DEVICE=cpu WORKERS=1 MINUTES=0.5 is a dry run on any machine.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
if [ -d .whl ] && ! "$PY" -c "import soundfile" 2>/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONUNBUFFERED=1
TASK=${TASK:-train}
OUT=${OUT:-exp/gpu_$TASK}
mkdir -p "$OUT"
case $TASK in
  # shellcheck disable=SC2206  # LR is a list of NAME=RATE
  train) extra=(--batch "${BATCH:-32}" --lr ${LR:-ft=5e-4}) ;;
  embed) extra=(--batch "${BATCH:-256}") ;;
  *) echo "train_diarization_gpu: TASK is train or embed"; exit 2 ;;
esac
"$PY" -m diarize.train_twin "$TASK" --pack "${PACK:-.gpu/seg}" --exp "${EXP:-/tmp/$TASK}" --weights-to "$OUT" \
  --minutes "${MINUTES:-6}" --device "${DEVICE:-cuda}" --workers "${WORKERS:-14}" --log-every "${LOG_EVERY:-500}" \
  "${extra[@]}" 2>&1 | tee "$OUT/$TASK.log"
