#!/usr/bin/env bash
# One call on a machine with a CUDA GPU (under 8 minutes): the CUDA tests, then the streaming benchmark on
# the GPU (speed only, on clips of the bundled sample meeting: no data sets needed there), with the card's
# name and the date. Results go to stdout and, when $OUT is set, to $OUT/device_check.{log,json}.
#   bench/device_check.sh            # PYTHON=... to pick the interpreter (default: .venv/bin/python or python3)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
OUT=${OUT:-}
LOG=${OUT:+$OUT/device_check.log}
exec > >(tee ${LOG:+"$LOG"}) 2>&1
export HF_HUB_OFFLINE=1 PYANNOTE_METRICS_ENABLED=0
date -u
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "nvidia-smi: not available"
"$PY" -c "import torch, torchaudio; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" || { echo "torch/torchaudio missing"; exit 2; }
# 1. the CUDA tests (the rest of the streaming tests run too: they are quick)
timeout 120 "$PY" -m pytest -q -p no:cacheprovider tests/test_streaming.py -rs
# 2. the GPU benchmark: acoustic only and greedy up to many streams, beam+LM on fewer (Python search per stream)
timeout 330 "$PY" -m bench.stream --audio samples/meeting.opus --device cuda --threads 2 --ticks 12 \
  --streams 1,64,256,1024,4096,16384 --beam-streams 1,16,64,256 ${OUT:+--json "$OUT/device_check.json"}
echo "device_check: exit $?"
